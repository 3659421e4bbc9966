"""Command-line interface (tyro, dataclass args): ``synthenv train-se``, ``synthenv evaluate``,
``synthenv experiment train-ses|refine-ses|transfer|histograms`` and ``synthenv plot curves``.

JAX is imported only after the arguments are parsed, because the number of XLA host devices
(``--devices``) must be fixed before JAX starts.
"""

from __future__ import annotations

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
    return ",".join(value) if isinstance(value, tuple) else value


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


def _evaluate_preset_text() -> str:
    from synthenv.agents.registry import AGENTS, get_agent

    special = ", ".join(f"{name} on {task}: {preset}" for name in AGENTS
                        for task, preset in get_agent(name).REAL_TASK_PRESETS.items())
    return f"on the real task small ({special}); on an SE: the config or preset the SE was learned with"


DEVICES = _default("one per core")


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
    agents_per_member: Annotated[Optional[int], _task_default("agents_per_member")] = None
    """Agents trained per perturbed SE; their mean score is its fitness (the paper's: 1)."""
    vary_hparams: Annotated[Optional[bool], _task_default("vary_hparams")] = None
    """Vary inner-agent hyperparameters."""
    stop_when_solved: Annotated[Optional[bool], _task_default("stop_when_solved")] = None
    """Stop once the SE counts as solved."""
    target_score: Annotated[Optional[float], _task_default("target_score")] = None
    """Mean real return at which the SE counts as solved (the task's threshold; raised for Acrobot-v1)."""
    confirm_agents: Annotated[Optional[int], _task_default("confirm_agents")] = None
    """Fresh agents that must confirm a solved score on the same SE (0: the paper's single test)."""
    se_hidden: Annotated[Optional[int], _task_default("se.hidden")] = None
    """SE hidden layer width."""
    se_activation: Annotated[Optional[str], _task_default("se.activation")] = None
    """SE activation function."""
    devices: Annotated[Optional[int], DEVICES] = None
    """Local devices to split the population across."""
    debug: bool = False
    """Show tracebacks."""


@dataclass(frozen=True)
class Evaluate:
    """Train fresh agents on an SE (--proxy) or on the real task (--env) and test them on the real task."""

    proxy: Annotated[Optional[Path], _default("none, train on --env")] = None
    """An SE model file; agents train only on it."""
    env: Annotated[Optional[str], _default("the SE's task; required without --proxy")] = None
    """Without --proxy: train on this real task (the baseline). With --proxy: check the SE's task."""
    agent: str = "ddqn"
    agents: int = 16
    episodes: int = 10
    """Greedy test episodes per agent on the real task."""
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


@dataclass(frozen=True)
class Curves:
    """Success curves (unperturbed score over generations) of many runs."""

    runs: Annotated[tyro.conf.Positional[tuple[Path, ...]], tyro.conf.arg(help_behavior_hint="(one or more)")]
    """Run folders or folders of runs (e.g. a train-ses folder)."""
    out: Path = Path("curves.png")
    title: Annotated[Optional[str], _default("'TASK: N runs'")] = None
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
    from synthenv.meta import run
    from synthenv.meta.config import make_config
    from synthenv.progress import GenerationProgress

    es = _given(population=a.population, strategy=a.strategy, sigma=a.sigma, lr=a.lr,
                score_transform=a.score_transform, mirrored=a.mirrored)
    se = _given(hidden=a.se_hidden, activation=a.se_activation)
    inner = _names(a.inner_agents) if a.inner_agents is not None else None
    top = _given(seed=a.seed, generations=a.generations, vary_hparams=a.vary_hparams,
                 stop_when_solved=a.stop_when_solved, inner_agents=inner, confirm_agents=a.confirm_agents,
                 inner_mix=a.inner_mix, init_se=None if a.init_se is None else str(a.init_se),
                 target_score=a.target_score, agents_per_member=a.agents_per_member)
    run.check_out_dir(a.out, a.resume)
    if a.resume:
        config = run.load_run_config(a.out)
        _check_resume_args(a, config, es, se, top)
        if a.generations is not None:
            from dataclasses import replace

            config = replace(config, generations=a.generations)
    else:
        config = make_config(**_given(env=a.env), preset=a.preset, es=es, se=se, **top)
    with GenerationProgress(config) as progress:
        summary = run.train_se(config, a.out, resume=a.resume, n_devices=a.devices, on_event=progress.event)
    return 0 if summary["generations_done"] > 0 else 1


