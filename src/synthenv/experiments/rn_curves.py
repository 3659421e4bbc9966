"""The RN study (the paper's Fig. 5): real test return against training steps, RNs against baselines.

For each RN (grouped by variant) ``agents_per_rn`` fresh agents train on the RN-wrapped task, each
with one greedy real test episode after every training episode (``evaluate_agents``); the baselines
train as many agents as the largest variant group on the real task: the agent alone, with the ICM
curiosity bonus, and on the grid tasks with the count-based bonus (the agent's ``count`` preset).
Every agent's curve is read as a step function (its latest test return at each training step; after
it stops, its last) on one grid of training steps; each setting's curve is the mean over its agents
with the standard error. ``summary.json`` gives per setting the steps at which the mean curve first
reaches the task's threshold, its area (mean return times steps over the grid) and its final value,
and the agents' own ``steps_to_target``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from synthenv.errors import UsageError
from synthenv.experiments import figures
from synthenv.experiments.evaluate import evaluate_agents
from synthenv.io.atomic import write_json_atomic, write_text_atomic
from synthenv.proxies.files import load_proxy

HPARAMS = ("default", "varied")
GRID_POINTS = 200


def find_rns(paths: list[str | Path]) -> list[Path]:
    """RN files among ``paths``: each an ``rn.safetensors`` file, a run folder holding one, or a
    folder of run folders."""
    found = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif (p / "rn.safetensors").is_file():
            found.append(p / "rn.safetensors")
        elif p.is_dir() and (inner := sorted(q / "rn.safetensors" for q in p.iterdir() if (q / "rn.safetensors").is_file())):
            found.extend(inner)
        else:
            raise UsageError(f"{p} is neither an RN file, an RN run folder nor a folder of RN runs")
    return found


def step_curves(curves: list[dict], grid: np.ndarray) -> np.ndarray:
    """[agents, grid] each agent's latest test return at each grid step (its first before its first
    test; its last after it stopped)."""
    out = np.empty((len(curves), grid.size))
    for i, c in enumerate(curves):
        steps, returns = np.asarray(c["steps"], float), np.asarray(c["returns"], float)
        idx = np.searchsorted(steps, grid, side="right") - 1
        out[i] = returns[np.clip(idx, 0, None)]
    return out


def summarise(values: np.ndarray, grid: np.ndarray, threshold: float, to_target: list) -> dict:
    mean = values.mean(axis=0)
    se = values.std(axis=0, ddof=1) / np.sqrt(values.shape[0]) if values.shape[0] > 1 else np.zeros_like(mean)
    hit = np.nonzero(mean >= threshold)[0]
    reached = [x for x in to_target if x is not None]
    return {"agents": int(values.shape[0]), "mean": mean.tolist(), "standard_error": se.tolist(),
            "steps_to_threshold": float(grid[hit[0]]) if hit.size else None,
            "auc": float(np.sum((mean[1:] + mean[:-1]) / 2 * np.diff(grid))), "final_return": float(mean[-1]),
            "agent_steps_to_target_mean": float(np.mean(reached)) if reached else None,
            "agents_reaching_target": len(reached)}


def rn_curves(env: str | None, rns: list[str | Path], out: str | Path, agent: str | None = None,
              agents_per_rn: int = 10, hparams: str = "default", baselines: bool = True, seed: int = 0,
              n_devices: int | None = None, on_event=None, preset: str | None = None) -> dict:
    """Run the study into ``out`` (``curves.png``, ``summary.json``, ``report.md``); returns the summary.

    Every setting trains ``agent`` with ``preset`` (default: the preset the RNs' inner agent had, for
    another agent ``small``), the count-bonus baseline with ``count``."""
    if hparams not in HPARAMS:
        raise UsageError(f"--hparams must be one of {', '.join(HPARAMS)}, got {hparams!r}")
    if agents_per_rn < 2:
        raise UsageError(f"--agents-per-rn must be >= 2 (a standard error needs two agents), got {agents_per_rn}")
    files = find_rns(rns)
    if not files:
        raise UsageError("no RN files given")
    loaded = [load_proxy(f, env_id=env, kind="reward_network") for f in files]
    env = loaded[0].env_id
    spec = loaded[0].env.spec
    inner_name, _, inner_preset = (loaded[0].training_config.get("inner_agents") or ["ddqn"])[0].partition(":")
    agent = agent or inner_name
    if preset is None:  # every setting trains the same config: the RNs' own, for their agent
        preset = (inner_preset or "small") if agent == inner_name else "small"
    emit = on_event or (lambda kind, data: None)
    vary = hparams == "varied"
    groups: dict[str, list[dict]] = {}
    jobs = [(f"RN {rn.config.label}", str(f)) for rn, f in zip(loaded, files)]
    if baselines:
        n_real = agents_per_rn * max(Counter(name for name, _ in jobs).values())  # the largest RN group
        jobs += [(agent, None), (f"{agent} + ICM", None)]
        if agent in ("q_learning", "sarsa"):
            jobs.append((f"{agent} + count bonus", None))
    for i, (name, proxy) in enumerate(jobs):
        emit("start", {"index": i, "count": len(jobs), "name": name, "proxy": proxy})
        r = evaluate_agents(proxy=proxy, env=env, agent=agent, agents=agents_per_rn if proxy else n_real,
                            episodes=1, vary_hparams=vary, preset="count" if name.endswith("count bonus") else preset,
                            seed=seed + i, n_devices=n_devices, icm=name.endswith("ICM"))
        groups.setdefault(name, []).append(r)
        emit("done", {"index": i, "count": len(jobs), "name": name, "seconds": r["wall_seconds"]})

    last = max(s for rs in groups.values() for r in rs for c in r["curves"] for s in c["steps"][-1:])
    grid = np.linspace(0, last, GRID_POINTS)
    settings = {}
    for name, results in groups.items():
        curves = [c for r in results for c in r["curves"]]
        to_target = [x for r in results for x in r["steps_to_target"]]
        settings[name] = summarise(step_curves(curves, grid), grid, spec.solved_threshold, to_target)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"env": env, "agent": agent, "preset": preset, "hparams": hparams, "agents_per_rn": agents_per_rn, "seed": seed,
               "rns": [str(f) for f in files], "threshold": spec.solved_threshold, "grid": grid.tolist(),
               "settings": settings}
    figures.learning_curves(settings, grid, spec, f"{agent} on {env} ({hparams} HPs)", out / "curves.png")
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "report.md", report(summary))
    return summary


def report(s: dict) -> str:
    rows = "\n".join(
        f"| {name} | {v['agents']} | {_num(v['steps_to_threshold'])} | {_num(v['agent_steps_to_target_mean'])} "
        f"({v['agents_reaching_target']}/{v['agents']}) | {v['auc']:,.0f} | {v['final_return']:.1f} |"
        for name, v in s["settings"].items())
    return (f"# RN learning curves: {s['agent']} on {s['env']}\n\n"
            f"preset {s['preset']}, {s['hparams']} hyperparameters; {s['agents_per_rn']} agents per RN, as many as the largest RN "
            f"group on each baseline; seed {s['seed']}. RNs: {', '.join(s['rns'])}.\n\n"
            f"![curves](curves.png)\n\n"
            f"| setting | agents | steps until the mean curve reaches {s['threshold']:g} | agents' steps to "
            f"{s['threshold']:g} (mean, reached) | area under the mean curve | final mean return |\n"
            f"|---|---|---|---|---|---|\n{rows}\n\n"
            "Steps are the agents' training steps on the real dynamics; each agent played one greedy real "
            "test episode after each training episode (not counted).\n")


def _num(x) -> str:
    return "never" if x is None else f"{x:,.0f}"

