"""The synthetic environment (SE) of Ferreira et al. (2022): a neural MDP learned by evolution.

Three separate MLPs (next state, reward, done) each read ``concat(one_hot(action), state)``. The
initial state comes from the real task's reset distribution; an episode ends when the done output
exceeds 0.5 (terminated) or at the step cap (truncated; the task's unless ``SEConfig.max_steps``).
The SE is a gymnax environment whose params (:class:`SEParams`) carry its weights, so one compiled
function steps a whole population of SEs under ``vmap``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from synthenv.environment import TaskEnv
from synthenv.errors import UsageError
from synthenv.nets import ACTIVATIONS, MLP


@dataclass(frozen=True)
class SEConfig:
    """Architecture of the SE. Paper: CartPole 83 LeakyReLU, Acrobot 167 PReLU, 1 hidden layer."""

    hidden: int = 83
    layers: int = 1
    activation: str = "leaky_relu"
    raw_done_in_td: bool = False
    """Quirk of the original: feed the raw (unthresholded) done output into the TD target as (1 - done)."""
    max_steps: int | None = None
    """The SE's step cap per episode (None: the task's, as the paper)."""
    done_bias_init: float = 0.0
    """The done head's output bias in a fresh SE (flax's default: 0). Negative values start the ES
    from SEs whose episodes run to the task's cap; it only affects ``init``."""

    def validate(self) -> None:
        if self.hidden < 1 or self.layers < 1:
            raise UsageError(f"SE hidden size and layers must be >= 1, got {self.hidden} and {self.layers}")
        if self.activation not in ACTIVATIONS:
            raise UsageError(f"unknown SE activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise UsageError(f"SE max_steps must be >= 1 (None: the task's cap), got {self.max_steps}")
        if not -1e3 < self.done_bias_init < 1e3:
            raise UsageError(f"SE done_bias_init must lie between -1000 and 1000, got {self.done_bias_init}")

    def step_cap(self, spec) -> int:
        """The SE's step cap per episode on task ``spec``: ``max_steps``, else the task's."""
        return self.max_steps or spec.max_steps


class SENetwork(nn.Module):
    obs_dim: int
    n_actions: int
    config: SEConfig

    @nn.compact
    def __call__(self, obs, action):
        x = jnp.concatenate([jax.nn.one_hot(action, self.n_actions), obs], axis=-1)
        c = self.config
        next_obs = MLP(c.hidden, c.layers, c.activation, self.obs_dim, name="state_net")(x)
        reward = MLP(c.hidden, c.layers, c.activation, 1, name="reward_net")(x)[..., 0]
        done = MLP(c.hidden, c.layers, c.activation, 1, name="done_net")(x)[..., 0]
        return next_obs, reward, done


@struct.dataclass
class SEState:
    obs: jax.Array
    time: jax.Array


@struct.dataclass
class SEParams:
    """The env params of an SE: its network weights (a pytree) and the task's step cap (static)."""

    weights: Any
    max_steps_in_episode: int = struct.field(pytree_node=False, default=200)


class SyntheticEnv(TaskEnv):
    """An SE for a real task: the task gives the first state, the spaces and the step cap.

    ``weights`` (optional) binds the SE's weights as ``default_params``, so that ``reset(key)`` and
    ``step(key, state, action)`` work without params, as with any gymnax environment.
    """

    def __init__(self, task, config: SEConfig = SEConfig(), weights: Any = None):
        config.validate()
        if task.spec.continuous:
            raise UsageError(f"SEs are implemented for discrete-action tasks only; {task.spec.id} is continuous")
        super().__init__(task.spec)
        self.task = task
        self.config = config
        self.network = SENetwork(task.spec.obs_dim, task.spec.n_actions, config)
        self.weights = weights

    def init(self, key: jax.Array) -> Any:
        """Fresh SE weights (flax default init, as the paper: no pre-training)."""
        dummy = jnp.zeros((self.spec.obs_dim,), jnp.float32)
        weights = self.network.init(key, dummy, jnp.int32(0))["params"]
        if self.config.done_bias_init:
            done_out = weights["done_net"]["out"]
            weights = {**weights, "done_net": {**weights["done_net"],
                                               "out": {**done_out, "bias": done_out["bias"] + self.config.done_bias_init}}}
        return weights

    def params_for(self, weights: Any) -> SEParams:
        """The env params that make this SE step with ``weights``."""
        return SEParams(weights, self.max_steps)

    @property
    def max_steps(self) -> int:
        """The SE's step cap per episode (``config.max_steps``, else the task's)."""
        return self.config.step_cap(self.spec)

    def bind(self, weights: Any) -> "SyntheticEnv":
        """The same SE with ``weights`` as its default params."""
        return SyntheticEnv(self.task, self.config, weights)

    @property
    def default_params(self) -> SEParams:
        if self.weights is None:
            raise ValueError("this SyntheticEnv has no weights bound: pass params=env.params_for(weights)")
        return self.params_for(self.weights)

    def predict(self, weights: Any, obs: jax.Array, action: jax.Array):
        """Raw network outputs ``(next_obs, reward, done_value)`` for a state-action pair."""
        return self.network.apply({"params": weights}, obs, action)

    def reset_env(self, key: jax.Array, params: SEParams):
        obs, _ = self.task.reset_env(key, self.task.default_params)
        return obs, SEState(obs, jnp.int32(0))

    def step_env(self, key: jax.Array, state: SEState, action: jax.Array, params: SEParams):
        next_obs, reward, done_value = self.predict(params.weights, state.obs, jnp.asarray(action, jnp.int32))
        bad = ~(jnp.all(jnp.isfinite(next_obs)) & jnp.isfinite(reward) & jnp.isfinite(done_value))
        next_obs = jnp.where(bad, 0.0, next_obs)
        reward = jnp.where(bad, 0.0, reward)
        done_value = jnp.where(bad, 1.0, done_value)
        terminated = (done_value > 0.5) | bad
        td_done = done_value if self.config.raw_done_in_td else terminated.astype(jnp.float32)
        info = {"td_done": td_done, "bad": bad, "done_value": done_value}
        return next_obs, SEState(next_obs, state.time + 1), reward, terminated, info

    def is_terminated(self, state: SEState, params: SEParams) -> jax.Array:
        return jnp.bool_(False)  # only known from a step's done output
