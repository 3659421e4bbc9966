"""The synthetic contextual bandit (SCB) of Liesen et al. (2024): an SE whose episodes last one step.

Two MLPs: a generator maps a latent ``z ~ N(0, I)`` (one dimension per observation dimension) to the
state an episode starts in, and a reward network scores ``concat(one_hot(action), state)``. Every
episode ends after its one step (terminated, so no TD target bootstraps), which leaves nothing to
learn but which action the reward prefers in which state. An agent trained on it learns that
preference as its policy, and the ES shapes the generator and the reward so that the policy balances
the real task. Because a one-step problem is easy for any RL algorithm and any sensible
hyperparameters, what the SCB teaches transfers across algorithms better than a multi-step SE does
(the follow-up's finding; our measurements: ``docs/defaults.md``).

The SCB is a gymnax environment whose params (:class:`BanditParams`) carry its weights, like the SE.
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
class BanditConfig:
    """Architecture of the SCB (the follow-up's: 32 ReLU units in one hidden layer per network)."""

    hidden: int = 32
    layers: int = 1
    activation: str = "relu"

    def validate(self) -> None:
        if self.hidden < 1 or self.layers < 1:
            raise UsageError(f"bandit hidden size and layers must be >= 1, got {self.hidden} and {self.layers}")
        if self.activation not in ACTIVATIONS:
            raise UsageError(f"unknown bandit activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}")


class BanditNetwork(nn.Module):
    obs_dim: int
    n_actions: int
    config: BanditConfig

    def setup(self):
        c = self.config
        self.state_gen = MLP(c.hidden, c.layers, c.activation, self.obs_dim)
        self.reward_net = MLP(c.hidden, c.layers, c.activation, 1)

    def __call__(self, z, obs, action):
        return self.start(z), self.reward(obs, action)

    def start(self, z):
        return self.state_gen(z)

    def reward(self, obs, action):
        x = jnp.concatenate([jax.nn.one_hot(action, self.n_actions), obs], axis=-1)
        return self.reward_net(x)[..., 0]


@struct.dataclass
class BanditState:
    obs: jax.Array
    time: jax.Array
    bad: jax.Array
    """The generator gave inf/NaN (the state is zeroed, the step reports it)."""


@struct.dataclass
class BanditParams:
    """The env params of an SCB: its network weights; every episode is one step."""

    weights: Any
    max_steps_in_episode: int = struct.field(pytree_node=False, default=1)


class SyntheticBandit(TaskEnv):
    """An SCB for a real task: the task gives the spaces; the SCB its own first states and rewards.

    ``weights`` (optional) binds the weights as ``default_params`` (``reset(key)``, ``step(key, state,
    action)`` without params, as with any gymnax environment).
    """

    max_steps = 1

    def __init__(self, task, config: BanditConfig = BanditConfig(), weights: Any = None):
        config.validate()
        if task.spec.continuous:
            raise UsageError(f"synthetic bandits are implemented for discrete-action tasks only; "
                             f"{task.spec.id} is continuous")
        super().__init__(task.spec)
        self.task = task
        self.config = config
        self.network = BanditNetwork(task.spec.obs_dim, task.spec.n_actions, config)
        self.weights = weights

    def init(self, key: jax.Array) -> Any:
        """Fresh weights (flax default init)."""
        dummy = jnp.zeros((self.spec.obs_dim,), jnp.float32)
        return self.network.init(key, dummy, dummy, jnp.int32(0))["params"]

    def params_for(self, weights: Any) -> BanditParams:
        return BanditParams(weights)

    def bind(self, weights: Any) -> "SyntheticBandit":
        return SyntheticBandit(self.task, self.config, weights)

    @property
    def default_params(self) -> BanditParams:
        if self.weights is None:
            raise ValueError("this SyntheticBandit has no weights bound: pass params=env.params_for(weights)")
        return self.params_for(self.weights)

    def start_state(self, weights: Any, z: jax.Array) -> jax.Array:
        """The first state the generator makes of latent ``z``."""
        return self.network.apply({"params": weights}, z, method=BanditNetwork.start)

    def reward(self, weights: Any, obs: jax.Array, action: jax.Array) -> jax.Array:
        """The learned reward of ``action`` in ``obs``."""
        return self.network.apply({"params": weights}, obs, action, method=BanditNetwork.reward)

    def reset_env(self, key: jax.Array, params: BanditParams):
        obs = self.start_state(params.weights, jax.random.normal(key, (self.spec.obs_dim,)))
        bad = ~jnp.all(jnp.isfinite(obs))
        obs = jnp.where(bad, 0.0, obs)
        return obs, BanditState(obs, jnp.int32(0), bad)

    def step_env(self, key: jax.Array, state: BanditState, action: jax.Array, params: BanditParams):
        reward = self.reward(params.weights, state.obs, jnp.asarray(action, jnp.int32))
        bad = state.bad | ~jnp.isfinite(reward)
        reward = jnp.where(bad, 0.0, reward)
        info = {"td_done": jnp.float32(1.0), "bad": bad}
        return state.obs, state.replace(time=state.time + 1, bad=bad), reward, jnp.bool_(True), info

    def is_terminated(self, state: BanditState, params: BanditParams) -> jax.Array:
        return jnp.bool_(True)

    def is_truncated(self, state: BanditState, params: BanditParams) -> jax.Array:
        return jnp.bool_(False)  # the one step ends the episode by termination, never by a cap
