"""Sets of SEs for the paper's HP-robustness and transfer study: many independent SE runs, one
subfolder each (``se_000``, ``se_001``, ...), resumable and skipping finished runs; and the refinement
of such a set (each SE restarted with a smaller ES step, see ``refine_ses``).

A run is finished when it solved (with stop-when-solved) or reached its generation cap; an interrupted
run resumes from its last committed generation. ``ses.json`` in the set folder lists every run's status.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Callable

from synthenv.errors import UsageError
from synthenv.io import model_files
from synthenv.io.atomic import write_json_atomic
from synthenv.meta.config import TrainSEConfig, make_config
from synthenv.meta.run import CONFIG_FILE, SE_FILE, STATE_FILE, STATE_KIND, load_run_config, train_se

SET_FILE = "ses.json"
HPARAMS = ("varied", "fixed")


def run_status(run: Path) -> dict:
    """``{"state": "new"|"partial"|"finished", "solved", "generations_done", "best_score"}`` of one run."""
    if not (run / CONFIG_FILE).exists():
        return {"state": "new", "solved": False, "generations_done": 0, "best_score": None}
    config = load_run_config(run)
    if not (run / STATE_FILE).exists():
        return {"state": "partial", "solved": False, "generations_done": 0, "best_score": None}
    _, meta = model_files.load(run / STATE_FILE, kind=STATE_KIND)
    done, solved = meta["generations_done"], meta["solved"]
    finished = done >= config.generations or (solved and config.stop_when_solved)
    return {"state": "finished" if finished else "partial", "solved": solved, "generations_done": done,
            "best_score": meta["best"]["score"]}


def set_config(env: str, hparams: str, seed: int, generations: int, **overrides) -> TrainSEConfig:
    if hparams not in HPARAMS:
        raise UsageError(f"--hparams must be one of {', '.join(HPARAMS)}, got {hparams!r}")
    # The sets reproduce the paper's SE experiments (success curves, transfer, histograms): multi-step
    # SEs, also on tasks whose train-se default is a synthetic bandit.
    overrides.setdefault("proxy_kind", "se")
    return make_config(env=env, seed=seed, generations=generations, vary_hparams=hparams == "varied", **overrides)


def train_ses(env: str, count: int, hparams: str, out: str | Path, seed: int = 0, generations: int = 50,
              n_devices: int | None = None, on_event: Callable[[str, dict], None] | None = None,
              **overrides) -> list[dict]:
    """Train ``count`` SEs into ``out/se_NNN`` (seed ``seed + i``); returns each run's status.

    The set's settings are fixed at its first call (``ses.json``); calling again with other settings
    is refused, so a resumed set stays one experiment.
    """
    if count < 1:
        raise UsageError(f"--count must be >= 1, got {count}")
    settings = {"env": env, "hparams": hparams, "seed": seed, "generations": generations, "overrides": overrides}
    configs = [set_config(env, hparams, seed + i, generations, **overrides) for i in range(count)]
    return _run_set(configs, settings, Path(out), n_devices, on_event)


# The refinement stage measured on CartPole (docs/results.md): 10 generations, sigma 0.02 (the paper's
# 0.05 / 2.5), ES step 0.5 and 2 agents per candidate, without stopping at the first solved generation.
REFINE = {"generations": 10, "sigma": 0.02, "lr": 0.5, "agents_per_member": 2}


def refinement_config(se_file: str | Path, seed: int, generations: int = REFINE["generations"],
                      sigma: float = REFINE["sigma"], lr: float = REFINE["lr"],
                      agents_per_member: int = REFINE["agents_per_member"], **overrides) -> TrainSEConfig:
    """The config that refines an SE learned earlier: the SE's own training config (task, inner
    agents and their HPs, population, score transform, target), restarted from its weights with a
    smaller ES step, more agents per candidate and no stop at the first solved generation."""
    from synthenv.proxies.files import load_se

    loaded = load_se(se_file)
    try:
        source = TrainSEConfig.from_dict(loaded.metadata["training_config"])
    except (KeyError, TypeError) as e:
        raise UsageError(f"{se_file} holds no training config this version can refine ({e})") from None
    if "inner_agents" in overrides:
        overrides["inner_agents"] = tuple(overrides["inner_agents"])
    overrides = {"restart_after": 0, **overrides}  # a refinement stays near its SE
    config = replace(source, es=replace(source.es, sigma=sigma, lr=lr), seed=seed, generations=generations,
                     agents_per_member=agents_per_member, stop_when_solved=False, init_se=str(se_file),
                     **overrides)
    config.validate()
    config.initial_se(loaded)
    return config


def refine_ses(ses: str | Path, out: str | Path, seed: int = 0, solved_only: bool = True,
               n_devices: int | None = None, on_event: Callable[[str, dict], None] | None = None,
               **refine) -> list[dict]:
    """Refine every SE of the set ``ses`` into ``out/se_NNN`` (seed ``seed + i``, ``refinement_config``
    with ``refine``'s overrides); resumable like ``train_ses``. Each refined run saves its best SE,
    which may be the unchanged SE it started from when no refined one scored higher."""
    files = find_se_files(ses, solved_only)
    settings = {"refine": [str(f) for f in files], "seed": seed, "overrides": {**REFINE, **refine}}
    configs = [refinement_config(f, seed + i, **refine) for i, f in enumerate(files)]
    return _run_set(configs, settings, Path(out), n_devices, on_event)


def _run_set(configs: list[TrainSEConfig], settings: dict, out: Path, n_devices: int | None,
             on_event: Callable[[str, dict], None] | None) -> list[dict]:
    """Run ``configs[i]`` into ``out/se_NNN``, skipping finished runs and resuming partial ones; the
    set's ``settings`` are fixed at its first call (``ses.json``), other settings are refused."""
    index = out / SET_FILE
    settings = json.loads(json.dumps(settings))  # as ses.json holds them (lists, not tuples)
    if index.exists():
        saved = json.loads(index.read_text())["settings"]
        if saved != settings:
            diff = [k for k in {**saved, **settings} if saved.get(k) != settings.get(k)]
            raise UsageError(f"{out} holds an SE set made with other settings ({', '.join(diff)}); "
                             "choose another --out")
    elif out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists, is not empty and holds no SE set; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    emit = on_event or (lambda kind, data: None)
    count = len(configs)
    statuses = [run_status(out / f"se_{i:03d}") for i in range(count)]

    def write_index():
        write_json_atomic(index, {"settings": settings, "runs": [
            {"dir": f"se_{i:03d}", **st} for i, st in enumerate(statuses)]})

    write_index()
    for i, config in enumerate(configs):
        run = out / f"se_{i:03d}"
        if statuses[i]["state"] == "finished":
            emit("skip", {"index": i, "count": count, **statuses[i]})
            continue
        resume = statuses[i]["state"] == "partial"  # (train_se refuses a run made with another config)
        emit("start", {"index": i, "count": count, "resume": resume})
        train_se(config, run, resume=resume, n_devices=n_devices,
                 on_event=lambda kind, data, i=i: emit(kind, {"index": i, "count": count, **data}))
        statuses[i] = run_status(run)
        write_index()
    return statuses


def find_se_files(folder: str | Path, solved_only: bool = True) -> list[Path]:
    """The SE files of a set folder (``se_*/se.safetensors``), or the folder's own ``*.safetensors``.
    ``solved_only`` keeps the solved runs of a set; every run of a refined set counts (each refines
    an SE chosen earlier, and saves the best SE it saw, the starting one included)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a directory")
    runs = sorted(p for p in folder.iterdir() if (p / SE_FILE).exists())
    if not runs:
        files = sorted(p for p in folder.glob("*.safetensors") if p.name != STATE_FILE)
        if not files:
            raise UsageError(f"{folder} holds no SE files (neither se_*/se.safetensors nor *.safetensors)")
        return files
    if solved_only and not _is_refined_set(folder):
        runs = [r for r in runs if run_status(r)["solved"]]
        if not runs:
            raise UsageError(f"{folder} holds no solved SE (pass --include-unsolved to use them anyway)")
    return [r / SE_FILE for r in runs]


def _is_refined_set(folder: Path) -> bool:
    index = folder / SET_FILE
    return index.exists() and "refine" in json.loads(index.read_text())["settings"]
