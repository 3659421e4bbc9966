"""How well an SE ranks agent hyperparameters (``synthenv experiment hpo-proxy``): random configs from
the ``hpo`` search space, each trained on the SE and on the real task, compared by rank.

Both sides train ``agents_per_config`` fresh agents per config in one compiled call and test them on
the real task. The SE side trains with the converged stop rule, the real side with the task's threshold
stop rule (as ``evaluate --env``). Reported: the Spearman rank correlation of the two sides' mean test
returns (and of the SE return with the real training steps), the top-k overlap, each side's wall time,
a scatter plot. Output in ``out``: ``summary.json``, ``scatter.png`` and ``report.md``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import optuna
from scipy.stats import spearmanr

from synthenv.errors import UsageError
from synthenv.experiments import figures
from synthenv.experiments.hpo import REAL_SIDE, SE_SIDE, describe_space, make_search, make_study
from synthenv.io.atomic import write_json_atomic, write_text_atomic


def spearman(x, y) -> float | None:
    """Spearman's rank correlation (ties take their average rank); None when a side is constant."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(spearmanr(x, y).statistic)


def top_k(order_keys: list[tuple], k: int) -> set[int]:
    """The indices of the ``k`` smallest keys (a key sorts best first), ties by index."""
    return set(sorted(range(len(order_keys)), key=lambda i: (order_keys[i], i))[:k])


def top_k_overlap(se_returns, real_returns, real_steps, k: int) -> int:
    """How many of the SE side's ``k`` best configs (by SE return) are among the real side's ``k`` best
    (by real return, ties by fewer real training steps: of two configs that both solve the task, the
    one that learns faster ranks first)."""
    se = top_k([(-r,) for r in se_returns], k)
    real = top_k([(-r, s) for r, s in zip(real_returns, real_steps)], k)
    return len(se & real)


def hpo_proxy(proxy: str | Path, out: str | Path, agent: str = "ddqn", configs: int = 24,
              agents_per_config: int = 2, episodes: int = 10, top: int | None = None, preset: str | None = None,
              seed: int = 0, n_devices: int | None = None,
              on_event: Callable[[str, dict], None] | None = None) -> dict:
    """Run the study and write its outputs into ``out``; returns the summary. ``top``: the k of the
    top-k overlap (default: a quarter of the configs, at least 1)."""
    if configs < 2 or agents_per_config < 1 or episodes < 1:
        raise UsageError(f"--configs must be >= 2, --agents-per-config and --episodes >= 1, got {configs}, "
                         f"{agents_per_config} and {episodes}")
    k = max(1, configs // 4) if top is None else top
    if not 1 <= k <= configs:
        raise UsageError(f"--top must be between 1 and --configs ({configs}), got {k}")
    search = make_search(proxy, agent, preset)
    spec = search.spec
    emit = on_event or (lambda kind, data: None)
    study = make_study(optuna.samplers.RandomSampler(seed=seed))
    trials = [study.ask(search.space) for _ in range(configs)]
    numbers, params = [t.number for t in trials], [t.params for t in trials]
    sides = {}
    for name, side in (("se", SE_SIDE), ("real", REAL_SIDE)):
        t0 = time.perf_counter()
        r = search.scorer(side, episodes, seed, agents_per_config, n_devices)(numbers, params)
        sides[name] = {**r, "seconds": time.perf_counter() - t0}
        emit("side", {"side": name, "configs": configs, "seconds": sides[name]["seconds"],
                      "mean_return": float(r["returns"].mean())})
    se, real = sides["se"], sides["real"]
    summary = {
        "proxy": str(proxy), "env": spec.id, "agent": agent, "preset": search.preset, "seed": seed,
        "configs": configs, "agents_per_config": agents_per_config, "episodes": episodes,
        "solved_threshold": spec.solved_threshold, "space": describe_space(search.space),
        "spearman_returns": spearman(se["returns"], real["returns"]),
        "spearman_se_return_real_steps": spearman(se["returns"], real["steps"]),
        "top_k": k, "top_k_overlap": top_k_overlap(se["returns"], real["returns"], real["steps"], k),
        "top_k_overlap_by_chance": k * k / configs,
        "se_tied_at_top_k": int(np.sum(se["returns"] == np.sort(se["returns"])[::-1][k - 1])),
        "se_wall_seconds": se["seconds"], "real_wall_seconds": real["seconds"],
        "se_mean_steps": float(se["steps"].mean()), "real_mean_steps": float(real["steps"].mean()),
        "per_config": [{"number": n, "params": p, "se_return": float(se["returns"][i]),
                        "se_steps": float(se["steps"][i]), "real_return": float(real["returns"][i]),
                        "real_steps": float(real["steps"][i]),
                        "diverged": int(se["diverged"][i] + real["diverged"][i])}
                       for i, (n, p) in enumerate(zip(numbers, params))],
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "summary.json", summary)
    figures.proxy_scatter(se["returns"], real["returns"], spec,
                          f"{agent} on {spec.id}: {configs} configs, Spearman {_fmt(summary['spearman_returns'])}",
                          out / "scatter.png")
    write_text_atomic(out / "report.md", report_markdown(summary))
    emit("done", {"out": str(out)})
    return summary


def _fmt(x: float | None) -> str:
    return "undefined (one side constant)" if x is None or math.isnan(x) else f"{x:.2f}"


def report_markdown(s: dict) -> str:
    """The study as a page: the numbers, every config, the scatter plot."""
    fields = list(s["space"])
    lines = [f"# SE as an HPO proxy: {s['agent']} on {s['env']}", "",
             f"{s['configs']} random {s['agent']} configs (preset {s['preset']}) from the `hpo` search space, "
             f"each trained by {s['agents_per_config']} fresh agent(s) on the SE `{s['proxy']}` and on the real "
             f"task, all tested for {s['episodes']} greedy episodes on the real task. Seed {s['seed']}.", "",
             "Search space: " + ", ".join(f"{f} [{d['low']:g}, {d['high']:g}]{' log' if d['log'] else ''}"
                                         for f, d in s["space"].items()), "",
             "| measure | value |", "|---|---|",
             f"| Spearman (SE return, real return) | {_fmt(s['spearman_returns'])} |",
             f"| Spearman (SE return, real training steps) | {_fmt(s['spearman_se_return_real_steps'])} |",
             f"| top-{s['top_k']} overlap | {s['top_k_overlap']} of {s['top_k']} (by chance: "
             f"{s['top_k_overlap_by_chance']:.1f}) |",
             f"| configs tied at the SE side's k-th best return | {s['se_tied_at_top_k']} |",
             f"| SE side wall time | {s['se_wall_seconds']:.0f} s (mean {s['se_mean_steps']:,.0f} steps per agent) |",
             f"| real side wall time | {s['real_wall_seconds']:.0f} s (mean {s['real_mean_steps']:,.0f} steps per "
             f"agent) |", "",
             "The real side's top k ranks by real return, ties by fewer training steps; the SE side's by SE "
             "return, ties by config number (more than k tied configs make its top k arbitrary).", "",
             "| config | " + " | ".join(fields) + " | SE return | real return | real steps |",
             "|---|" + "---|" * (len(fields) + 3)]
    for c in sorted(s["per_config"], key=lambda c: -c["se_return"]):
        values = " | ".join(f"{c['params'][f]:.3g}" for f in fields)
        lines.append(f"| {c['number']} | {values} | {c['se_return']:.1f} | {c['real_return']:.1f} | "
                     f"{c['real_steps']:,.0f} |")
    lines += ["", "![SE return against real return](scatter.png)", ""]
    return "\n".join(lines)
