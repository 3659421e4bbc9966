"""Registry of real tasks: each id's gymnax backend, step cap, solved threshold and return range.

gymnax auto-resets inside ``step`` and keeps its own step cap in the env params. We step with
``step_env`` (no auto-reset) and set the backend's cap out of reach, so ``terminated`` is only the
task's own terminal condition and ``truncated`` is ours (``t >= max_steps``): truncation is not
termination.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from synthenv.errors import UsageError


@dataclass(frozen=True)
class TaskSpec:
    """What the rest of the library needs to know about one real task."""

    id: str
    gymnax_id: str
    max_steps: int
    solved_threshold: float
    min_return: float  # the worst possible episode return: the score a diverged member gets
    obs_dim: int
    n_actions: int


TASKS: dict[str, TaskSpec] = {
    "CartPole-v0": TaskSpec("CartPole-v0", "CartPole-v1", 200, 195.0, 0.0, 4, 2),
    "CartPole-v1": TaskSpec("CartPole-v1", "CartPole-v1", 500, 475.0, 0.0, 4, 2),
    "Acrobot-v1": TaskSpec("Acrobot-v1", "Acrobot-v1", 500, -100.0, -500.0, 6, 3),
}


class TaskState(NamedTuple):
    env_state: Any
    t: jax.Array


class Task:
    """A real task with gymnax-style functional ``reset``/``step`` and an explicit step cap."""

    def __init__(self, spec: TaskSpec):
        import gymnax

        self.spec = spec
        self._env, params = gymnax.make(spec.gymnax_id)
        # The cap is enforced here, so the backend's own cap must never fire.
        self._params = params.replace(max_steps_in_episode=2**30)

    @property
    def obs_dim(self) -> int:
        return self.spec.obs_dim

    @property
    def n_actions(self) -> int:
        return self.spec.n_actions

    def reset(self, key: jax.Array) -> tuple[jax.Array, TaskState]:
        obs, env_state = self._env.reset_env(key, self._params)
        return obs.astype(jnp.float32), TaskState(env_state, jnp.int32(0))

    def step(self, key: jax.Array, state: TaskState, action: jax.Array):
        """Returns ``(obs, state, reward, terminated, truncated)``; no auto-reset."""
        obs, env_state, reward, done, _ = self._env.step_env(key, state.env_state, action, self._params)
        t = state.t + 1
        terminated = jnp.asarray(done, bool)
        truncated = jnp.logical_and(~terminated, t >= self.spec.max_steps)
        return obs.astype(jnp.float32), TaskState(env_state, t), jnp.float32(reward), terminated, truncated


def get_spec(task_id: str) -> TaskSpec:
    try:
        return TASKS[task_id]
    except KeyError:
        known = ", ".join(sorted(TASKS))
        raise UsageError(f"unknown env id {task_id!r}; known ids: {known}") from None


def make_task(task_id: str) -> Task:
    return Task(get_spec(task_id))
