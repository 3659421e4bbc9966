"""Learning a proxy in pure stages: ``learn(config, key) -> (weights, metrics)``, no files.

:class:`Learner` holds the compiled pieces of one run (the generation steps, the confirmation of a
solved score); :meth:`Learner.advance` takes a :class:`RunState` one generation further and returns
the new state with that generation's :class:`GenerationRecord`. The run directory, resume and
progress output (``synthenv.meta.run``) are layers on top of these.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, NamedTuple

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from synthenv.agents.hparams import strata
from synthenv.agents.registry import get_agent, split_entry
from synthenv.meta.config import TrainSEConfig
from synthenv.meta.rn_config import TrainRNConfig
from synthenv.meta.generation import make_confirmation, make_generation
from synthenv.meta.population import Stratum
from synthenv.meta.strategies import make_strategy
from synthenv.tasks.real import make_task, with_horizon


@dataclass(frozen=True)
class Best:
    """The best proxy so far: its score, generation, and whether fresh agents confirmed it."""

    score: float = -float("inf")
    generation: int = -1
    confirmed: bool = False

    def beaten_by(self, score: float, confirmed: bool) -> bool:
        """Confirmed scores (more agents, one proxy) outrank unconfirmed ones."""
        return bool(np.isfinite(score)) and (confirmed, score) >= (self.confirmed, self.score)


@dataclass(frozen=True)
class RunState:
    """Everything a run carries from one generation to the next (what ``--resume`` restores)."""

    es_state: Any
    best_flat: jax.Array
    """The best proxy's weights as one flat vector."""
    generations_done: int = 0
    best: Best = Best()
    real_env_steps: int = 0
    wall_seconds: float = 0.0
    solved: bool = False
    latest_scores: dict[str, float] = field(default_factory=dict)
    """Per inner agent, its latest score (confirmed where it was)."""
    attempt: int = 0
    """Restarts so far (``restart_after``): the ES runs from the fresh proxy of attempt ``attempt``."""
    attempt_best: float = -float("inf")
    """The best unperturbed score of this attempt (``restart_below``)."""
    attempt_started: int = 0
    """The generation this attempt began with (``restart_after`` counts from it)."""
    attempt_failed_checks: int = 0
    """This attempt's failed ``confirm_also`` checks (``restart_after_failed_checks``)."""


@dataclass(frozen=True)
class GenerationRecord:
    """One generation's metrics (one line of ``metrics.jsonl``; each metric is named here once)."""

    generation: int
    inner_agent: str
    """The inner agents this generation trained, comma-separated."""
    fitness_mean: float
    fitness_max: float
    """Member scores after the mirrored sign choice."""
    score_unperturbed: float
    """The lowest over this generation's inner agents of their unperturbed agents' mean."""
    unperturbed_by_agent: dict[str, float]
    train_steps_mean: float
    train_steps_max: int
    train_episodes_mean: float
    diverged: int
    """Agents whose proxy produced inf/NaN or whose training diverged."""
    real_env_steps: int
    """Real-env steps so far (cumulative)."""
    real_env_steps_generation: int
    score_confirmed: float | None
    """Where the score reached the target: the lowest over all inner agents of the mean over their
    unperturbed and confirming agents."""
    confirmed_by_agent: dict[str, float] | None
    wall_seconds: float
    solved: bool
    attempt: int = 0
    """The ES restart this generation belongs to (0: the run's first proxy; ``restart_after``)."""
    restarted: bool = False
    """Whether this generation began attempt ``attempt`` from a fresh proxy."""

    def to_json(self) -> dict:
        return asdict(self)


class Advance(NamedTuple):
    """What one generation gives: the new state, its record, and whether the best proxy changed."""

    state: RunState
    record: GenerationRecord
    improved: bool


