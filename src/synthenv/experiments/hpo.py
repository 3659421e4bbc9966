"""Agent hyperparameter optimisation with an SE as the cheap proxy (``synthenv hpo``).

Optuna (TPE) asks a batch of trials; every trial of the batch trains one fresh agent on the SE, all in
one compiled, vmapped call, and its score (the mean real test return after training on the SE; the
real task is only used to test, as in ``evaluate``) is told back. The best ``validate`` configs are
then trained on the real task with the task's threshold stop rule, as ``evaluate --env`` trains, so
that the SE side's ranking can be checked against what the configs do on the real task.

The search space is the agent's ``HParams`` fields, the values that may differ inside one vmapped
population, around the base config's value ``x`` and wider than the varied-HP rule of
``agents.hparams``: the learning rate log-uniform in ``[x/10, 10x]``, batch, minibatch and hidden
sizes log-uniform integers in ``[x/4, 4x]``, the layer count from 1 to ``L+2``, the tabular agents'
alpha and gamma uniform in ``[0.1, 1]``; the agent's own caps apply (PPO's minibatch at most its
rollout). Every trial is allocated at the space's maximum shapes and its keys come from the seed and
its trial number, so a trial's score depends on its hyperparameters, the seed and its number only,
not on the batch it ran in.
"""

from __future__ import annotations

import time
from dataclasses import astuple, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optuna
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution

from synthenv.agents.hparams import RULES, UNIFORM01
from synthenv.agents.registry import check_supports
from synthenv.errors import UsageError
from synthenv.experiments.evaluate import agent_config, make_train_and_test
from synthenv.proxies.files import LoadedProxy, load_synthetic

LOG_SPREAD = 10.0
"""Float fields drawn log-uniformly by the varied-HP rule (the learning rate): ``[x/10, 10x]``."""
SIZE_SPREAD = 4.0
"""Integer sizes (batch, minibatch, hidden): ``[x/4, 4x]``."""
EXTRA_LAYERS = 2
"""Layer counts: 1 to ``L + 2``."""
SE_SIDE, REAL_SIDE = 0, 1


def hparams_of(module, config, values: dict):
    """The agent's ``HParams`` for ``values`` (a field -> value dict), built by the agent's own sampler
    without variation, so its caps apply."""
    return module.sample_hparams(jax.random.key(0), replace(config, **values), False)


def _corners(config, fields) -> tuple[dict, dict]:
    low, high = {}, {}
    for f in fields:
        x, rule = getattr(config, f), RULES[f]
        if rule == "log":
            low[f], high[f] = x / LOG_SPREAD, x * LOG_SPREAD
        elif rule == "log_int":
            low[f], high[f] = max(1, round(x / SIZE_SPREAD)), max(1, round(x * SIZE_SPREAD))
        elif rule == "layers":
            low[f], high[f] = 1, x + EXTRA_LAYERS
        else:  # uniform01
            low[f], high[f] = UNIFORM01
    return low, high


def search_space(module, config) -> dict[str, BaseDistribution]:
    """The Optuna distributions of the agent's ``HParams`` fields around ``config`` (module docstring)."""
    fields = module.HParams._fields
    low, high = _corners(config, fields)
    capped = [hparams_of(module, config, c)._asdict() for c in (low, high)]  # the agent's caps on sizes
    space = {}
    for f in fields:
        if RULES[f] in ("log", "uniform01"):
            space[f] = FloatDistribution(low[f], high[f], log=RULES[f] == "log")
        else:
            space[f] = IntDistribution(capped[0][f].item(), capped[1][f].item(), log=RULES[f] == "log_int")
    return space


def space_shapes(module, config, space: dict[str, BaseDistribution]):
    """The static shapes every trial is allocated at: field by field the larger of the agent's
    ``max_shapes`` at the space's lowest and at its highest corner (every shape grows with one
    hyperparameter, like the hidden size, or shrinks with one, like PPO's minibatches per epoch
    with the minibatch size)."""
    low, high = ({f: getattr(d, side) for f, d in space.items()} for side in ("low", "high"))
    a, b = (module.max_shapes(replace(config, **c), False) for c in (low, high))
    return type(a)(*(max(x, y) for x, y in zip(astuple(a), astuple(b))))


def describe_space(space: dict[str, BaseDistribution]) -> dict:
    return {f: {"low": d.low, "high": d.high, "log": d.log, "type": "int" if isinstance(d, IntDistribution)
                else "float"} for f, d in space.items()}


def agent_keys(seed: int, side: int, numbers: list[int], agents: int) -> jax.Array:
    """One key per (config, agent), config-major: a function of the seed, the side (SE or real), the
    config's trial number and the agent's index only."""
    base = jax.random.fold_in(jax.random.key(seed), side)
    return jnp.stack([jax.random.fold_in(jax.random.fold_in(base, n), a) for n in numbers for a in range(agents)])


