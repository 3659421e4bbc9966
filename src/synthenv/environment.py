"""The one environment protocol: every environment an agent trains on is a gymnax 1.x ``Environment``.

Real tasks (``synthenv.tasks``), synthetic environments and any other proxy-wrapped task subclass
:class:`TaskEnv`, a gymnax ``Environment`` bound to a task of the registry (its spaces, step cap and
solved threshold): ``reset(key, params) -> (obs, state)`` and ``step(key, state, action, params) ->
(obs, state, reward, terminated, truncated, info)`` with gymnax's auto-reset. Truncation is the task's
step cap (``state.time >= params.max_steps_in_episode``) and is never termination.

Signals only a proxy has travel in ``info``: ``td_done`` (what enters a TD target as ``1 - td_done``;
the terminated flag where absent) and ``bad`` (the proxy produced inf/NaN). :func:`env_step` reads a
step of *any* gymnax environment into one :class:`Transition`, so agents need nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
from gymnax.environments import environment, spaces

if TYPE_CHECKING:  # the registry's tasks build on this module, not the other way round
    from synthenv.tasks.registry import TaskSpec


class EnvInfo(NamedTuple):
    """What an agent needs to know of an environment's spaces (static)."""

    obs_dim: int
    n_actions: int  # discrete actions: their number; 0 for continuous actions
    action_dim: int  # continuous actions: the vector size (in [-action_high, action_high])
    action_high: float

    @property
    def continuous(self) -> bool:
        return self.n_actions == 0


def describe(env: environment.Environment, params: Any = None) -> EnvInfo:
    """The spaces of any gymnax environment (Discrete or symmetric Box actions, flat Box observations)."""
    if isinstance(env, TaskEnv):
        return env.info
    params = env.default_params if params is None else params
    obs_space, act_space = env.observation_space(params), env.action_space(params)
    obs_dim = int(jnp.prod(jnp.asarray(obs_space.shape)))
    if isinstance(act_space, spaces.Discrete):
        return EnvInfo(obs_dim, int(act_space.n), 0, 0.0)
    return EnvInfo(obs_dim, 0, int(jnp.prod(jnp.asarray(act_space.shape))), float(jnp.max(act_space.high)))


class Transition(NamedTuple):
    """One step of an environment as agents use it."""

    obs: jax.Array  # the observation to act on next (after an auto-reset where the episode ended)
    next_obs: jax.Array  # the true next observation (before any reset): for replay and bootstrapping
    state: Any
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    td_done: jax.Array  # what enters the TD target as (1 - td_done)
    bad: jax.Array  # the environment produced inf/NaN: the agent must be scored as the worst


def env_step(env: environment.Environment, key: jax.Array, state: Any, action: jax.Array,
             params: Any) -> Transition:
    """Step any gymnax environment and read the result, proxy signals included, into a ``Transition``."""
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)
    terminated, truncated = jnp.asarray(terminated, bool), jnp.asarray(truncated, bool)
    return Transition(obs=obs, next_obs=info.get("final_observation", obs), state=state,
                      reward=jnp.asarray(reward, jnp.float32), terminated=terminated, truncated=truncated,
                      td_done=jnp.asarray(info.get("td_done", terminated), jnp.float32),
                      bad=jnp.asarray(info.get("bad", False), bool))


class TaskEnv(environment.Environment):
    """A gymnax environment bound to a task of the registry: spaces, step cap and threshold from it."""

    def __init__(self, spec: TaskSpec):
        super().__init__()
        self.spec = spec

    @property
    def info(self) -> EnvInfo:
        """The spaces as agents read them (what ``describe(self)`` returns)."""
        s = self.spec
        return EnvInfo(s.obs_dim, s.n_actions, s.action_dim, s.action_high)

    @property
    def name(self) -> str:
        return self.spec.id

    @property
    def num_actions(self) -> int:
        return self.spec.n_actions if not self.spec.continuous else self.spec.action_dim

    def action_space(self, params: Any = None):
        s = self.spec
        if s.continuous:
            return spaces.Box(-s.action_high, s.action_high, (s.action_dim,), jnp.float32)
        return spaces.Discrete(s.n_actions)

    def observation_space(self, params: Any = None):
        return spaces.Box(-jnp.inf, jnp.inf, (self.spec.obs_dim,), jnp.float32)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.id!r})"
