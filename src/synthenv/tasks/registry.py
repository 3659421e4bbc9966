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
    n_actions: int  # discrete tasks: the number of actions; 0 for continuous tasks
    action_dim: int = 0  # continuous tasks: actions are float vectors in [-action_high, action_high]
    action_high: float = 0.0

    @property
    def continuous(self) -> bool:
        return self.n_actions == 0


TASKS: dict[str, TaskSpec] = {
    "CartPole-v0": TaskSpec("CartPole-v0", "CartPole-v1", 200, 195.0, 0.0, 4, 2),
    "CartPole-v1": TaskSpec("CartPole-v1", "CartPole-v1", 500, 475.0, 0.0, 4, 2),
    "Acrobot-v1": TaskSpec("Acrobot-v1", "Acrobot-v1", 500, -100.0, -500.0, 6, 3),
    # Continuous control, for the continuous agents. Pendulum has no official threshold: -200 is
    # our mark for a policy that swings up and balances from most starts.
    "Pendulum-v1": TaskSpec("Pendulum-v1", "Pendulum-v1", 200, -200.0, -3300.0, 3, 0, 1, 2.0),
    "MountainCarContinuous-v0": TaskSpec("MountainCarContinuous-v0", "MountainCarContinuous-v0", 999,
                                         90.0, -99.9, 2, 0, 1, 1.0),
}


class TaskState(NamedTuple):
    env_state: Any
    t: jax.Array


class Task:
    """A real task with gymnax-style functional ``reset``/``step`` and an explicit step cap."""

    def __init__(self, spec: TaskSpec):
        import gymnax

        self.spec = spec
        self.obs_dim, self.n_actions, self.continuous = spec.obs_dim, spec.n_actions, spec.continuous
        self.action_dim, self.action_high = spec.action_dim, spec.action_high
        self._env, params = gymnax.make(spec.gymnax_id)
        # The cap is enforced here, so the backend's own cap must never fire.
        self._params = params.replace(max_steps_in_episode=2**30)

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