def _check_resume_args(a: TrainSE, config, es: dict, se: dict, top: dict) -> None:
    from dataclasses import asdict

    from synthenv.errors import UsageError

    saved = {**{f"es.{k}": v for k, v in asdict(config.es).items()},
             **{f"se.{k}": v for k, v in asdict(config.se).items()},
             "seed": config.seed, "vary_hparams": config.vary_hparams, "stop_when_solved": config.stop_when_solved,
             "inner_agents": config.inner_agents, "inner_mix": config.inner_mix, "init_se": config.init_se,
             "agents_per_member": config.agents_per_member,
             "confirm_agents": config.confirm_agents, "target_score": config.target_score,
             "env": config.env, "preset": config.preset}
    given = {**{f"es.{k}": v for k, v in es.items()}, **{f"se.{k}": v for k, v in se.items()},
             **{k: v for k, v in top.items() if k != "generations"}}
    if a.env is not None:
        given["env"] = a.env
    if a.preset is not None:
        given["preset"] = a.preset
    for k, v in given.items():
        if saved[k] != v:
            raise UsageError(f"{a.out} was run with {k}={saved[k]!r}, not {v!r}; drop the option to resume it")


def _evaluate(a: Evaluate) -> int:
    from synthenv.experiments.evaluate import evaluate_agents
    from synthenv.io.atomic import write_json_atomic
    from synthenv.progress import print_evaluation

    result = evaluate_agents(proxy=a.proxy, env=a.env, agent=a.agent, agents=a.agents, episodes=a.episodes,
                             vary_hparams=a.vary_hparams, preset=a.preset, seed=a.seed, n_devices=a.devices)
    if a.json is not None:
        write_json_atomic(a.json, result)
    print_evaluation(result)
    return 0


def _train_ses(a: TrainSEs) -> int:
    from synthenv.experiments.se_sets import train_ses
    from synthenv.progress import SetProgress

    extra = _given(inner_agents=_names(a.inner_agents) if a.inner_agents else None, inner_mix=a.inner_mix)
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


def _curves(a: Curves) -> int:
    from synthenv.experiments.curves import plot_curves

    if not a.runs:
        from synthenv.errors import UsageError

        raise UsageError("give one or more run folders (or folders of runs)")
    r = plot_curves(list(a.runs), a.out, a.title)
    print(f"{r['runs']} runs, {r['solved']} solved (median first solved at generation "
          f"{r['median_generation_first_solved']}); figure: {r['figure']}")
    return 0


COMMANDS = {"train-se": TrainSE, "evaluate": Evaluate}
GROUPS = {"experiment": {"train-ses": TrainSEs, "refine-ses": RefineSEs, "transfer": Transfer,
                         "histograms": Histograms},
          "plot": {"curves": Curves}}
RUNNERS = {TrainSE: _train_se, Evaluate: _evaluate, TrainSEs: _train_ses, RefineSEs: _refine_ses,
           Transfer: _transfer, Histograms: _histograms, Curves: _curves}


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
              "  train-se      learn one SE\n  evaluate      train fresh agents on an SE or the real task\n"
              "  experiment    train-ses | refine-ses | transfer | histograms (the paper's studies)\n"
              "  plot          curves (success curves of many runs)\n\n"
              "synthenv COMMAND --help for options")
        raise SystemExit(0 if argv else 2)
    return _cli(COMMANDS, argv, "synthenv")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    from synthenv.errors import UsageError

    try:
        _set_devices(getattr(args, "devices", None))  # plot commands do not use JAX
        return RUNNERS[type(args)](args)
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
