"""Command-line interface (tyro, dataclass args): ``synthenv train-se``, ``synthenv evaluate``,
``synthenv experiment train-ses|refine-ses|transfer|histograms`` and ``synthenv plot curves``.

JAX is imported only after the arguments are parsed, because the number of XLA host devices
(``--devices``) must be fixed before JAX starts.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import tyro


@dataclass(frozen=True)
class TrainSE:
    """Learn a synthetic environment with an evolution strategy (stops once solved by default)."""

    out: Path
    """Run directory (config.json, metrics.jsonl, se.safetensors, state.safetensors)."""
    env: Optional[str] = None
    """Real task id: CartPole-v0, CartPole-v1, Acrobot-v1 (default CartPole-v0)."""
    resume: bool = False
    """Continue the run in --out with its saved config (--generations may raise the cap)."""
    seed: Optional[int] = None
    generations: Optional[int] = None
    """Generation cap (default 200; runs stop earlier once solved)."""
    population: Optional[int] = None
    """ES population size (default 16)."""
    preset: Optional[str] = None
    """Inner DDQN preset: small (default), cartpole, acrobot, hpvar (the paper's)."""
    inner_agents: Optional[str] = None
    """Comma-separated inner algorithms, e.g. ddqn,dueling_ddqn,ppo,sac (default ddqn); NAME:PRESET
    picks a preset (default: small; ddqn: --preset)."""
    inner_mix: Optional[str] = None
    """With several inner agents: cycle (default; one algorithm per generation in turn) or together
    (each generation trains every candidate with every algorithm)."""
    init_se: Optional[Path] = None
    """Start from this SE file (same task; its architecture) instead of a random SE."""
    strategy: Optional[str] = None
    """nes (the paper's, default), open_es or snes (evosax)."""
    sigma: Optional[float] = None
    lr: Optional[float] = None
    """ES step size (the paper's alpha for nes)."""
    score_transform: Optional[int] = None
    """The paper's score transform 0-7 (nes only)."""
    mirrored: Optional[bool] = None
    agents_per_member: Optional[int] = None
    """Agents trained per perturbed SE; their mean score is its fitness (default 1, the paper's)."""
    vary_hparams: Optional[bool] = None
    """Vary inner-agent hyperparameters (default True)."""
    stop_when_solved: Optional[bool] = None
    target_score: Optional[float] = None
    """Mean real return at which the SE counts as solved (default: per task; the task's threshold,
    Acrobot-v1 -90)."""
    confirm_agents: Optional[int] = None
    """Fresh agents that must confirm a solved score on the same SE (default 16; 0: the paper's single test)."""
    se_hidden: Optional[int] = None
    se_activation: Optional[str] = None
    devices: Optional[int] = None
    """Local devices to split the population across (default: all cores)."""
    debug: bool = False
    """Show tracebacks."""


@dataclass(frozen=True)
class Evaluate:
    """Train fresh agents on an SE (--proxy) or on the real task (--env) and test them on the real task."""

    proxy: Optional[Path] = None
    """An SE model file; agents train only on it."""
    env: Optional[str] = None
    """Without --proxy: train on this real task (the baseline). With --proxy: check the SE's task."""
    agent: str = "ddqn"
    agents: int = 16
    episodes: int = 10
    """Greedy test episodes per agent on the real task."""
    vary_hparams: bool = False
    """Draw each agent's hyperparameters from the paper's varied-HP distribution."""
    preset: Optional[str] = None
    json: Annotated[Optional[Path], tyro.conf.arg(name="json")] = None
    """Write the results (every return, steps, episodes, solved fraction) to this file."""
    seed: int = 0
    devices: Optional[int] = None
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
    inner_agents: Optional[str] = None
    """Comma-separated inner algorithms (default ddqn)."""
    inner_mix: Optional[str] = None
    """With several inner agents: cycle (default) or together (see train-se)."""
    devices: Optional[int] = None
    debug: bool = False


@dataclass(frozen=True)
class RefineSEs:
    """Refine every SE of a set: restart each SE's own ES from its weights with a smaller step and more
    agents per candidate (one subfolder each; resumable, finished runs are skipped)."""

    ses: Path
    """An SE set folder (from train-ses) or a folder of .safetensors SE files."""
    out: Path
    generations: int = 10
    sigma: float = 0.02
    lr: float = 0.5
    """ES step size."""
    agents_per_member: int = 2
    """Agents trained per perturbed SE; their mean score is its fitness."""
    seed: int = 0
    """Refinement i uses seed + i."""
    inner_agents: Optional[str] = None
    """Comma-separated inner algorithms (default: each SE's own)."""
    inner_mix: Optional[str] = None
    """cycle or together (default: each SE's own)."""
    target_score: Optional[float] = None
    """Mean real return at which an SE counts as solved and is confirmed (default: each SE's own)."""
    confirm_agents: Optional[int] = None
    """Fresh agents per inner algorithm that confirm a solved score (default: each SE's own)."""
    include_unsolved: bool = False
    """Refine every SE of the set, not only the solved ones."""
    devices: Optional[int] = None
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
    real_agents: Optional[int] = None
    """Agents per algorithm on the real task (default: agents-per-se x the largest set)."""
    include_unsolved: bool = False
    """Use every SE of a set, not only the solved ones."""
    seed: int = 0
    devices: Optional[int] = None
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
    out: Optional[Path] = None
    """PNG to write (default: histograms.png beside the SE); statistics go to the same name .json."""
    seed: int = 0
    devices: Optional[int] = None
    debug: bool = False


@dataclass(frozen=True)
class Curves:
    """Success curves (unperturbed score over generations) of many runs."""

    runs: tyro.conf.Positional[tuple[Path, ...]]
    """Run folders or folders of runs (e.g. a train-ses folder)."""
    out: Path = Path("curves.png")
    title: Optional[str] = None
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
        config = make_config(env=a.env or "CartPole-v0", preset=a.preset, es=es, se=se, **top)
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
                   target_score=a.target_score, confirm_agents=a.confirm_agents)
    with SetProgress() as progress:
        statuses = refine_ses(a.ses, a.out, seed=a.seed, solved_only=not a.include_unsolved, n_devices=a.devices,
                              on_event=progress.event, generations=a.generations, sigma=a.sigma, lr=a.lr,
                              agents_per_member=a.agents_per_member, **extra)
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


def _parse(argv: list[str] | None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in GROUPS:
        return tyro.extras.subcommand_cli_from_dict(GROUPS[argv[0]], args=argv[1:], prog=f"synthenv {argv[0]}")
    if not argv or argv[0] in ("-h", "--help"):
        print("synthenv: learn synthetic environments for RL\n\ncommands:\n"
              "  train-se      learn one SE\n  evaluate      train fresh agents on an SE or the real task\n"
              "  experiment    train-ses | refine-ses | transfer | histograms (the paper's studies)\n"
              "  plot          curves (success curves of many runs)\n\n"
              "synthenv COMMAND --help for options")
        raise SystemExit(0 if argv else 2)
    return tyro.extras.subcommand_cli_from_dict(COMMANDS, args=argv, prog="synthenv")


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
