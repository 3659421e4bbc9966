"""What an inner agent trains on: one transition type shared by SEs and the real task, and the real
task behind that interface (the baseline)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from synthenv.tasks.registry import Task


class Transition(NamedTuple):
    """One step of an environment the inner agent trains on (SE or real task)."""

    obs: jax.Array
    state: Any
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    td_done: jax.Array  # what enters the TD target as (1 - td_done)
    bad: jax.Array  # the environment produced inf/NaN: the member must be scored as the worst


class TaskBound:
    """An environment bound to a real task: spaces and step cap come from the task."""

    def __init__(self, task: Task):
        self.task = task
        self.max_steps = task.spec.max_steps
        self.obs_dim, self.n_actions, self.continuous = task.obs_dim, task.n_actions, task.continuous
        self.action_dim, self.action_high = task.action_dim, task.action_high


class RealEnv(TaskBound):
    """The real task behind the same training interface as an SE (``params`` is ignored)."""

    def reset(self, key: jax.Array, params: Any = None):
        return self.task.reset(key)

    def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any = None) -> Transition:
        obs, state, reward, terminated, truncated = self.task.step(key, state, action)
        return Transition(obs, state, reward, terminated, truncated, terminated.astype(jnp.float32), jnp.bool_(False))
