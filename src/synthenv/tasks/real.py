"""A real task as a gymnax environment: gymnax's dynamics with the registry's step cap.

CartPole-v0 is gymnax's CartPole-v1 with ``max_steps_in_episode=200``; every task's cap lives in its
params, so ``truncated`` is ``time >= cap`` (gymnax's own rule) and ``terminated`` only the task's
terminal condition.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from synthenv.environment import TaskEnv
from synthenv.errors import UsageError
from synthenv.tasks.registry import TaskSpec, get_spec


class RealTask(TaskEnv):
    """The real dynamics of a registered task (``make_task(id)`` builds one); ``max_steps`` cuts its
    episodes shorter than the task's cap (``with_horizon``)."""

    def __init__(self, spec: TaskSpec, max_steps: int | None = None):
        import gymnax

        super().__init__(spec)
        if spec.gymnax_id.startswith("synthenv/"):
            import synthenv.tasks.cliff  # noqa: F401  registers the synthenv/ gymnax ids (the cliff tasks)
        self.backend, params = gymnax.make(spec.gymnax_id)
        self._params = params.replace(max_steps_in_episode=spec.max_steps if max_steps is None else max_steps)

    @property
    def default_params(self):
        return self._params

    def step_env(self, key: jax.Array, state: Any, action: jax.Array, params: Any):
        obs, state, reward, terminated, info = self.backend.step_env(key, state, action, params)
        return (obs.astype(jnp.float32), _strong(state), jnp.asarray(reward, jnp.float32),
                jnp.asarray(terminated, bool), info)

    def reset_env(self, key: jax.Array, params: Any):
        obs, state = self.backend.reset_env(key, params)
        return obs.astype(jnp.float32), _strong(state)

    def is_terminated(self, state: Any, params: Any) -> jax.Array:
        return self.backend.is_terminated(state, params)


def with_horizon(task: RealTask, steps: int) -> RealTask:
    """The same real task with its episodes cut at ``steps`` (``truncated`` there): a shorter test
    horizon for scoring candidates on a long task."""
    if not isinstance(task, RealTask):
        raise UsageError(f"a test horizon needs a gymnax task; {task.spec.id} is stepped on the host")
    return RealTask(task.spec, steps)


def _strong(state):
    """The backend's state with its step counter as int32 (gymnax resets it to a Python 0)."""
    return state.replace(time=jnp.asarray(state.time, jnp.int32))


def make_task(task_id: str) -> TaskEnv:
    """The real task ``task_id`` (a one-line ``UsageError`` for an unknown id): gymnax's dynamics, or
    for ``host/`` tasks a simulator stepped on the host (``synthenv.tasks.half_cheetah``)."""
    spec = get_spec(task_id)
    if spec.gymnax_id == "host/HalfCheetah-v5":
        from synthenv.tasks.half_cheetah import HalfCheetahTask

        return HalfCheetahTask(spec)
    return RealTask(spec)
