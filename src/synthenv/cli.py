"""Command-line interface (tyro, dataclass args): ``synthenv train-se``, ``synthenv train-rn``, ``synthenv evaluate``, ``synthenv tune``,
``synthenv hpo``, ``synthenv experiment train-ses|refine-ses|transfer|histograms|rn-curves|hpo-proxy`` and
``synthenv plot curves``.

JAX is imported only after the arguments are parsed, because the number of XLA host devices
(``--devices``) must be fixed before JAX starts.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Callable, Optional

import tyro

# Options typed ``Optional[X] = None`` mean "not given" when absent (so that --resume can tell the
# options the user gave from the saved ones, and per-task defaults apply). Every command is parsed with
# ``tyro.conf.DisallowNone``: --help shows the real type (``INT``, not ``{None}|INT``), "None" is not a
# value, and ``Optional[bool]`` options become ``--flag / --no-flag`` pairs that stay None when absent.
# ``_default`` replaces tyro's "(default: None)" with the value the option really takes.
PARSER_CONFIG = (tyro.conf.DisallowNone,)


def _default(text: str | Callable[[], str], **arg):
    """``tyro.conf.arg(**arg)`` whose help ends in ``(default: TEXT)``; a callable ``text`` is called only
    when the help is shown (the config classes it reads import JAX, which must wait for --devices)."""
    return tyro.conf.arg(help_behavior_hint=lambda _label: f"(default: {text() if callable(text) else text})",
                         **arg)


@functools.cache
def _task_configs() -> dict:
    """The resolved train-se config of every SE task with no option given (``make_config``: the config
    classes' defaults with ``TASK_DEFAULTS``), the default task first."""
    from synthenv.meta.config import TrainSEConfig, make_config
    from synthenv.tasks.registry import TASKS

    default = TrainSEConfig().env
    envs = [default] + [e for e, spec in TASKS.items() if not spec.continuous and e != default]
    return {env: make_config(env=env) for env in envs}


def _config_value(config, key: str):
    if key == "target_score":  # None: the task's solved threshold
        return config.solved_score()
    value = config
    for part in key.split("."):
        value = getattr(value, part)
    return (",".join(value) or "none") if isinstance(value, tuple) else value


def _task_default_text(key: str) -> str:
    """The default of config field ``key`` (e.g. ``es.sigma``) for the default task, then every task
    where it differs: ``0.05; Acrobot-v1: 0.0114``."""
    (_, config), *others = _task_configs().items()
    base = _config_value(config, key)
    return "; ".join([str(base)] + [f"{e}: {v}" for e, c in others if (v := _config_value(c, key)) != base])


def _default_env() -> str:
    return next(iter(_task_configs()))


def _task_default(key: str):
    return _default(lambda: _task_default_text(key))


def _refine_default(key: str):
    def text() -> str:
        from synthenv.experiments.se_sets import REFINE

        return str(REFINE[key])

    return _default(text)


def _evaluate_steps_text() -> str:
    from synthenv.proxies.registry import PROXIES

    longer = "; ".join(f"on a {k.name}: " + ", ".join(f"{a} {n:,}" for a, n in k.fresh_steps.items())
                       for k in PROXIES.values() if k.fresh_steps)
    return f"the agent's own cap{'; ' + longer if longer else ''}"


def _evaluate_preset_text() -> str:
    from synthenv.agents.registry import AGENTS, get_agent

    special = ", ".join(f"{name} on {task}: {preset}" for name in AGENTS
                        for task, preset in get_agent(name).REAL_TASK_PRESETS.items())
    return f"on the real task small ({special}); on an SE: the config or preset the SE was learned with"


DEVICES = _default("one per core")


def _cluster_default(field: str):
    def text() -> str:
        from synthenv.distributed import Cluster

        return str(getattr(Cluster, field))

    return _default(text)


@dataclass(frozen=True)
class TrainSE:
    """Learn a synthetic environment with an evolution strategy (stops once solved by default). Options
    not given take the defaults shown (some per task); with --resume, the saved run's values."""

    out: Path
    """Run directory (config.json, metrics.jsonl, se.safetensors, state.safetensors)."""
    env: Annotated[Optional[str], _default(_default_env)] = None
    """Real task id: CartPole-v0, CartPole-v1, Acrobot-v1."""
    resume: bool = False
    """Continue the run in --out with its saved config (--generations may raise the cap)."""
    config: Annotated[Optional[Path], _default("none")] = None
    """A JSON file of config values (a partial config.json, e.g. tune's best_config.json); options given
    here override it."""
    protocol: Annotated[Optional[str], _default("synthenv")] = None
    """The set of per-task defaults the other options start from: synthenv (ours) or paper (the paper's
    tuned NES and DDQN, fixed agent HPs, one agent per candidate, the single-sample solved test)."""
    seed: Annotated[Optional[int], _task_default("seed")] = None
    generations: Annotated[Optional[int], _task_default("generations")] = None
    """Generation cap (runs stop earlier once solved)."""
    population: Annotated[Optional[int], _task_default("es.population")] = None
    """ES population size."""
    preset: Annotated[Optional[str], _task_default("preset")] = None
    """Inner DDQN preset: small, cartpole, acrobot, hpvar (the paper's)."""
    inner_agents: Annotated[Optional[str], _task_default("inner_agents")] = None
    """Comma-separated inner algorithms, e.g. ddqn,dueling_ddqn,ppo,sac.
    NAME:PRESET picks a preset (default: small; ddqn: --preset)."""
    inner_mix: Annotated[Optional[str], _task_default("inner_mix")] = None
    """With several inner agents: cycle (one per generation in turn) or together (all every generation)."""
    proxy_kind: Annotated[Optional[str], _task_default("proxy_kind")] = None
    """What the ES learns: se (a synthetic environment) or bandit (a synthetic contextual bandit:
    learned first states and reward, one-step episodes; written to the same se.safetensors)."""
    init_se: Annotated[Optional[Path], _default("none, a random SE")] = None
    """Start from this SE file (same task; its architecture) instead of a random SE."""
    strategy: Annotated[Optional[str], _task_default("es.strategy")] = None
    """nes (the paper's), open_es or snes (evosax)."""
    sigma: Annotated[Optional[float], _task_default("es.sigma")] = None
    """ES perturbation scale (the paper's sigma for nes)."""
    lr: Annotated[Optional[float], _task_default("es.lr")] = None
    """ES step size (the paper's alpha for nes)."""
    score_transform: Annotated[Optional[int], _task_default("es.score_transform")] = None
    """The paper's score transform 0-7 (nes only)."""
    mirrored: Annotated[Optional[bool], _task_default("es.mirrored")] = None
    """Mirrored (antithetic) perturbations."""
    mirrored_update: Annotated[Optional[str], _task_default("es.mirrored_update")] = None
    """nes, mirrored: best_sign (the paper's: the better sign's score, then the score transform) or
    difference (each pair weighted by its score difference)."""
    proxy_max_steps: Annotated[Optional[int], _task_default("agent.proxy_max_steps")] = None
    """Cap on training steps per inner agent on the SE."""
    proxy_min_steps: Annotated[Optional[int], _task_default("agent.proxy_min_steps")] = None
    """Steps on the SE before the paper's convergence stop may end an agent's training."""
    agents_per_member: Annotated[Optional[int], _task_default("agents_per_member")] = None
    """Agents trained per perturbed SE; their mean score is its fitness (the paper's: 1)."""
    common_draws: Annotated[Optional[str], _task_default("common_draws")] = None
    """Common random numbers: pairs (the two signs of a mirrored pair train the same agents) or
    population (every candidate of a generation trains the same agents)."""
    vary_hparams: Annotated[Optional[bool], _task_default("vary_hparams")] = None
    """Vary inner-agent hyperparameters."""
    shape_strata: Annotated[Optional[str], _task_default("shape_strata")] = None
    """With varied HPs: comma-separated shape fields (layers, hidden, batch_size, minibatch_size)
    whose ranges split each algorithm's agents into strata, each run at its own shapes (faster; the
    same HP distribution per agent); none: an empty string."""
    stop_when_solved: Annotated[Optional[bool], _task_default("stop_when_solved")] = None
    """Stop once the SE counts as solved."""
    target_score: Annotated[Optional[float], _task_default("target_score")] = None
    """Mean real return at which the SE counts as solved (the task's threshold; raised for Acrobot-v1)."""
    confirm_agents: Annotated[Optional[int], _task_default("confirm_agents")] = None
    """Fresh agents that must confirm a solved score on the same SE (0: the paper's single test)."""
    confirm_also: Annotated[Optional[str], _task_default("confirm_also")] = None
    """Comma-separated algorithms that must also confirm a solve without training in the ES (e.g.
    ppo,sac): after the inner agents' confirmation passes, --confirm-also-agents fresh agents of each
    train on the SE and every algorithm's mean must reach the target; none: an empty string."""
    confirm_also_agents: Annotated[Optional[int], _task_default("confirm_also_agents")] = None
    """Fresh agents per --confirm-also algorithm."""
    fitness_horizon: Annotated[Optional[int], _default("none, the task's cap")] = None
    """Cut the real test episodes that score candidates at this many steps (none: the task's cap); a
    solve is then confirmed on the full horizon by the confirming agents alone."""
    fitness_target: Annotated[Optional[float], _default("none")] = None
    """With --fitness-horizon: the unperturbed score at that horizon that calls the confirmation."""
    restart_after: Annotated[Optional[int], _task_default("restart_after")] = None
    """Restart the ES from a fresh random SE every this many generations without a solve (0: never)."""
    restart_below: Annotated[Optional[float], _task_default("restart_below")] = None
    """With --restart-after: restart only an attempt whose unperturbed score never reached this."""
    restart_after_failed_checks: Annotated[Optional[int], _task_default("restart_after_failed_checks")] = None
    """Restart an attempt once this many of its --confirm-also checks failed (0: never)."""
    se_hidden: Annotated[Optional[int], _task_default("se.hidden")] = None
    """SE hidden layer width."""
    se_activation: Annotated[Optional[str], _task_default("se.activation")] = None
    """SE activation function."""
    se_max_steps: Annotated[Optional[int], _task_default("se.max_steps")] = None
    """The SE's step cap per episode (none: the task's)."""
    se_done_bias_init: Annotated[Optional[float], _task_default("se.done_bias_init")] = None
    """The done head's output bias in a fresh SE (negative: episodes start long; 0: flax's default)."""
    coordinator: Annotated[Optional[str], _default("none, one process")] = None
    """Learn on several processes or hosts: HOST:PORT of process 0 (the same on every process), or auto
    (detect SLURM, Open MPI); see docs/distributed.md."""
    num_processes: Annotated[Optional[int], _default("with auto: detected")] = None
    """Processes of the run (with --coordinator)."""
    process_id: Annotated[Optional[int], _default("with auto: detected")] = None
    """This process's id, 0 to --num-processes - 1; process 0 writes --out and shows progress."""
    connect_timeout: Annotated[Optional[int], _cluster_default("connect_timeout")] = None
    """Seconds every process may take to connect (with --coordinator)."""
    heartbeat_timeout: Annotated[Optional[int], _cluster_default("heartbeat_timeout")] = None
    """Seconds without a heartbeat after which a process counts as dead and the run stops."""
    devices: Annotated[Optional[int], DEVICES] = None
    """Local devices to split the population across."""
    debug: bool = False
    """Show tracebacks."""


def _rn_default(key: str):
    """``_default`` showing the default of an RN run's config value ``key`` (``es.sigma``)."""

    def text() -> str:
        from synthenv.meta.rn_config import TrainRNConfig

        return str(_config_value(TrainRNConfig(), key))

    return _default(text)


@dataclass(frozen=True)
class TrainRN:
    """Learn a reward network with an evolution strategy: fresh agents train on the real dynamics with
    the RN's reward, one real test episode after each training episode, scored by --objective. Options
    not given take the defaults shown (some per task); with --resume, the saved run's values."""

    out: Path
    """Run directory (config.json, metrics.jsonl, rn.safetensors, state.safetensors)."""
    env: Annotated[Optional[str], _default("CartPole-v0")] = None
    """Real task id: Cliff-v0, CliffWalking-v1, CartPole-v0, MountainCarContinuous-v0, HalfCheetah-v5, ..."""
    variant: Annotated[Optional[str], _rn_default("rn.variant")] = None
    """additive-potential, exclusive-potential, additive, exclusive, or linear-info (a linear weighting
    of the task's info vector, the paper's baseline; HalfCheetah-v5)."""
    objective: Annotated[Optional[str], _rn_default("objective")] = None
    """auc (area under the test-return curve), threshold (training steps to the threshold) or final."""
    resume: bool = False
    """Continue the run in --out with its saved config (--generations may raise the cap)."""
    seed: Annotated[Optional[int], _rn_default("seed")] = None
    generations: Annotated[Optional[int], _rn_default("generations")] = None
    population: Annotated[Optional[int], _rn_default("es.population")] = None
    inner_agents: Annotated[Optional[str], _default("per task: q_learning, ddqn, td3")] = None
    """Comma-separated inner algorithms (NAME or NAME:PRESET; default preset small)."""
    max_episodes: Annotated[Optional[int], _rn_default("max_episodes")] = None
    """Training episodes per inner agent, each followed by one real test episode."""
    threshold: Annotated[Optional[float], _default("the task's solved threshold")] = None
    """The threshold objective's return."""
    vary_hparams: Annotated[Optional[bool], _rn_default("vary_hparams")] = None
    """Vary inner-agent hyperparameters."""
    sigma: Annotated[Optional[float], _rn_default("es.sigma")] = None
    lr: Annotated[Optional[float], _rn_default("es.lr")] = None
    rn_hidden: Annotated[Optional[int], _default("per task: 32, 64, 128")] = None
    rn_activation: Annotated[Optional[str], _default("per task: prelu, tanh")] = None
    rn_info: Annotated[Optional[bool], _rn_default("rn.info")] = None
    """The "+ info" variants: the RN also reads the task's info vector (the reward's components;
    HalfCheetah-v5)."""
    terminal_potential_zero: Annotated[Optional[bool], _rn_default("rn.terminal_potential_zero")] = None
    """Potential variants: Phi of a terminal state is 0 (sound shaping); --no-terminal-potential-zero:
    the network's Phi as is (the original implementation)."""
    devices: Annotated[Optional[int], DEVICES] = None
    """Local devices to split the population across."""
    debug: bool = False
    """Show tracebacks."""


@dataclass(frozen=True)
class Evaluate:
    """Train fresh agents on an SE or RN (--proxy) or on the real task (--env), test them on the real
    task after every training episode (learning curves) and at the end."""

    proxy: Annotated[Optional[Path], _default("none, train on --env")] = None
    """An SE model file (agents train only on it) or an RN file (agents train on the real dynamics with
    its reward)."""
    env: Annotated[Optional[str], _default("the proxy's task; required without --proxy")] = None
    """Without --proxy: train on this real task (the baseline). With --proxy: check the proxy's task."""
    target: Annotated[Optional[float], _default("the task's solved threshold")] = None
    """steps_to_target: each agent's training steps until a test return first reaches this."""
    icm: bool = False
    """Train with the ICM curiosity bonus added to the reward (the paper's curiosity baseline)."""
    agent: str = "ddqn"
    agents: int = 16
    episodes: int = 10
    """Greedy test episodes per agent on the real task."""
    steps: Annotated[Optional[int], _default(_evaluate_steps_text)] = None
    """Each agent's training step cap (on a synthetic bandit its exact budget; on the real task or an RN, real-env steps)."""
    vary_hparams: bool = False
    """Draw each agent's hyperparameters from the paper's varied-HP distribution."""
    preset: Annotated[Optional[str], _default(_evaluate_preset_text)] = None
    """The agent's preset."""
    json: Annotated[Optional[Path], _default("none, print only", name="json")] = None
    """Write the results (every return, steps, episodes, solved fraction) to this file."""
    seed: int = 0
    devices: Annotated[Optional[int], DEVICES] = None
    debug: bool = False


@dataclass(frozen=True)
class TrainSEs:
    """Train a set of SEs (one subfolder each; resumable, finished runs are skipped)."""

    out: Path
    env: str = "CartPole-v0"
    count: int = 40
    hparams: str = "varied"
    """varied: inner agents with the paper's varied HPs; fixed: the preset's HPs."""
    generations: int = 50
    """Generation cap per SE (the paper's HP-variation SEs: 50, stop when solved)."""
    seed: int = 0
    """SE i uses seed + i."""
    inner_agents: Annotated[Optional[str], _task_default("inner_agents")] = None
    """Comma-separated inner algorithms."""
    inner_mix: Annotated[Optional[str], _task_default("inner_mix")] = None
    """With several inner agents: cycle or together (see train-se)."""
    config: Annotated[Optional[Path], _default("none")] = None
    """A JSON file of config values for every SE of the set (a partial config.json, as train-se
    --config; not env, seed, generations or vary_hparams, which the set's options give); options given
    here override it."""
    devices: Annotated[Optional[int], DEVICES] = None
    debug: bool = False


@dataclass(frozen=True)
class RefineSEs:
    """Refine every SE of a set: restart each SE's own ES from its weights with a smaller step and more
    agents per candidate (one subfolder each; resumable, finished runs are skipped)."""

    ses: Path
    """An SE set folder (from train-ses) or a folder of .safetensors SE files."""
    out: Path
    generations: Annotated[Optional[int], _refine_default("generations")] = None
    sigma: Annotated[Optional[float], _refine_default("sigma")] = None
    """ES perturbation scale."""
    lr: Annotated[Optional[float], _refine_default("lr")] = None
    """ES step size."""
    agents_per_member: Annotated[Optional[int], _refine_default("agents_per_member")] = None
    """Agents trained per perturbed SE; their mean score is its fitness."""
    seed: int = 0
    """Refinement i uses seed + i."""
    inner_agents: Annotated[Optional[str], _default("each SE's own")] = None
    """Comma-separated inner algorithms."""
    inner_mix: Annotated[Optional[str], _default("each SE's own")] = None
    """cycle or together."""
    target_score: Annotated[Optional[float], _default("each SE's own")] = None
    """Mean real return at which an SE counts as solved and is confirmed."""
    confirm_agents: Annotated[Optional[int], _default("each SE's own")] = None
    """Fresh agents per inner algorithm that confirm a solved score."""
    include_unsolved: bool = False
    """Refine every SE of the set, not only the solved ones."""
    devices: Annotated[Optional[int], DEVICES] = None
    debug: bool = False


@dataclass(frozen=True)
class Transfer:
    """The transfer study: varied-HP agents trained on every SE of each set and on the real task."""

    ses: tuple[Path, ...]
    """SE set folders (from train-ses) or folders of .safetensors SE files; one setting each."""
    out: Path
    """Report folder: summary.json, returns.json, densities.png, steps.png, report.md."""
    agents: str = "ddqn,dueling_ddqn,td3_discrete"
    """Comma-separated agents."""
    agents_per_se: int = 10
    episodes: int = 10
    real: bool = True
    """Also train the same agents on the real task (the baseline)."""
    real_agents: Annotated[Optional[int], _default("agents-per-se x the largest set")] = None
    """Agents per algorithm on the real task."""
    include_unsolved: bool = False
    """Use every SE of a set, not only the solved ones."""
    seed: int = 0
    devices: Annotated[Optional[int], DEVICES] = None
    debug: bool = False


@dataclass(frozen=True)
class RnCurves:
    """The RN study: real test return against training steps for RNs (by variant) and the baselines
    (the agent alone, + ICM, and on grid tasks + the count-based bonus)."""

    rns: tuple[Path, ...]
    """RN files, RN run folders, or folders of RN runs."""
    out: Path
    """Report folder: curves.png, summary.json, report.md."""
    env: Annotated[Optional[str], _default("the RNs' task")] = None
    agent: Annotated[Optional[str], _default("the RNs' inner agent")] = None
    """The agent trained on the RNs and the baselines (e.g. sarsa on Cliff-v0: an unseen agent)."""
    preset: Annotated[Optional[str], _default("the RNs' inner-agent preset (small)")] = None
    """The agent's preset in every setting (the count-bonus baseline: count)."""
    agents_per_rn: int = 10
    hparams: str = "default"
    """default (the agent's preset) or varied (the paper's varied-HP distribution per agent)."""
    baselines: bool = True
    seed: int = 0
    devices: Annotated[Optional[int], DEVICES] = None
    debug: bool = False


@dataclass(frozen=True)
class Histograms:
    """Next-state and reward histograms: SE transitions in training, real ones at test, SE on real (s, a)."""

    proxy: Path
    agent: str = "ddqn"
    agents: int = 10
    episodes: int = 10
    """Greedy real test episodes per agent."""
    vary_hparams: bool = False
    out: Annotated[Optional[Path], _default("histograms.png beside the SE")] = None
    """PNG to write; statistics go to the same name .json."""
    seed: int = 0
    devices: Annotated[Optional[int], DEVICES] = None
    debug: bool = False


_HPO_PRESET = _default("as evaluate: the config or preset the SE was learned with")


@dataclass(frozen=True)
class Hpo:
    """Search an agent's hyperparameters (learning rate, batch or minibatch size, hidden size, layers)
    by training only on an SE: Optuna asks batches of trials, each batch trains in one vmapped call and
    is scored by real test returns; the best --validate configs are then trained on the real task."""

    proxy: Path
    """An SE model file; the search trains only on it."""
    agent: str = "ddqn"
    trials: int = 64
    """Trials trained on the SE (trial 0: the base config's own values)."""
    validate: int = 4
    """Best trials then trained on the real task (the task's threshold stop rule)."""
    batch: int = 16
    """Trials per vmapped batch (one compilation serves every batch)."""
    episodes: int = 10
    """Greedy real test episodes per agent."""
    preset: Annotated[Optional[str], _HPO_PRESET] = None
    """The agent's base preset; the search space is around its values."""
    json: Annotated[Optional[Path], _default("none, print only", name="json")] = None
    """Write the report (every trial, the validated configs, wall times) to this file."""
    seed: int = 0
    devices: Annotated[Optional[int], DEVICES] = None
    debug: bool = False


@dataclass(frozen=True)
class HpoProxy:
    """How well an SE ranks agent hyperparameters: random configs from the hpo search space, each
    trained on the SE and on the real task; Spearman rank correlation, top-k overlap, each side's time."""

    proxy: Path
    """An SE model file."""
    out: Path
    """Report folder: summary.json, scatter.png, report.md."""
    agent: str = "ddqn"
    configs: int = 24
    """Random configs, each trained on both sides."""
    agents_per_config: int = 2
    """Fresh agents per config on each side; their mean test return is the config's."""
    episodes: int = 10
    """Greedy real test episodes per agent."""
    top: Annotated[Optional[int], _default("a quarter of --configs")] = None
    """k of the top-k overlap."""
    preset: Annotated[Optional[str], _HPO_PRESET] = None
    """The agent's base preset; the search space is around its values."""
    seed: int = 0
    devices: Annotated[Optional[int], DEVICES] = None
    debug: bool = False


@dataclass(frozen=True)
class Curves:
    """Success curves (unperturbed score over generations) of many runs."""

    runs: Annotated[tyro.conf.Positional[tuple[Path, ...]], tyro.conf.arg(help_behavior_hint="(one or more)")]
    """Run folders or folders of runs (e.g. a train-ses folder)."""
    out: Path = Path("curves.png")
    title: Annotated[Optional[str], _default("'TASK: N runs'")] = None
    debug: bool = False


@dataclass(frozen=True)
class Tune:
    """Search the NES and inner-DDQN hyperparameters with Optuna: a trial's value is the generations its
    runs take to solve the task (summed over the runs; an unsolved run counts twice the cap). Run it again,
    or in several processes at once, to add trials to the same study."""

    study: Path
    """Study folder: study.db (the Optuna study, SQLite), best_config.json, history.png, importances.png."""
    trials: int
    """Run until the study holds this many finished (complete or pruned) trials."""
    env: str = "CartPole-v0"
    runs_per_trial: int = 3
    """SE runs per trial (seeds --seed, --seed + 1, ...; the same in every trial)."""
    max_generations: int = 50
    """Generation cap of each run (the paper's: 50, stop when solved)."""
    seed: int = 0
    vary_hparams: bool = False
    """Train the inner agents with varied HPs (the paper tuned with fixed HPs; 20-50x the cost here)."""
    config: Annotated[Optional[Path], _default("none")] = None
    """Base config file (as for train-se --config) under the searched values, e.g. {"es": {"population": 8}}."""
    devices: Annotated[Optional[int], DEVICES] = None
    debug: bool = False


def _given(**options) -> dict:
    """The options the user gave (not None): overrides on top of the defaults or a saved config."""
    return {k: v for k, v in options.items() if v is not None}


def _names(csv: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in csv.split(",") if n.strip())


def _set_devices(devices: int | None) -> None:
    from synthenv.errors import UsageError

    if devices is not None and devices < 1:
        raise UsageError(f"--devices must be >= 1, got {devices}")
    from synthenv import host_devices

    host_devices.configure(devices)


def _train_se(a: TrainSE) -> int:
    from synthenv import distributed
    from synthenv.meta import run
    from synthenv.meta.config import TrainSEConfig
    from synthenv.progress import GenerationProgress

    # With several processes, process 0 resolves the config (it alone reads --out and --config).
    config = distributed.from_writer(lambda: _train_se_config(a), pack=lambda c: ({}, c.to_dict()),
                                     unpack=lambda _, d: TrainSEConfig.from_dict(d))
    progress = GenerationProgress(config) if distributed.is_writer() else None
    with progress or contextlib.nullcontext():
        summary = run.train_se(config, a.out, resume=a.resume, n_devices=a.devices,
                               on_event=progress.event if progress else None)
    return 0 if summary["generations_done"] > 0 else 1


def _train_se_config(a: TrainSE):
    """The run's config: the saved one with --resume (checked against the options given), else the
    options over the defaults."""
    from synthenv.meta import run
    from synthenv.meta.config import make_config

    es = _given(population=a.population, strategy=a.strategy, sigma=a.sigma, lr=a.lr,
                score_transform=a.score_transform, mirrored=a.mirrored, mirrored_update=a.mirrored_update)
    se = _given(hidden=a.se_hidden, activation=a.se_activation, done_bias_init=a.se_done_bias_init,
                max_steps=a.se_max_steps)
    agent = _given(proxy_max_steps=a.proxy_max_steps, proxy_min_steps=a.proxy_min_steps)
    inner = _names(a.inner_agents) if a.inner_agents is not None else None
    top = _given(seed=a.seed, generations=a.generations, vary_hparams=a.vary_hparams,
                 stop_when_solved=a.stop_when_solved, inner_agents=inner, confirm_agents=a.confirm_agents,
                 inner_mix=a.inner_mix, init_se=None if a.init_se is None else str(a.init_se),
                 target_score=a.target_score, agents_per_member=a.agents_per_member,
                 common_draws=a.common_draws, restart_after=a.restart_after,
                 fitness_horizon=a.fitness_horizon, fitness_target=a.fitness_target, proxy_kind=a.proxy_kind,
                 confirm_also=None if a.confirm_also is None else _names(a.confirm_also),
                 confirm_also_agents=a.confirm_also_agents, restart_below=a.restart_below,
                 restart_after_failed_checks=a.restart_after_failed_checks,
                 shape_strata=None if a.shape_strata is None else _names(a.shape_strata))
    run.check_out_dir(a.out, a.resume)
    for flag, value in (("--protocol", a.protocol), ("--config", a.config)):
        if a.resume and value is not None:
            from synthenv.errors import UsageError

            raise UsageError(f"{flag} sets the defaults of a new run; drop it to resume (the run keeps its "
                             "saved config)")
    if a.resume:
        config = _resumed_config(a.out, "se", {"es": es, "se": se, "agent": agent},
                                 {**top, **_given(env=a.env, preset=a.preset)})
    else:
        from synthenv.meta.config_file import merge, read_config_file

        given = {"es": es, "se": se, "agent": agent, **top, **_given(env=a.env, preset=a.preset, protocol=a.protocol)}
        config = make_config(**(merge(read_config_file(a.config), given) if a.config is not None else given))
    return config


def _resumed_config(out: Path, kind: str, sections: dict[str, dict], top: dict):
    """The saved config of the ``kind`` ("se" or "rn") run in ``out``, checked against the options given
    (``_check_resume_args``), with the generation cap of ``top`` where given."""
    from dataclasses import replace

    from synthenv.errors import UsageError
    from synthenv.meta import run

    config = run.load_run_config(out)
    if config.kind != kind:
        raise UsageError(f"{out} holds an {config.kind.upper()} run; resume it with synthenv "
                         f"train-{config.kind} --resume")
    _check_resume_args(out, config, sections, top)
    return replace(config, generations=top["generations"]) if "generations" in top else config


def _check_resume_args(out: Path, config, sections: dict[str, dict], top: dict) -> None:
    """Refuse a resume whose given options differ from the saved config (``sections``: the options of
    the nested configs, e.g. ``{"es": {...}}``; ``top``: the others; the generation cap may change)."""
    from dataclasses import asdict

    from synthenv.errors import UsageError

    saved = asdict(config)
    saved.update({f"{section}.{k}": v for section in sections for k, v in saved.pop(section).items()})
    given = {**{f"{section}.{k}": v for section, values in sections.items() for k, v in values.items()},
             **{k: v for k, v in top.items() if k != "generations"}}
    for k, v in given.items():
        if saved[k] != v:
            raise UsageError(f"{out} was run with {k}={saved[k]!r}, not {v!r}; drop the option to resume it")


def _train_rn(a: TrainRN) -> int:
    from synthenv.meta import run
    from synthenv.meta.rn_config import make_rn_config
    from synthenv.progress import GenerationProgress

    es = _given(population=a.population, sigma=a.sigma, lr=a.lr)
    rn = _given(variant=a.variant, hidden=a.rn_hidden, activation=a.rn_activation, info=a.rn_info,
                terminal_potential_zero=a.terminal_potential_zero)
    top = _given(seed=a.seed, generations=a.generations, objective=a.objective, max_episodes=a.max_episodes,
                 threshold=a.threshold, vary_hparams=a.vary_hparams,
                 inner_agents=_names(a.inner_agents) if a.inner_agents is not None else None)
    run.check_out_dir(a.out, a.resume)
    if a.resume:
        config = _resumed_config(a.out, "rn", {"es": es, "rn": rn}, {**top, **_given(env=a.env)})
    else:
        config = make_rn_config(a.env or "CartPole-v0", es=es, rn=rn, **top)
    with GenerationProgress(config) as progress:
        summary = run.train_rn(config, a.out, resume=a.resume, n_devices=a.devices, on_event=progress.event)
    return 0 if summary["generations_done"] > 0 else 1


def _evaluate(a: Evaluate) -> int:
    from synthenv.experiments.evaluate import evaluate_agents
    from synthenv.io.atomic import write_json_atomic
    from synthenv.progress import print_evaluation

    result = evaluate_agents(proxy=a.proxy, env=a.env, agent=a.agent, agents=a.agents, episodes=a.episodes,
                             vary_hparams=a.vary_hparams, preset=a.preset, seed=a.seed, n_devices=a.devices,
                             target=a.target, icm=a.icm, steps=a.steps)
    if a.json is not None:
        write_json_atomic(a.json, result)
    print_evaluation(result)
    return 0


def _train_ses(a: TrainSEs) -> int:
    from synthenv.experiments.se_sets import train_ses
    from synthenv.progress import SetProgress

    extra = _given(inner_agents=_names(a.inner_agents) if a.inner_agents else None, inner_mix=a.inner_mix)
    if a.config is not None:
        from synthenv.errors import UsageError
        from synthenv.meta.config_file import merge, read_config_file

        base = read_config_file(a.config)
        for key, flag in (("env", "--env"), ("seed", "--seed"), ("generations", "--generations"),
                          ("vary_hparams", "--hparams")):
            if key in base:
                raise UsageError(f"{a.config}: {key} is given by train-ses's {flag}; remove it from the file")
        extra = merge(base, extra)
    with SetProgress() as progress:
        statuses = train_ses(a.env, a.count, a.hparams, a.out, seed=a.seed, generations=a.generations,
                             n_devices=a.devices, on_event=progress.event, **extra)
    solved = sum(s["solved"] for s in statuses)
    print(f"{solved} of {len(statuses)} SEs solved; set in {a.out}")
    return 0


def _refine_ses(a: RefineSEs) -> int:
    from synthenv.experiments.se_sets import refine_ses
    from synthenv.progress import SetProgress

    extra = _given(inner_agents=_names(a.inner_agents) if a.inner_agents else None, inner_mix=a.inner_mix,
                   target_score=a.target_score, confirm_agents=a.confirm_agents, generations=a.generations,
                   sigma=a.sigma, lr=a.lr, agents_per_member=a.agents_per_member)  # others: se_sets.REFINE
    with SetProgress() as progress:
        statuses = refine_ses(a.ses, a.out, seed=a.seed, solved_only=not a.include_unsolved, n_devices=a.devices,
                              on_event=progress.event, **extra)
    solved = sum(s["solved"] for s in statuses)
    print(f"{len(statuses)} SEs refined ({solved} confirmed at the target on the way); set in {a.out}")
    return 0


def _transfer(a: Transfer) -> int:
    from synthenv.experiments.transfer import transfer
    from synthenv.progress import JobProgress

    with JobProgress("transfer study") as progress:
        transfer(list(a.ses), list(_names(a.agents)), a.out, agents_per_se=a.agents_per_se, episodes=a.episodes,
                 real=a.real, real_agents=a.real_agents, seed=a.seed, solved_only=not a.include_unsolved,
                 n_devices=a.devices, on_event=progress.event)
    print(f"report: {a.out / 'report.md'}")
    return 0


def _rn_curves(a: RnCurves) -> int:
    from rich.console import Console

    from synthenv.experiments.rn_curves import rn_curves

    console = Console(stderr=True)

    def event(kind, d):
        tag = f"[{d['index'] + 1}/{d['count']}] {d['name']}"
        console.print(f"{tag}: training" if kind == "start" else f"{tag}: done in {d['seconds']:.0f} s")

    s = rn_curves(a.env, list(a.rns), a.out, agent=a.agent, agents_per_rn=a.agents_per_rn, hparams=a.hparams,
                  baselines=a.baselines, seed=a.seed, n_devices=a.devices, on_event=event, preset=a.preset)
    for name, v in s["settings"].items():
        reach = "never" if v["steps_to_threshold"] is None else f"{v['steps_to_threshold']:,.0f} steps"
        print(f"{name:<28} mean curve reaches {s['threshold']:g}: {reach:>14}   final {v['final_return']:8.1f}")
    print(f"report: {a.out}/report.md")
    return 0


def _histograms(a: Histograms) -> int:
    from synthenv.experiments.histograms import GROUPS, transition_histograms

    out = a.out or a.proxy.parent / "histograms.png"
    stats = transition_histograms(a.proxy, out, agent=a.agent, agents=a.agents, episodes=a.episodes,
                                  vary_hparams=a.vary_hparams, seed=a.seed, n_devices=a.devices)
    for g in GROUPS:
        s = stats["groups"][g]
        print(f"{g:<22} {s['transitions']:>8,d} transitions, reward mean {s['reward_mean']:.3f} "
              f"std {s['reward_std']:.3f}")
    print(f"figure: {out}")
    return 0


def _hpo(a: Hpo) -> int:
    from synthenv.experiments.hpo import hpo
    from synthenv.io.atomic import write_json_atomic
    from synthenv.progress import HpoProgress, print_hpo

    result = hpo(a.proxy, agent=a.agent, trials=a.trials, validate=a.validate, batch=a.batch, episodes=a.episodes,
                 preset=a.preset, seed=a.seed, n_devices=a.devices, on_event=HpoProgress().event)
    if a.json is not None:
        write_json_atomic(a.json, result)
    print_hpo(result)
    return 0


def _hpo_proxy(a: HpoProxy) -> int:
    from synthenv.experiments.hpo_proxy import hpo_proxy
    from synthenv.progress import HpoProgress

    s = hpo_proxy(a.proxy, a.out, agent=a.agent, configs=a.configs, agents_per_config=a.agents_per_config,
                  episodes=a.episodes, top=a.top, preset=a.preset, seed=a.seed, n_devices=a.devices,
                  on_event=HpoProgress().event)
    rho = "undefined" if s["spearman_returns"] is None else f"{s['spearman_returns']:.2f}"
    print(f"Spearman (SE return, real return) {rho}; top-{s['top_k']} overlap {s['top_k_overlap']} of "
          f"{s['top_k']}; SE side {s['se_wall_seconds']:.0f} s, real side {s['real_wall_seconds']:.0f} s")
    print(f"report: {a.out / 'report.md'}")
    return 0


def _curves(a: Curves) -> int:
    from synthenv.experiments.curves import plot_curves

    if not a.runs:
        from synthenv.errors import UsageError

        raise UsageError("give one or more run folders (or folders of runs)")
    r = plot_curves(list(a.runs), a.out, a.title)
    print(f"{r['runs']} runs, {r['solved']} solved (median first solved at generation "
          f"{r['median_generation_first_solved']}); figure: {r['figure']}")
    return 0


def _tune(a: Tune) -> int:
    from synthenv.experiments.tune import TuneSettings, tune
    from synthenv.meta.config_file import read_config_file
    from synthenv.progress import TuneProgress, describe_params

    base = read_config_file(a.config) if a.config is not None else {}
    settings = TuneSettings(env=a.env, runs_per_trial=a.runs_per_trial, max_generations=a.max_generations,
                            seed=a.seed, vary_hparams=a.vary_hparams, base=base)
    try:
        with TuneProgress() as progress:
            s = tune(a.study, a.trials, settings, n_devices=a.devices, on_event=progress.event)
    except KeyboardInterrupt:
        print("synthenv: interrupted; every finished trial is saved (run the command again to go on)", file=sys.stderr)
        return 130
    print(f"{s['finished']} trials finished in {s['study']}")
    if s["best_value"] is None:
        print("no complete trial yet (all pruned)")
    else:
        print(f"best: trial {s['best_trial']}, value {s['best_value']:g} "
              f"(generations to solve: {', '.join(str(r['cost']) for r in s['best_runs'])})")
        print(f"  {describe_params(s['best_params'])}")
        print(f"best config: {s['best_config']} (synthenv train-se --config {s['best_config']} --out RUN)")
    print(f"figures: {', '.join(s['figures'])}")
    return 0


COMMANDS = {"train-se": TrainSE, "train-rn": TrainRN, "evaluate": Evaluate, "tune": Tune, "hpo": Hpo}
GROUPS = {"experiment": {"train-ses": TrainSEs, "refine-ses": RefineSEs, "transfer": Transfer,
                         "histograms": Histograms, "hpo-proxy": HpoProxy, "rn-curves": RnCurves},
          "plot": {"curves": Curves}}
RUNNERS = {TrainSE: _train_se, TrainRN: _train_rn, Evaluate: _evaluate, TrainSEs: _train_ses, RefineSEs: _refine_ses,
           Transfer: _transfer, Histograms: _histograms, Curves: _curves, Tune: _tune, Hpo: _hpo,
           HpoProxy: _hpo_proxy, RnCurves: _rn_curves}


def _bool_values_to_flags(cls, args: list[str]) -> list[str]:
    """``--flag True|False`` (and ``--flag=False``) as ``--flag`` / ``--no-flag`` for the ``Optional[bool]``
    options of ``cls``: they took a value before they became flag pairs (README: --stop-when-solved False)."""
    hints = typing.get_type_hints(cls)
    names = {f.name.replace("_", "-") for f in fields(cls) if hints[f.name] == Optional[bool]}
    words = {"true": "--", "false": "--no-"}
    out, i = [], 0
    while i < len(args):
        tok = args[i]
        name, eq, value = tok[2:].partition("=")
        name = name.replace("_", "-")
        if tok.startswith("--") and name in names:
            if eq and value.lower() in words:
                tok = words[value.lower()] + name
            elif not eq and i + 1 < len(args) and args[i + 1].lower() in words:
                tok, i = words[args[i + 1].lower()] + name, i + 1
        out.append(tok)
        i += 1
    return out


def _cli(commands: dict, args: list[str], prog: str):
    cls = commands.get(args[0]) if args else None
    if cls is not None:
        args = [args[0], *_bool_values_to_flags(cls, args[1:])]
    return tyro.extras.subcommand_cli_from_dict(commands, args=args, prog=prog, config=PARSER_CONFIG)


def _parse(argv: list[str] | None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in GROUPS:
        return _cli(GROUPS[argv[0]], argv[1:], f"synthenv {argv[0]}")
    if not argv or argv[0] in ("-h", "--help"):
        print("synthenv: learn synthetic environments for RL\n\ncommands:\n"
              "  train-se      learn one SE\n  train-rn      learn one reward network\n"
              "  evaluate      train fresh agents on an SE, an RN or the real task\n"
              "  tune          search the method's hyperparameters (Optuna)\n"
              "  hpo           search an agent's hyperparameters on an SE, check the best on the real task\n"
              "  experiment    train-ses | refine-ses | transfer | histograms | rn-curves (the paper's studies) | hpo-proxy\n"
              "  plot          curves (success curves of many runs)\n\n"
              "synthenv COMMAND --help for options")
        raise SystemExit(0 if argv else 2)
    return _cli(COMMANDS, argv, "synthenv")


def _cluster(args):
    """The processes of a run on several (train-se --coordinator ...); None: one process."""
    from synthenv.errors import UsageError

    names = ("coordinator", "num_processes", "process_id", "connect_timeout", "heartbeat_timeout")
    given = _given(**{n: getattr(args, n, None) for n in names})
    if "coordinator" not in given:
        if given:
            raise UsageError(f"--{next(iter(given)).replace('_', '-')} needs --coordinator (HOST:PORT or auto)")
        return None
    from synthenv.distributed import Cluster

    cluster = Cluster(**given)
    cluster.validate()
    return cluster


def _start(args) -> int:
    from synthenv import compilation_cache

    _set_devices(getattr(args, "devices", None))  # plot commands do not use JAX
    compilation_cache.configure()
    cluster = _cluster(args)
    if cluster is None:
        return RUNNERS[type(args)](args)
    from synthenv import distributed

    # One process of several: the command runs in a child process that joins the others.
    return distributed.supervise(cluster, lambda: _handled(args, lambda: RUNNERS[type(args)](args)),
                                 "every finished generation is saved on process 0 (run again with --resume)")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    return _handled(args, lambda: _start(args))


def _handled(args, run: Callable[[], int]) -> int:
    """``run()``'s exit code; bad input ends as one line ``synthenv: error: ...`` and exit code 2."""
    from synthenv.errors import UsageError

    try:
        return run()
    except UsageError as e:
        if args.debug:
            raise
        print(f"synthenv: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("synthenv: interrupted; every finished generation is saved (resume with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
