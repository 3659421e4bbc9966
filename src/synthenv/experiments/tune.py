"""Hyperparameter search of the method with Optuna (``synthenv tune``): the paper's search space of
the NES and the inner DDQN, scored by the generations an SE run needs to solve the task.

A trial draws one setting, learns ``runs_per_trial`` SEs with it (seeds ``seed``, ``seed + 1``, ...:
the same for every trial, so trials differ by their settings and not by their luck) and is scored by
the sum of the runs' costs: the generations a run took to solve the task, or ``PENALTY`` times the
generation cap for a run that did not solve it. A trial stops (pruned) as soon as it can no longer
beat the best finished trial: every run still to go costs at least one generation.

The study lives in ``DIR/study.db`` (SQLite): every trial is committed when it ends, so a killed
process loses only its trial in flight, and several processes may work on one study at once. Each
process sends a heartbeat for its running trial; a trial without one for ``GRACE_SECONDS`` (its
process was killed) is marked failed, and only finished trials (complete or pruned) count towards
``--trials``. The study records its settings (task, runs per trial, ...) and refuses others.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import optuna
import sqlalchemy
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from synthenv.errors import UsageError
from synthenv.io.atomic import write_json_atomic
from synthenv.meta.config import TrainSEConfig, make_config
from synthenv.meta.config_file import check_partial, merge
from synthenv.meta.learner import Learner
from synthenv.nets import ACTIVATIONS

STUDY_FILE, BEST_FILE = "study.db", "best_config.json"
HISTORY_FIGURE, IMPORTANCE_FIGURE = "history.png", "importances.png"
STUDY_NAME = "synthenv-tune"
PENALTY = 2
"""An unsolved run costs PENALTY x the generation cap."""
HEARTBEAT_SECONDS, GRACE_SECONDS = 60, 180
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

SPACE = {
    # The paper's NES.
    "es.sigma": FloatDistribution(0.01, 1.0, log=True),
    "es.lr": FloatDistribution(0.1, 1.0, log=True),
    "es.score_transform": IntDistribution(0, 7),
    "es.mirrored": CategoricalDistribution((True, False)),
    # The inner DDQN.
    "agent.init_episodes": IntDistribution(1, 20),
    "agent.batch_size": IntDistribution(64, 256),
    "agent.one_minus_gamma": FloatDistribution(0.001, 0.1, log=True),
    "agent.lr": FloatDistribution(1e-4, 5e-3, log=True),
    "agent.tau": FloatDistribution(0.005, 0.05, log=True),
    "agent.activation": CategoricalDistribution(ACTIVATIONS),
    "agent.hidden": IntDistribution(48, 192),
    "agent.layers": IntDistribution(1, 2),
}
"""The search space (the paper's), by config key; ``agent.one_minus_gamma`` is 1 - gamma."""

SET_BY_TUNE = ("env", "seed", "generations", "stop_when_solved", "vary_hparams", "es.strategy", "agent.gamma",
               *(k for k in SPACE if k != "agent.one_minus_gamma"))
"""Config keys a base config may not set: the search and the settings of the study set them."""


def run_cost(generations: int, solved: bool, max_generations: int) -> int:
    """What one run adds to a trial's value: generations to solve, else PENALTY x the cap."""
    return generations if solved else PENALTY * max_generations


def config_of(params: dict) -> dict:
    """A trial's parameters (``SPACE`` keys) as a partial config: ``{"es": {...}, "agent": {...}}``
    with the paper's NES and gamma = 1 - one_minus_gamma."""
    partial: dict = {"es": {"strategy": "nes"}, "agent": {}}
    for key, value in params.items():
        section, name = key.split(".")
        partial[section][name] = value
    partial["agent"]["gamma"] = 1.0 - partial["agent"].pop("one_minus_gamma")
    return partial


@dataclass(frozen=True)
class TuneSettings:
    """What a study measures; fixed when the study is made (a study refuses other settings)."""

    env: str = "CartPole-v0"
    runs_per_trial: int = 3
    max_generations: int = 50
    """Generation cap of every run (the paper's SEs: 50, stop when solved)."""
    seed: int = 0
    """Run i of every trial uses seed + i."""
    vary_hparams: bool = False
    """The paper tuned with fixed inner-agent HPs; varied HPs cost 20-50x per generation at this space's sizes."""
    base: dict = field(default_factory=dict)
    """A partial config (``train-se --config``) under the searched values, e.g. another population."""

    def validate(self) -> None:
        if self.runs_per_trial < 1:
            raise UsageError(f"--runs-per-trial must be >= 1, got {self.runs_per_trial}")
        if self.max_generations < 1:
            raise UsageError(f"--max-generations must be >= 1, got {self.max_generations}")
        check_partial(self.base, "base config")
        for key in SET_BY_TUNE:
            section, _, name = key.partition(".")
            if section in self.base and (not name or name in self.base[section]):
                raise UsageError(f"base config sets {key}, which tune sets itself; remove it")
        make_config(**self.partial({}, 0))  # the base with the preset's values: its other keys are valid

    def partial(self, params: dict, run: int) -> dict:
        """The partial config of run ``run`` of a trial with ``params``."""
        fixed = {"env": self.env, "seed": self.seed + run, "generations": self.max_generations,
                 "stop_when_solved": True, "vary_hparams": self.vary_hparams}
        return merge(merge(self.base, fixed), config_of(params) if params else {})

    def config(self, params: dict, run: int) -> TrainSEConfig:
        return make_config(**self.partial(params, run))


def open_study(study_dir: Path, settings: TuneSettings) -> optuna.Study:
    """The study in ``study_dir`` (made if new), checked against ``settings``."""
    settings.validate()
    if study_dir.exists() and not study_dir.is_dir():
        raise UsageError(f"--study {study_dir} is a file; give a folder")
    study_dir.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our progress output says it per trial (and no
    # traceback on Ctrl-C)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats
            storage = optuna.storages.RDBStorage(
                f"sqlite:///{study_dir / STUDY_FILE}", engine_kwargs={"connect_args": {"timeout": 60}},
                heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS)
        study = optuna.create_study(storage=storage, study_name=STUDY_NAME, direction="minimize",
                                    sampler=optuna.samplers.TPESampler(), load_if_exists=True)
    except sqlalchemy.exc.DatabaseError as e:
        raise UsageError(f"{study_dir / STUDY_FILE} is not an Optuna study ({e.orig})") from None
    wanted = asdict(settings)
    saved = study.user_attrs.get("settings")
    if saved is None:
        study.set_user_attr("settings", wanted)
        saved = wanted
    for key, value in wanted.items():
        if saved.get(key) != value:
            raise UsageError(f"{study_dir} holds a study with {key}={saved.get(key)!r}, not {value!r}; "
                             "use its settings or another --study")
    return study


def finished_trials(study: optuna.Study) -> list:
    return study.get_trials(deepcopy=False, states=FINISHED)


def best_value(study: optuna.Study) -> float | None:
    return min((t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))), default=None)


