"""The synthetic environment (SE) of Ferreira et al. (2022): a neural MDP learned by evolution.

Three separate MLPs (next state, reward, done) each read ``concat(one_hot(action), state)``. The
initial state comes from the real task's reset distribution; an episode ends when the done output
exceeds 0.5 or at the task's step cap. The SE is stepped like a gymnax env: pure functions with
explicit parameters (the SE weights) and keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from synthenv.errors import UsageError
from synthenv.nets import ACTIVATIONS, activation_fn
from synthenv.tasks.registry import Task
from synthenv.training_env import TaskBound, Transition


@dataclass(frozen=True)
class SEConfig:
    """Architecture of the SE. Paper: CartPole 83 LeakyReLU, Acrobot 167 PReLU, 1 hidden layer."""

    hidden: int = 83
    layers: int = 1
    activation: str = "leaky_relu"
    raw_done_in_td: bool = False
    """Quirk of the original: feed the raw (unthresholded) done output into the TD target as (1 - done)."""

    def validate(self) -> None:
        if self.hidden < 1 or self.layers < 1:
            raise UsageError(f"SE hidden size and layers must be >= 1, got {self.hidden} and {self.layers}")
        if self.activation not in ACTIVATIONS:
            raise UsageError(f"unknown SE activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}")


class _MLP(nn.Module):
    hidden: int
    layers: int
    activation: str
    out: int

    @nn.compact
    def __call__(self, x):
        for i in range(self.layers):
            x = nn.Dense(self.hidden, name=f"hidden_{i}")(x)
            slope = self.param(f"prelu_{i}", lambda k: jnp.full((1,), 0.25)) if self.activation == "prelu" else None
            x = activation_fn(self.activation, x, slope)
        return nn.Dense(self.out, name="out")(x)


class SENetwork(nn.Module):
    obs_dim: int
    n_actions: int
    config: SEConfig

    @nn.compact
    def __call__(self, obs, action):
        x = jnp.concatenate([jax.nn.one_hot(action, self.n_actions), obs], axis=-1)
        c = self.config
        next_obs = _MLP(c.hidden, c.layers, c.activation, self.obs_dim, name="state_net")(x)
        reward = _MLP(c.hidden, c.layers, c.activation, 1, name="reward_net")(x)[..., 0]
        done = _MLP(c.hidden, c.layers, c.activation, 1, name="done_net")(x)[..., 0]
        return next_obs, reward, done


class SEState(NamedTuple):
    obs: jax.Array
    t: jax.Array


class SyntheticEnv(TaskBound):
    """An SE bound to a real task (for its reset distribution, spaces and step cap)."""

    def __init__(self, task: Task, config: SEConfig = SEConfig()):
        config.validate()
        if task.continuous:
            raise UsageError(f"SEs are implemented for discrete-action tasks only; {task.spec.id} is continuous")
        super().__init__(task)
        self.config = config
        self.network = SENetwork(task.obs_dim, task.n_actions, config)

    def init(self, key: jax.Array) -> Any:
        """Fresh SE weights (flax default init, as the paper: no pre-training)."""
        dummy = jnp.zeros((self.obs_dim,), jnp.float32)
        return self.network.init(key, dummy, jnp.int32(0))["params"]

    def reset(self, key: jax.Array, params: Any) -> tuple[jax.Array, SEState]:
        obs, _ = self.task.reset(key)
        return obs, SEState(obs, jnp.int32(0))

    def predict(self, params: Any, obs: jax.Array, action: jax.Array):
        """Raw network outputs ``(next_obs, reward, done_value)`` for a state-action pair."""
        return self.network.apply({"params": params}, obs, action)

    def step(self, key: jax.Array, state: SEState, action: jax.Array, params: Any) -> Transition:
        next_obs, reward, done_value = self.predict(params, state.obs, action)
        bad = ~(jnp.all(jnp.isfinite(next_obs)) & jnp.isfinite(reward) & jnp.isfinite(done_value))
        next_obs = jnp.where(bad, 0.0, next_obs)
        reward = jnp.where(bad, 0.0, reward)
        done_value = jnp.where(bad, 1.0, done_value)
        t = state.t + 1
        terminated = (done_value > 0.5) | bad
        truncated = ~terminated & (t >= self.max_steps)
        td_done = done_value if self.config.raw_done_in_td else terminated.astype(jnp.float32)
        return Transition(next_obs, SEState(next_obs, t), reward, terminated, truncated, td_done, bad)