class Learner:
    """The compiled pieces of one run: initial ES state, the compiled generation steps and per inner
    agent one confirmation of the solved test.

    With ``inner_mix`` "cycle", generation ``g`` trains ``config.inner_agents[g % n]`` only (one
    compiled step per agent); with "together", every generation trains all of them (one step).
    """

    def __init__(self, config: TrainSEConfig | TrainRNConfig, n_devices: int | None = None, from_file: bool = True,
                 key: jax.Array | None = None):
        """``from_file=False``: a resumed run whose saved ES state replaces the initial one, so the
        ``init_se`` file is neither needed nor read. ``key``: the run's root key (default: from
        ``config.seed``)."""
        config.validate(check_files=from_file)
        self.config = config
        self.task = make_task(config.env)
        self.proxy = config.proxy_env(self.task)
        root = jax.random.key(config.seed) if key is None else key
        self.init_key, self.gen_key = jax.random.split(root)
        flat0, self.unravel = ravel_pytree(self.proxy.init(self.init_key))
        initial = config.initial_weights() if from_file else None
        if initial is not None:
            flat0 = ravel_pytree(initial)[0]
        self.strategy = make_strategy(config.es, flat0.size)
        # The ES scores on ``fitness_task`` (the task, or its episodes cut at ``fitness_horizon``); the
        # confirmation always on the task itself.
        fitness_task = self.task if config.fitness_horizon is None else with_horizon(self.task, config.fitness_horizon)
        n_agents = self.strategy.num_candidates * config.agents_per_member + config.unperturbed_agents
        algorithms = [self._strata(name, fitness_task, n_agents) for name in config.inner_agents]
        n = len(algorithms)
        self.groups = [[j] for j in range(n)] if config.inner_mix == "cycle" else [list(range(n))]
        self.steps = tuple(make_generation(self.strategy, [algorithms[j] for j in group], config.unperturbed_agents,
                                           n_devices, config.agents_per_member, config.common_draws)
                           for group in self.groups)
        self.confirms = tuple(make_confirmation(self._strata(name, self.task, config.confirm_agents),
                                                config.confirm_agents, n_devices) if config.confirm_agents else None
                              for name in config.inner_agents)
        also = getattr(config, "confirm_also", ())
        self.also_confirms = tuple(make_confirmation(self._strata(name, self.task, config.confirm_also_agents),
                                                     config.confirm_also_agents, n_devices) for name in also)
        self.init_es_state = self.strategy.init(self.init_key, flat0)

    def _strata(self, name: str, task, agents: int) -> list[Stratum]:
        """Inner algorithm ``name``'s population of ``agents`` on ``task``, split into the config's
        shape strata (each allocated at its own maximum shapes: a masked population costs what its
        largest member does)."""
        c = self.config
        agent, agent_config = get_agent(split_entry(name)[0]), c.agent_config(name)

        def stratum(cell):
            shapes = agent.max_shapes(agent_config, c.vary_hparams, cell)
            member = c.make_member(agent, self.proxy, task, self.unravel, agent_config, shapes)
            return Stratum(member, lambda k: agent.sample_hparams(k, agent_config, c.vary_hparams, cell))

        return [stratum(cell) for cell in strata(agent.HParams, agent_config, c.vary_hparams, c.shape_strata, agents)]

    def initial_state(self) -> RunState:
        return RunState(self.init_es_state, self.strategy.mean(self.init_es_state))

    def restart_state(self, attempt: int):
        """The ES state that attempt ``attempt`` >= 1 starts from: a fresh random proxy of its own key."""
        key = jax.random.fold_in(self.init_key, attempt)
        return self.strategy.init(key, ravel_pytree(self.proxy.init(key))[0])

    def restarts_at(self, state: RunState) -> bool:
        """Whether the next generation starts a new attempt: ``restart_after`` generations of this
        attempt have passed without a solve (with ``restart_below``: and its unperturbed agents never
        reached that score; an attempt that did goes on, and is checked again ``restart_after`` later),
        or its ``confirm_also`` checks failed ``restart_after_failed_checks`` times."""
        if state.solved:
            return False
        c, age = self.config, state.generations_done - state.attempt_started
        failed = getattr(c, "restart_after_failed_checks", 0)
        if failed and state.attempt_failed_checks >= failed:
            return True
        below = getattr(c, "restart_below", None)
        stalled = below is None or state.attempt_best < below
        return bool(c.restart_after) and age > 0 and age % c.restart_after == 0 and stalled

    def generation(self, es_state, generation: int):
        """Run generation number ``generation``: ``(es_state, evaluated_mean, stats)``."""
        return self.steps[generation % len(self.steps)](es_state, self.key_for(generation))

    def agents_of(self, generation: int) -> list[int]:
        """The inner agents (indices into ``config.inner_agents``) generation ``generation`` trains."""
        return self.groups[generation % len(self.groups)]

    def confirm(self, flat, generation: int, slot: int) -> tuple[float, int]:
        """Mean score of ``confirm_agents`` fresh agents of inner agent number ``slot`` trained on
        ``flat`` and the real-env steps their tests took (compiled on first use: most runs need it a
        few times at most)."""
        key = jax.random.fold_in(self.key_for(generation), 1 if slot == self.agents_of(generation)[0] else 2 + slot)
        score, real_steps = self.confirms[slot](flat, key)
        return score.item(), int(real_steps)

    def key_for(self, generation: int) -> jax.Array:
        return jax.random.fold_in(self.gen_key, generation)

    def compile(self) -> float:
        """Compile the generation steps; returns seconds."""
        t = time.perf_counter()
        self.steps = tuple(s.lower(self.init_es_state, self.key_for(0)).compile() for s in self.steps)
        return time.perf_counter() - t

    def finished(self, state: RunState) -> bool:
        return state.generations_done >= self.config.generations or (state.solved and self.config.stop_when_solved)

    def weights(self, flat) -> Any:
        """A flat vector as the proxy's weights pytree, on this process alone (with several processes
        the vector is a global array, and process 0 alone writes the weights)."""
        return self.unravel(np.asarray(flat))

    def advance(self, state: RunState) -> Advance:
        """One generation: ES step, the solved test (confirmed by fresh agents), the best proxy."""
        c, g = self.config, state.generations_done
        t = time.perf_counter()
        restarted = self.restarts_at(state)
        if restarted:  # a fresh proxy; the best one so far stays the run's best
            state = replace(state, es_state=self.restart_state(state.attempt + 1), attempt=state.attempt + 1,
                            latest_scores={}, attempt_best=-float("inf"), attempt_started=g,
                            attempt_failed_checks=0)
        es_state, evaluated, stats = self.generation(state.es_state, g)
        trained = {c.inner_agents[j]: float(x) for j, x in zip(self.agents_of(g), stats.unperturbed_by_agent)}
        unperturbed, real_steps = stats.score_unperturbed.item(), int(stats.real_env_steps)
        latest = {**state.latest_scores, **trained}
        by_agent = None
        if c.confirm_agents and unperturbed >= c.trigger_score():
            by_agent, confirm_steps = self._confirm(evaluated, g, trained)
            real_steps += confirm_steps
            latest.update(by_agent)
        confirmed = None if by_agent is None else min(by_agent.values())
        seconds = time.perf_counter() - t
        # The proxy's score: the worst inner agent's latest score (once every agent has run); all of
        # them measured on this proxy when it was confirmed, so "solved" is always one proxy's verdict.
        # A confirm_also algorithm that this generation's check measured counts too: of two proxies
        # DDQN confirmed, the one PPO learns from better is the better one.
        score = (min(latest[name] for name in c.inner_agents) if all(name in latest for name in c.inner_agents)
                 else -float("inf"))
        also = [v for name, v in (by_agent or {}).items() if name not in c.inner_agents]
        score, failed_check = min([score, *also]), bool(also) and min(also) < c.solved_score()
        solved_now = ((confirmed is not None and confirmed >= c.solved_score()) if c.confirm_agents
                      else score >= c.solved_score())
        improved = state.best.beaten_by(score, confirmed is not None)
        record = GenerationRecord(
            generation=g, inner_agent=",".join(trained), fitness_mean=stats.fitness_mean.item(),
            fitness_max=stats.fitness_max.item(), score_unperturbed=unperturbed, unperturbed_by_agent=trained,
            train_steps_mean=stats.train_steps_mean.item(), train_steps_max=int(stats.train_steps_max),
            train_episodes_mean=stats.train_episodes_mean.item(), diverged=int(stats.diverged),
            real_env_steps=state.real_env_steps + real_steps, real_env_steps_generation=real_steps,
            score_confirmed=confirmed, confirmed_by_agent=by_agent, wall_seconds=seconds, solved=solved_now,
            attempt=state.attempt, restarted=restarted)
        new = replace(state, es_state=es_state, generations_done=g + 1,
                      best=Best(score, g, confirmed is not None) if improved else state.best,
                      best_flat=evaluated if improved else state.best_flat,
                      real_env_steps=record.real_env_steps, wall_seconds=state.wall_seconds + seconds,
                      solved=state.solved or solved_now, latest_scores=latest,
                      attempt_best=max(state.attempt_best, unperturbed),
                      attempt_failed_checks=state.attempt_failed_checks + failed_check)
        return Advance(new, record, improved)

    def _confirm(self, flat, generation: int, trained: dict[str, float]) -> tuple[dict[str, float], int]:
        """A second, independent sample of agents of every inner algorithm on this very proxy: per
        algorithm, the mean over its fresh agents pooled with this generation's unperturbed ones (if it
        trained any); if all of them reach the solved score, the mean of ``confirm_also_agents`` fresh
        agents of each ``confirm_also`` algorithm in turn, up to the first that falls short (the verdict
        is then known); and the real-env steps the fresh agents' tests took."""
        c, by_agent, steps = self.config, {}, 0
        for slot, name in enumerate(c.inner_agents):
            score, real_steps = self.confirm(flat, generation, slot)
            steps += real_steps
            if name in trained and c.fitness_horizon is None:  # (at a shorter horizon: not comparable)
                n_old, n_new = c.unperturbed_agents, c.confirm_agents
                score = (n_old * trained[name] + n_new * score) / (n_old + n_new)
            by_agent[name] = score
        if min(by_agent.values()) >= c.solved_score():  # the algorithms of confirm_also, only for a pass
            key = jax.random.fold_in(self.key_for(generation), 1000)
            for i, (name, confirm) in enumerate(zip(c.confirm_also, self.also_confirms)):
                score, real_steps = confirm(flat, jax.random.fold_in(key, i))
                by_agent[name], steps = score.item(), steps + int(real_steps)
                if by_agent[name] < c.solved_score():
                    break
        return by_agent, steps


def learn(config: TrainSEConfig, key: jax.Array | None = None, n_devices: int | None = None,
          on_generation: Callable[[GenerationRecord], None] | None = None) -> tuple[Any, list[GenerationRecord]]:
    """Learn a proxy in memory: ``(best weights, one record per generation)``.

    Runs until ``config.generations`` or, with ``stop_when_solved``, the first confirmed solve.
    ``key`` replaces the root key drawn from ``config.seed``; ``train_se`` with the same config gives
    the same result.
    """
    learner = Learner(config, n_devices, key=key)
    state, records = learner.initial_state(), []
    while not learner.finished(state):
        state, record, _ = learner.advance(state)
        records.append(record)
        if on_generation is not None:
            on_generation(record)
    return learner.weights(state.best_flat), records
