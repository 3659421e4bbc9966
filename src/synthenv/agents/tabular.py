"""Tabular Q-learning and SARSA for tasks with one-hot observations, trained entirely inside XLA.

The Q-table is ``[obs_dim, n_actions]`` and a state's row is ``obs @ Q``: on a one-hot observation
that is exactly the table row of its cell, so the agent runs on any environment with one-hot
observations (a real grid task, or a learned proxy of it that keeps the observations), without
knowing the state count. Updates write ``alpha * td_error`` into the cell's row through the outer
product ``obs x one_hot(action)``.

* Q-learning bootstraps from ``max_a' Q(s', a')``; SARSA from ``Q(s', a')`` with ``a'`` the action
  it actually takes next (epsilon-greedy), so it learns the value of its exploring policy.
* The bootstrap is cut by ``Transition.td_done`` (termination), not by truncation at the step cap.
* Exploration is epsilon-greedy, epsilon decayed per episode as DDQN's (``eps_init``, ``eps_min``,
  ``eps_decay``). The table starts at zero, which is optimistic on tasks with negative rewards.
* Optional count-based exploration bonus ``count_bonus / sqrt(n(s, a))``, ``n`` the visits of
  ``(s, a)`` including this one, added to the reward the agent learns from (not to the recorded
  episode return): the paper's tabular baseline.

Stopping is per agent and masked as in DDQN, so a vmapped population stays correct. The varied
hyperparameters are ``alpha`` and ``gamma``, both U[0.1, 1] (``synthenv.agents.hparams``).
``q_learning`` and ``sarsa`` are the registered agent modules; they fix ``algorithm`` in their presets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from synthenv.agents import common
from synthenv.agents import hparams as hpmod
from synthenv.environment import describe, env_step
from synthenv.errors import UsageError

ALGORITHMS = ("q_learning", "sarsa")


@dataclass(frozen=True)
class TabularConfig(common.StopConfig):
    """Tabular TD-control hyperparameters. Defaults: a quick learner of ``Cliff-v0`` (``small``).

    ``alpha=1`` suits deterministic tasks (a visit writes the exact one-step backup), and a short
    epsilon schedule (0.1, x0.8 per episode, down to 0) lets the zero table's optimism do the
    exploring: so the greedy policy is the one the training episodes followed. With ``alpha=0.5``
    or a long-lived epsilon the training returns pass the threshold while the table still holds
    stale, too optimistic values on which the fixed greedy policy can loop; the 20-episode stop
    window adds episodes that settle them.
    """

    algorithm: str = "q_learning"
    """``"q_learning"`` (off-policy, max bootstrap) or ``"sarsa"`` (on-policy, next action's value)."""
    alpha: float = 1.0
    gamma: float = 0.99
    eps_init: float = 0.1
    eps_min: float = 0.0
    eps_decay: float = 0.8
    count_bonus: float = 0.0
    """beta of the exploration bonus beta / sqrt(n(s, a)) (0: none)."""
    proxy_max_steps: int = 5_000
    max_steps: int = 20_000
    stop_window: int = 20

    def validate(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise UsageError(f"unknown tabular algorithm {self.algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
        checks = {"alpha": 0 < self.alpha <= 1, "gamma": 0 <= self.gamma <= 1,
                  "eps_init": 0 <= self.eps_init <= 1, "eps_min": 0 <= self.eps_min <= 1,
                  "eps_decay": 0 < self.eps_decay <= 1, "count_bonus": self.count_bonus >= 0,
                  **self.stop_checks()}
        common.raise_if_invalid(self.algorithm, self, checks)


DISCRETE, CONTINUOUS = True, False


def presets(algorithm: str) -> dict[str, TabularConfig]:
    """The presets of ``q_learning`` and ``sarsa``: ``small`` and ``count`` (small with the count-based
    bonus 0.1 / sqrt(n(s, a)), the paper's baseline)."""
    small = TabularConfig(algorithm=algorithm)
    return {"small": small, "count": replace(small, count_bonus=0.1)}


class HParams(NamedTuple):
    """Per-agent hyperparameters (may differ inside one vmap): step size and discount."""

    alpha: jax.Array
    gamma: jax.Array


@dataclass(frozen=True)
class Shapes:
    """Nothing to allocate per hyperparameter: the table's shape is the task's."""


def max_shapes(config: TabularConfig, vary: bool, stratum: hpmod.StratumParts | None = None) -> Shapes:
    return Shapes()


def sample_hparams(key: jax.Array, config: TabularConfig, vary: bool, stratum: hpmod.StratumParts | None = None) -> HParams:
    return hpmod.draw(HParams, key, config, vary, stratum)


class AgentState(NamedTuple):
    q: jax.Array  # [obs_dim, n_actions]
    counts: jax.Array  # [obs_dim, n_actions] visits of (s, a)
    env_state: Any
    obs: jax.Array
    action: jax.Array  # the action to take at ``obs`` (chosen at the previous step: SARSA's a')
    ep: common.Episodes
    eps: jax.Array
    stopped: jax.Array
    diverged: jax.Array
    key: jax.Array


def td_update(config: TabularConfig, hp: HParams, q: jax.Array, counts: jax.Array, obs, action, reward,
              next_obs, next_action, td_done):
    """One TD update: ``(q, counts, td_error)`` after the transition ``(obs, action, reward, next_obs)``.

    The target is ``reward + bonus + gamma * (1 - td_done) * v(next_obs)``, ``v`` the max over actions
    (Q-learning) or the value of ``next_action`` (SARSA); ``bonus`` is
    ``count_bonus / sqrt(n(s, a))`` with ``n`` counting this visit.
    """
    cell = obs[:, None] * jax.nn.one_hot(action, q.shape[1], dtype=q.dtype)[None, :]  # obs x e_a
    counts = counts + cell
    n = jnp.maximum(obs @ counts[:, action], 1.0)
    bonus = config.count_bonus / jnp.sqrt(n)
    next_row = next_obs @ q
    v_next = jnp.max(next_row) if config.algorithm == "q_learning" else next_row[next_action]
    target = reward + bonus + hp.gamma * (1.0 - td_done) * v_next
    td_error = target - obs @ q[:, action]
    return q + hp.alpha * td_error * cell, counts, td_error


def epsilon_greedy(key: jax.Array, q: jax.Array, obs: jax.Array, eps: jax.Array) -> jax.Array:
    """The greedy action of ``obs @ q`` (first on ties), a uniform one with probability ``eps``."""
    k_explore, k_act = jax.random.split(key)
    greedy = jnp.argmax(obs @ q).astype(jnp.int32)
    random = jax.random.randint(k_act, (), 0, q.shape[1], jnp.int32)
    return jnp.where(jax.random.uniform(k_explore) < eps, random, greedy)


def make_train(config: TabularConfig, env, shapes: Shapes, stop_rule: str = "converged",
               threshold: float = 0.0):
    """Build ``train(key, env_params, hp) -> TrainResult`` (a ``common.TrainLoop``) (params: the Q-table).

    ``env`` is any gymnax environment with one-hot observations and discrete actions; ``stop_rule``
    "converged" (on a proxy) or "threshold" (on the real task), see ``common.make_stop_test``.
    """
    config.validate()
    spaces = describe(env)
    obs_dim, n_actions = spaces.obs_dim, spaces.n_actions
    if n_actions < 1:
        raise UsageError(f"agent {config.algorithm!r} needs discrete actions")
    stop_test = common.make_stop_test(config, stop_rule, threshold)

    def init_state(key, env_params) -> AgentState:
        k_env, k_act, key = jax.random.split(key, 3)
        obs, env_state = env.reset(k_env, env_params)
        q = jnp.zeros((obs_dim, n_actions), jnp.float32)
        eps = jnp.float32(config.eps_init)
        return AgentState(q=q, counts=jnp.zeros_like(q), env_state=env_state, obs=obs,
                          action=epsilon_greedy(k_act, q, obs, eps), ep=common.Episodes.init(config.stop_window),
                          eps=eps, stopped=jnp.bool_(False), diverged=jnp.bool_(False), key=key)

    def step(s: AgentState, env_params, hp: HParams) -> AgentState:
        key, k_env, k_next, k_reset = jax.random.split(s.key, 4)
        active = ~s.stopped
        tr = env_step(env, k_env, s.env_state, s.action, env_params)

        # SARSA's a': the epsilon-greedy action at the true next observation, chosen before the update
        # (Q-learning carries it too, as the action it takes next: the same behaviour policy).
        next_action = epsilon_greedy(k_next, s.q, tr.next_obs, s.eps)
        q, counts, td_error = td_update(config, hp, s.q, s.counts, s.obs, s.action, tr.reward, tr.next_obs,
                                        next_action, tr.td_done)
        q, counts = common.keep_where(active, (q, counts), (s.q, s.counts))
        diverged = s.diverged | (active & (tr.bad | ~jnp.isfinite(td_error)))

        # Episode bookkeeping, epsilon decay; after an episode end the next action is drawn at the
        # reset observation (gymnax auto-resets), with the decayed epsilon.
        ep_end = active & (tr.terminated | tr.truncated)
        ep = s.ep.record(active, tr.reward, ep_end)
        eps = jnp.where(ep_end, jnp.maximum(s.eps * config.eps_decay, config.eps_min), s.eps)
        action = jnp.where(ep_end, epsilon_greedy(k_reset, q, tr.obs, eps), next_action)
        stop = common.should_end(config, stop_rule, stop_test, ep, ep_end, diverged)
        new = AgentState(q=q, counts=counts, env_state=tr.state, obs=tr.obs, action=action, ep=ep, eps=eps,
                         stopped=s.stopped | stop, diverged=diverged, key=key)
        # A stopped agent keeps everything (its env state and action too), so it stays bitwise frozen.
        return common.keep_where(active, new, s)

    def result(s: AgentState) -> common.TrainResult:
        return common.TrainResult(s.q, s.ep.steps, s.ep.episodes, s.diverged, s.ep.recent[-1])

    return common.TrainLoop(lambda key, env_params, hp: init_state(key, env_params), step, result,
                            config.chunk_steps)


def make_policy(config: TabularConfig):
    """Greedy action of a trained agent: ``policy(q_table, hp, obs) -> argmax(obs @ q_table)``."""

    def policy(params, hp, obs):
        return jnp.argmax(obs @ params).astype(jnp.int32)

    return policy
