"""What every inner agent shares: the result type, the replay buffer, episode bookkeeping with the
paper's stop rules, and the chunked training loop that runs only until the slowest agent stops.

The contract agents fulfil is ``synthenv.agents.protocol.InnerAgent``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from synthenv.errors import UsageError
from synthenv.nets import ACTIVATIONS


class TrainResult(NamedTuple):
    params: Any
    steps: jax.Array
    episodes: jax.Array
    diverged: jax.Array
    last_return: jax.Array
    replay: Any = None
    """Replay-based agents: the buffer at the end of training (the transitions seen in training)."""


# ---------------------------------------------------------------------------------------------------
# Configs


def raise_if_invalid(agent: str, config, checks: dict[str, bool]) -> None:
    """A one-line ``UsageError`` naming the first failed check (or an unknown ``config.activation``,
    for agents with networks)."""
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise UsageError(f"invalid {agent} setting {bad[0]}={getattr(config, bad[0])!r}")
    if hasattr(config, "activation") and config.activation not in ACTIVATIONS:
        raise UsageError(f"unknown activation {config.activation!r}; choose one of {', '.join(ACTIVATIONS)}")


def resolve_preset(agent: str, presets: dict, preset: str, overrides: dict):
    """``presets[preset]`` with ``overrides`` applied; a one-line error listing the known presets."""
    try:
        base = presets[preset]
    except KeyError:
        raise UsageError(f"unknown {agent} preset {preset!r}; known presets: {', '.join(presets)}") from None
    return replace(base, **overrides)


# ---------------------------------------------------------------------------------------------------
# Stop rules


PROTOCOL_FIELDS = ("max_episodes", "proxy_min_steps", "stop_window", "stop_tolerance")
"""The stop fields that define the training protocol on a proxy. An SE is learned for one protocol, so
agents trained on it later (any algorithm) take these from the SE's training config. The step cap
``proxy_max_steps`` stays the agent's own: it is a compute budget, and sample efficiency differs by
algorithm (PPO needs far more steps than DDQN)."""


def with_protocol(config, source: dict):
    """``config`` with the protocol fields of ``source`` (a config dict), where ``source`` has them."""
    return replace(config, **{k: source[k] for k in PROTOCOL_FIELDS if k in source})


@dataclass(frozen=True)
class StopConfig:
    """The fields every agent config carries (agent configs subclass it; an agent redeclares a field to
    change its default): episode and step caps, the paper's stop rule, the training-loop chunk."""

    max_episodes: int = 1000
    max_steps: int = 100_000
    """Our cap on environment steps per agent on the real task (the paper only caps episodes)."""
    proxy_max_steps: int = 2_000
    """Our cap on environment steps per agent on a proxy (the paper only caps episodes at 1000)."""
    proxy_min_steps: int = 0
    """Steps on a proxy before the convergence stop may fire (0: the paper's rule). Keeps an SE from
    scoring by making agents stop after a few flat episodes, before they learn anything."""
    stop_window: int = 10
    stop_tolerance: float = 0.01
    chunk_steps: int = 64
    """Steps per while-loop iteration: larger chunks cost less loop overhead, waste more after stopping."""

    def stop_checks(self) -> dict[str, bool]:
        """Validity of these fields (merged into each agent config's checks)."""
        return {"max_episodes": self.max_episodes >= 1, "max_steps": self.max_steps >= 1,
                "proxy_max_steps": self.proxy_max_steps >= 1, "proxy_min_steps": self.proxy_min_steps >= 0,
                "stop_window": self.stop_window >= 1, "stop_tolerance": self.stop_tolerance >= 0,
                "chunk_steps": self.chunk_steps >= 1}


def step_cap(config, stop_rule: str) -> int:
    """Environment steps an agent may take: ``proxy_max_steps`` on a proxy, ``max_steps`` on the real task."""
    return config.proxy_max_steps if stop_rule in ON_PROXY else config.max_steps


STOP_RULES = ("converged", "budget", "threshold", "none")
ON_PROXY = ("converged", "budget")
"""The stop rules of agents on a proxy (capped at ``proxy_max_steps``)."""


def make_stop_test(config, stop_rule: str, threshold: float) -> Callable:
    """``stop(recent, episodes, steps) -> bool`` checked at the end of each episode.

    "converged" (on a proxy, the paper's rule): the mean return of the last ``stop_window`` episodes is
    within ``stop_tolerance`` (relative) of the mean of the window before, after at least
    ``proxy_min_steps`` steps. "budget" (on a synthetic bandit, whose episodes are single steps):
    exactly ``proxy_max_steps`` steps, neither a convergence test nor the episode cap. "threshold" (on the real task): the mean of the last ``stop_window``
    returns reaches ``threshold``. "none": only the caps stop the agent (a fixed budget; tests on the
    real task may stop it, ``synthenv.agents.learning_curve``). ``recent`` holds the last ``2 * stop_window`` returns, oldest first.
    """
    if stop_rule not in STOP_RULES:
        raise ValueError(f"unknown stop rule {stop_rule!r}")
    window = config.stop_window

    def stop(recent, episodes, steps):
        last, prev = jnp.mean(recent[window:]), jnp.mean(recent[:window])
        if stop_rule == "converged":
            diff = jnp.abs(last - prev)
            ok = (diff < config.stop_tolerance * jnp.abs(prev)) | (diff == 0)
            return ok & (episodes >= 2 * window) & (steps >= config.proxy_min_steps)
        if stop_rule == "threshold":
            return (last >= threshold) & (episodes >= window)
        return jnp.bool_(False)

    return stop