@dataclass(frozen=True)
class Search:
    """What a search on an SE works with: the SE, the agent's module, its base config and the space."""

    se: LoadedProxy
    module: Any
    config: Any
    preset: str
    space: dict
    shapes: Any

    @property
    def spec(self):
        return self.se.env.task.spec

    def base_params(self) -> dict:
        """The base config's own values, within the space (the first trial of ``hpo``)."""
        return {f: min(max(getattr(self.config, f), d.low), d.high) for f, d in self.space.items()}

    def scorer(self, side: int, episodes: int, seed: int, agents: int = 1,
               n_devices: int | None = None) -> Callable[[list[int], list[dict]], dict]:
        """``score(numbers, params)``: ``agents`` fresh agents per config trained on the SE
        (``SE_SIDE``, the SE's stop rule: converged; a bandit's: its fixed budget) or on the real task (``REAL_SIDE``, the threshold stop
        rule) in one compiled call, tested for ``episodes`` greedy real episodes each; per config the
        mean test return, mean training steps and diverged agents. Compiled once per batch size."""
        task = self.se.env.task
        train_env, rule, env_params = ((self.se.env, self.se.kind.stop_rule, self.se.env.default_params) if side == SE_SIDE
                                       else (task, "threshold", None))
        run = make_train_and_test(self.module, self.config, self.shapes, task, train_env, rule, env_params,
                                  episodes, n_devices)

        def score(numbers: list[int], params: list[dict]) -> dict:
            hps = [hparams_of(self.module, self.config, p) for p in params for _ in range(agents)]
            r = run(agent_keys(seed, side, numbers, agents), jax.tree.map(lambda *xs: jnp.stack(xs), *hps))
            n = len(numbers)
            return {"returns": r["returns"].reshape(n, -1).mean(axis=1),
                    "steps": r["steps"].reshape(n, agents).mean(axis=1),
                    "diverged": r["diverged"].reshape(n, agents).sum(axis=1)}

        return score


def make_search(proxy: str | Path, agent: str, preset: str | None) -> Search:
    """Load the SE and check the agent: the base config is the one ``evaluate`` gives agents on it."""
    se = load_synthetic(proxy)
    spec = se.env.task.spec
    module = check_supports(agent, spec.continuous, spec.id)
    config, preset = agent_config(module, agent, preset, spec.id, se.training_config)
    config.validate()
    space = search_space(module, config)
    return Search(se, module, config, preset, space, space_shapes(module, config, space))


def make_study(sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(direction="maximize", sampler=sampler)


def tpe_sampler(seed: int) -> optuna.samplers.TPESampler:
    """TPE with the constant liar: trials asked for one batch before any is told are spread apart."""
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def top_trials(trials: list[optuna.trial.FrozenTrial], k: int) -> list[optuna.trial.FrozenTrial]:
    """The ``k`` best trials by score, ties by trial number."""
    return sorted(trials, key=lambda t: (-t.value, t.number))[:k]


def hpo(proxy: str | Path, agent: str = "ddqn", trials: int = 64, validate: int = 4, batch: int = 16,
        episodes: int = 10, preset: str | None = None, seed: int = 0, n_devices: int | None = None,
        on_event: Callable[[str, dict], None] | None = None) -> dict:
    """Search on the SE, validate the best ``validate`` configs on the real task; returns the report.

    Batches of ``batch`` trials are asked, trained together and told (a last, smaller batch is padded
    with copies of its last trial, whose results are dropped, so that every batch reuses one
    compilation). Trial 0 is the base config's own values.
    """
    if trials < 1 or validate < 1 or batch < 1 or episodes < 1:
        raise UsageError(f"--trials, --validate, --batch and --episodes must be >= 1, got {trials}, {validate}, "
                         f"{batch} and {episodes}")
    if validate > trials:
        raise UsageError(f"--validate ({validate}) cannot exceed --trials ({trials})")
    search = make_search(proxy, agent, preset)
    emit = on_event or (lambda kind, data: None)
    study = make_study(tpe_sampler(seed))
    study.enqueue_trial(search.base_params())
    size = min(batch, trials)
    score_se = search.scorer(SE_SIDE, episodes, seed, n_devices=n_devices)
    t0 = time.perf_counter()
    for start in range(0, trials, size):
        asked = [study.ask(search.space) for _ in range(min(size, trials - start))]
        padded = asked + asked[-1:] * (size - len(asked))
        r = score_se([t.number for t in padded], [t.params for t in padded])
        for trial, value in zip(asked, r["returns"]):
            study.tell(trial, float(value))
        emit("batch", {"done": start + len(asked), "trials": trials, "best": study.best_value,
                       "seconds": time.perf_counter() - t0})
    se_seconds = time.perf_counter() - t0

    done = study.get_trials(deepcopy=False)
    top = top_trials(done, validate)
    t0 = time.perf_counter()
    real = search.scorer(REAL_SIDE, episodes, seed, n_devices=n_devices)([t.number for t in top],
                                                                          [t.params for t in top])
    real_seconds = time.perf_counter() - t0
    threshold = search.spec.solved_threshold
    validated = [{"rank": i + 1, "number": t.number, "params": t.params, "se_return": t.value,
                  "real_return": float(real["returns"][i]), "real_steps": float(real["steps"][i]),
                  "real_solved": bool(real["returns"][i] >= threshold), "real_diverged": int(real["diverged"][i])}
                 for i, t in enumerate(top)]
    best = study.best_trial
    return {
        "proxy": str(proxy), "env": search.spec.id, "agent": agent, "preset": search.preset, "seed": seed,
        "trials": trials, "batch": size, "episodes": episodes, "solved_threshold": threshold,
        "space": describe_space(search.space), "base_params": search.base_params(),
        "trial_log": [{"number": t.number, "params": t.params, "se_return": t.value} for t in done],
        "best": {"number": best.number, "params": best.params, "se_return": best.value},
        "validated": validated, "se_wall_seconds": se_seconds, "real_wall_seconds": real_seconds,
    }