def suggest(trial: optuna.Trial) -> dict:
    """Draw every parameter of ``SPACE``."""
    params = {}
    for key, d in SPACE.items():
        if isinstance(d, FloatDistribution):
            params[key] = trial.suggest_float(key, d.low, d.high, log=d.log)
        elif isinstance(d, IntDistribution):
            params[key] = trial.suggest_int(key, d.low, d.high)
        else:
            params[key] = trial.suggest_categorical(key, d.choices)
    return params


def make_objective(settings: TuneSettings, n_devices: int | None, emit: Callable[[str, dict], None]):
    """The objective of a trial: learn its runs, return the summed cost; pruned once the cost so far
    (each run still to go counted at one generation) reaches the best complete trial's value."""

    def objective(trial: optuna.Trial) -> float:
        params, total, runs = suggest(trial), 0, []
        emit("trial", {"number": trial.number, "params": params})
        for i in range(settings.runs_per_trial):
            t = time.perf_counter()
            learner = Learner(settings.config(params, i), n_devices)
            compile_s = learner.compile()
            state, left = learner.initial_state(), settings.runs_per_trial - i - 1
            while not learner.finished(state):
                state, record, _ = learner.advance(state)
                emit("generation", {"number": trial.number, "run": i, **record.to_json()})
                done = learner.finished(state)
                so_far = (run_cost(state.generations_done, state.solved, settings.max_generations) if done
                          else state.generations_done + 1)
                best = best_value(trial.study)
                if best is not None and total + so_far + left >= best and not (done and not left):
                    trial.report(total + so_far, i)
                    trial.set_user_attr("runs", runs)
                    emit("pruned", {"number": trial.number, "run": i, "bound": total + so_far + left, "best": best})
                    raise optuna.TrialPruned()
            cost = run_cost(state.generations_done, state.solved, settings.max_generations)
            total += cost
            runs.append({"seed": settings.seed + i, "generations": state.generations_done, "solved": state.solved,
                         "cost": cost, "seconds": time.perf_counter() - t, "compile_seconds": compile_s})
            trial.report(total, i)
            emit("run", {"number": trial.number, "run": i, "runs": settings.runs_per_trial, **runs[-1]})
        trial.set_user_attr("runs", runs)
        return total

    return objective


