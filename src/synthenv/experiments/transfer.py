"""The paper's HP-robustness and transfer study (Fig. 3): fresh agents with varied hyperparameters,
trained on every SE of one or more SE sets and on the real task, all tested on the real task.

Every (setting, agent) pair is one compiled call: the SEs of a set are stacked and agent ``i`` trains
on SE ``i // agents_per_se``, so 40 SEs cost one compilation, not 40. Output in ``out``:
``summary.json`` (per setting and agent), ``returns.json`` (every test return), ``densities.png``,
``steps.png`` and ``report.md``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from synthenv.agents.registry import check_supports, get_agent
from synthenv.errors import UsageError
from synthenv.experiments import figures
from synthenv.experiments.evaluate import agent_config, train_and_test
from synthenv.experiments.se_sets import find_se_files
from synthenv.io.atomic import write_json_atomic, write_text_atomic
from synthenv.proxies.files import load_se

REAL = "real env"
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)

# The paper's Fig. 3 numbers (Ferreira et al. 2022): mean test return; training steps mean ± std.
PAPER = {
    "CartPole-v0": {
        "ddqn": {REAL: "190.7; 16,888 ± 24,925", "SE (varied HPs)": "190.7; 6,819 ± 2,340",
                 "SE (fixed HPs)": "175.5; 6,380 ± 3,163"},
        "dueling_ddqn": {REAL: "179.1; 12,745 ± 14,972", "SE (varied HPs)": "189.0; 6,781 ± 2,198",
                         "SE (fixed HPs)": "178.3; 6,503 ± 3,210"},
        "td3_discrete": {REAL: "187.9; 17,875 ± 17,835", "SE (varied HPs)": "83.0; 5,832 ± 1,577",
                         "SE (fixed HPs)": "46.3; 5,371 ± 2,415"},
    },
    "Acrobot-v1": {
        "ddqn": {REAL: "steps 15,389", "SE (varied HPs)": "steps 18,240"},
        "dueling_ddqn": {REAL: "steps 29,531", "SE (varied HPs)": "steps 18,376"},
        "td3_discrete": {REAL: "steps 80,837", "SE (varied HPs)": "steps 14,408"},
    },
}


def _setting_names(folders: list[Path]) -> list[str]:
    names, seen = [], {}
    for f in folders:
        name = f.name or str(f)
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return names


class Setting(NamedTuple):
    """The SEs of one folder, stacked on a leading axis (all of one task and architecture)."""

    task: Any
    se_env: Any
    params: Any
    count: int
    training_config: dict


def _load_setting(folder: Path, solved_only: bool) -> Setting:
    files = find_se_files(folder, solved_only)
    loaded = [load_se(p) for p in files]
    first = loaded[0]
    for p, se in zip(files, loaded):
        if se.env_id != first.env_id:
            raise UsageError(f"{p} is an SE for {se.env_id}, but {folder} also holds SEs for {first.env_id}")
        if se.config != first.config:
            raise UsageError(f"{p} has another SE architecture than the other SEs of {folder}")
    stacked = first.env.params_for(jax.tree.map(lambda *xs: jnp.stack(xs), *[se.weights for se in loaded]))
    return Setting(first.env.task, first.env, stacked, len(loaded), first.metadata.get("training_config") or {})


def summarize(returns: np.ndarray, steps: np.ndarray, episodes: np.ndarray, diverged: np.ndarray,
              threshold: float) -> dict:
    """One (setting, agent) cell of the study: returns [agents, episodes], per-agent steps/episodes."""
    per_agent = returns.mean(axis=1)
    return {
        "mean_return": float(returns.mean()),
        "return_quantiles": {str(q): float(np.quantile(returns, q)) for q in QUANTILES},
        "train_steps_mean": float(steps.mean()), "train_steps_std": float(steps.std()),
        "train_episodes_mean": float(episodes.mean()), "train_episodes_std": float(episodes.std()),
        "solved_fraction": float(np.mean(per_agent >= threshold)),
        "agents": int(returns.shape[0]), "test_returns": int(returns.size), "diverged": int(diverged.sum()),
    }


def transfer(ses: list[str | Path], agents: list[str], out: str | Path, agents_per_se: int = 10,
             episodes: int = 10, real: bool = True, real_agents: int | None = None, seed: int = 0,
             solved_only: bool = True, n_devices: int | None = None,
             on_event: Callable[[str, dict], None] | None = None) -> dict:
    """Run the study and write its outputs into ``out``; returns the summary."""
    if not ses:
        raise UsageError("give at least one --ses folder")
    if not agents:
        raise UsageError("give at least one agent in --agents")
    if agents_per_se < 1 or episodes < 1:
        raise UsageError(f"--agents-per-se and --episodes must be >= 1, got {agents_per_se} and {episodes}")
    for a in agents:
        get_agent(a)
    folders = [Path(s) for s in ses]
    names = _setting_names(folders)
    settings = {name: _load_setting(f, solved_only) for name, f in zip(names, folders)}
    env_ids = {name: s.task.spec.id for name, s in settings.items()}
    if len(set(env_ids.values())) > 1:
        raise UsageError(f"the --ses folders hold SEs for different tasks: {env_ids}")
    task = next(iter(settings.values())).task
    spec = task.spec
    modules = {a: check_supports(a, spec.continuous, spec.id) for a in agents}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    emit = on_event or (lambda kind, data: None)
    n_real = real_agents or agents_per_se * max(s.count for s in settings.values())
    jobs = [(name, a) for name in names for a in agents] + ([(REAL, a) for a in agents] if real else [])
    emit("start", {"jobs": len(jobs)})

    summary = {"env": spec.id, "agents": agents, "agents_per_se": agents_per_se, "episodes": episodes,
               "seed": seed, "solved_only": solved_only, "settings": {},
               "ses": {name: {"folder": str(f), "count": settings[name].count} for name, f in zip(names, folders)}}
    all_returns: dict = {}
    for j, (name, a) in enumerate(jobs):
        t = time.perf_counter()
        module = modules[a]
        if name == REAL:
            config, _ = agent_config(module, a, None, spec.id, next(iter(settings.values())).training_config)
            r = train_and_test(module, config, task, task, "threshold", None, n_real, episodes,
                               True, seed, n_devices)
        else:
            st = settings[name]
            config, _ = agent_config(module, a, None, spec.id, st.training_config)
            per_agent = jax.tree.map(lambda x: jnp.repeat(x, agents_per_se, axis=0), st.params)
            r = train_and_test(module, config, task, st.se_env, "converged", per_agent, st.count * agents_per_se,
                               episodes, True, seed, n_devices, per_agent_params=True)
        cell = summarize(r["returns"], r["steps"], r["episodes"], r["diverged"], spec.solved_threshold)
        cell["wall_seconds"] = time.perf_counter() - t
        summary["settings"].setdefault(name, {})[a] = cell
        all_returns.setdefault(name, {})[a] = {"returns": r["returns"].tolist(), "steps": r["steps"].tolist(),
                                               "episodes": r["episodes"].tolist()}
        emit("job", {"done": j + 1, "jobs": len(jobs), "setting": name, "agent": a, **cell})

    write_json_atomic(out / "summary.json", summary)
    write_json_atomic(out / "returns.json", all_returns)
    figures.return_densities(all_returns, agents, spec, out / "densities.png")
    figures.step_bars(summary, agents, out / "steps.png")
    write_text_atomic(out / "report.md", report_markdown(summary, spec))
    emit("done", {"out": str(out)})
    return summary


def report_markdown(summary: dict, spec) -> str:
    """The study as a page: a table like the paper's, the figures, and the paper's numbers."""
    settings = list(summary["settings"])
    agents = summary["agents"]
    lines = [f"# Transfer study on {spec.id}", "",
             f"Fresh agents with varied hyperparameters, {summary['agents_per_se']} per SE, trained on every "
             f"SE of each set (or on the real task) and tested for {summary['episodes']} greedy episodes on "
             f"the real task. Seed {summary['seed']}; "
             f"{'solved SEs only' if summary['solved_only'] else 'all SEs'}.", "",
             "SE sets: " + "; ".join(f"**{n}** = {v['folder']} ({v['count']} SEs)"
                                     for n, v in summary["ses"].items()), "",
             "Cells: mean test return; training steps mean ± std (solved fraction of agents).", "",
             "| agent | " + " | ".join(settings) + " |", "|---|" + "---|" * len(settings)]
    for a in agents:
        row = []
        for s in settings:
            c = summary["settings"][s].get(a)
            row.append("—" if c is None else f"{c['mean_return']:.1f}; {c['train_steps_mean']:,.0f} ± "
                       f"{c['train_steps_std']:,.0f} ({c['solved_fraction']:.2f})")
        lines.append(f"| {a} | " + " | ".join(row) + " |")
    if REAL in summary["settings"]:
        lines += ["", "Training steps relative to the real task (1 − SE / real):", ""]
        for a in agents:
            real = summary["settings"][REAL].get(a)
            for s in settings:
                c = summary["settings"][s].get(a)
                if s != REAL and c and real and real["train_steps_mean"] > 0:
                    saving = 1 - c["train_steps_mean"] / real["train_steps_mean"]
                    word = "fewer" if saving >= 0 else "more"
                    lines.append(f"- {a} on {s}: {abs(saving):.0%} {word} steps")
    paper = PAPER.get(spec.id, {})
    if paper:
        lines += ["", "The paper's numbers (Ferreira et al. 2022, Fig. 3):", "",
                  "| agent | real env | SE (varied HPs) | SE (fixed HPs) |", "|---|---|---|---|"]
        for a, cells in paper.items():
            lines.append(f"| {a} | " + " | ".join(cells.get(k, "—") for k in (REAL, "SE (varied HPs)",
                                                                             "SE (fixed HPs)")) + " |")
    lines += ["", "![return densities](densities.png)", "", "![training steps](steps.png)", ""]
    return "\n".join(lines)