class Episodes(NamedTuple):
    """Per-agent episode bookkeeping."""

    ep_return: jax.Array
    recent: jax.Array  # the last 2 * stop_window episode returns, oldest first
    episodes: jax.Array
    steps: jax.Array

    @staticmethod
    def init(window: int) -> "Episodes":
        return Episodes(jnp.float32(0), jnp.zeros((2 * window,), jnp.float32), jnp.int32(0), jnp.int32(0))

    def record(self, active, reward, ep_end) -> "Episodes":
        """Add one step's reward (``active`` agents only); close the episode where ``ep_end``."""
        ep_return = self.ep_return + jnp.where(active, reward, 0.0)
        recent = jnp.where(ep_end, jnp.concatenate([self.recent[1:], ep_return[None]]), self.recent)
        return Episodes(jnp.where(ep_end, 0.0, ep_return), recent, self.episodes + ep_end, self.steps + active)


def should_end(config, stop_rule: str, stop_test: Callable, ep: Episodes, ep_end, diverged):
    """Whether an agent stops after this step: stop rule at an episode end, episode or step cap, divergence."""
    stop = ep_end & stop_test(ep.recent, ep.episodes, ep.steps)
    episode_cap = (ep.episodes >= config.max_episodes) if stop_rule != "budget" else False
    return stop | episode_cap | (ep.steps >= step_cap(config, stop_rule)) | diverged


def keep_where(cond, new, old):
    """``new`` where ``cond`` else ``old``, leaf by leaf (masked updates inside a vmapped population)."""
    return jax.tree.map(lambda a, b: jnp.where(cond, a, b), new, old)


@dataclass(frozen=True)
class TrainLoop:
    """An agent's training as pieces: ``init(key, env_params, hp) -> state``, ``step(state, env_params,
    hp) -> state`` (one environment step; PPO: one rollout and update), ``result(state) ->
    TrainResult``. States carry ``stopped`` and ``ep`` (:class:`Episodes`). Called, it is the agent's
    pure ``train(key, env_params, hp)``; ``synthenv.agents.learning_curve`` drives the same pieces with
    test episodes between training episodes."""

    init: Callable
    step: Callable
    result: Callable
    chunk_steps: int
    set_stopped: Callable = field(default=lambda state, stopped: state._replace(stopped=stopped))
    """``set_stopped(state, flag)``: the state with its stop flag replaced. A stopped agent's state
    stays unchanged by ``step`` (but for its key), so setting the flag pauses the agent."""

    def __call__(self, key: jax.Array, env_params: Any, hp) -> TrainResult:
        state = run_until_stopped(lambda s: self.step(s, env_params, hp), self.init(key, env_params, hp),
                                  self.chunk_steps)
        return self.result(state)


def run_until_stopped(step: Callable, state, chunk_steps: int):
    """Run ``step`` in ``lax.scan`` chunks inside a ``lax.while_loop`` until ``state.stopped``.

    Under ``vmap`` the loop runs until every agent of the batch has stopped; stopped agents must
    leave their state unchanged (masks), so nobody pays for the step cap unless some agent needs it.
    """

    def chunk(s):
        return jax.lax.scan(lambda c, _: (step(c), None), s, None, length=chunk_steps)[0]

    return jax.lax.while_loop(lambda s: ~s.stopped, chunk, state)


# ---------------------------------------------------------------------------------------------------
# Replay buffer


class Replay(NamedTuple):
    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    done: jax.Array
    size: jax.Array
    ptr: jax.Array

    @staticmethod
    def init(capacity: int, obs_dim: int, action_shape: tuple = (), action_dtype=jnp.int32) -> "Replay":
        z = lambda *s: jnp.zeros((capacity, *s), jnp.float32)  # noqa: E731
        return Replay(z(obs_dim), jnp.zeros((capacity, *action_shape), action_dtype), z(), z(obs_dim), z(),
                      jnp.int32(0), jnp.int32(0))

    def add(self, active, obs, action, reward, next_obs, done) -> "Replay":
        """Store one transition. An inactive (stopped) agent writes into the slot it would use next
        without claiming it, which keeps the update free of a data-dependent branch."""
        capacity = self.obs.shape[0]
        p = self.ptr
        return Replay(self.obs.at[p].set(obs), self.action.at[p].set(action), self.reward.at[p].set(reward),
                      self.next_obs.at[p].set(next_obs), self.done.at[p].set(done),
                      jnp.where(active, jnp.minimum(self.size + 1, capacity), self.size),
                      jnp.where(active, (p + 1) % capacity, p))

    def sample(self, key, batch_size: int):
        """``(obs, action, reward, next_obs, done)`` of ``batch_size`` uniform draws from the filled part."""
        idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(self.size, 1))
        return self.obs[idx], self.action[idx], self.reward[idx], self.next_obs[idx], self.done[idx]


def batch_mask(max_batch: int, batch_size) -> jax.Array:
    """1.0 for the first ``batch_size`` rows of a maximum-size batch (varied batch sizes under vmap)."""
    return (jnp.arange(max_batch) < batch_size).astype(jnp.float32)