def best_config(study: optuna.Study, settings: TuneSettings) -> dict:
    """The best trial's settings as a ``train-se --config`` file (the base, the task, the HP mode)."""
    fixed = {"env": settings.env, "vary_hparams": settings.vary_hparams}
    return merge(merge(settings.base, fixed), config_of(study.best_trial.params))


def write_figures(study: optuna.Study, study_dir: Path) -> list[Path]:
    """Optuna's optimisation history and parameter importances (fANOVA) as PNG files."""
    from synthenv.experiments.figures import _plt, _save

    _plt()  # the Agg backend, before optuna's plots import pyplot
    from optuna.visualization.matplotlib import plot_optimization_history, plot_param_importances

    paths = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna's "experimental" warning for its matplotlib plots
        for plot, name in ((plot_optimization_history, HISTORY_FIGURE), (plot_param_importances, IMPORTANCE_FIGURE)):
            ax = plot(study)
            _save(ax.figure, study_dir / name)
            paths.append(study_dir / name)
    return paths


def tune(study_dir: str | Path, trials: int, settings: TuneSettings = TuneSettings(), n_devices: int | None = None,
         on_event: Callable[[str, dict], None] | None = None) -> dict:
    """Run trials until the study in ``study_dir`` holds ``trials`` finished ones; write the best
    settings (``best_config.json``) and the figures; return a summary.

    ``on_event(kind, data)`` drives progress output: kinds "start", "trial", "generation", "run",
    "pruned", "trial_done".
    """
    study_dir = Path(study_dir)
    if trials < 1:
        raise UsageError(f"--trials must be >= 1, got {trials}")
    study = open_study(study_dir, settings)
    emit = on_event or (lambda kind, data: None)
    emit("start", {"finished": len(finished_trials(study)), "trials": trials, "study": str(study_dir / STUDY_FILE)})

    def trial_done(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        emit("trial_done", {"number": trial.number, "state": trial.state.name.lower(), "value": trial.value,
                            "best": best_value(study),
                            "finished": len(finished_trials(study)), "trials": trials,
                            "seconds": (trial.datetime_complete - trial.datetime_start).total_seconds()})

    if len(finished_trials(study)) < trials:
        study.optimize(make_objective(settings, n_devices, emit),
                       callbacks=[trial_done, optuna.study.MaxTrialsCallback(trials, states=FINISHED)])
    summary = {"study": str(study_dir / STUDY_FILE), "finished": len(finished_trials(study)), "best_value": None,
               "best_trial": None, "best_params": None, "best_config": None,
               "figures": [str(p) for p in write_figures(study, study_dir)]}
    if best_value(study) is not None:
        best = study.best_trial
        write_json_atomic(study_dir / BEST_FILE, best_config(study, settings))
        summary.update(best_value=best.value, best_trial=best.number, best_params=best.params,
                       best_runs=best.user_attrs.get("runs", []), best_config=str(study_dir / BEST_FILE))
    return summary
