"""Success curves over generations (the paper's Fig. 2) from the ``metrics.jsonl`` of many runs."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from synthenv.errors import UsageError
from synthenv.experiments import figures
from synthenv.meta.run import CONFIG_FILE, METRICS_FILE
from synthenv.tasks.registry import get_spec


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run folders among ``paths``: each path is a run (holds metrics.jsonl) or a folder of runs."""
    runs = []
    for p in map(Path, paths):
        if (p / METRICS_FILE).exists():
            runs.append(p)
        elif p.is_dir() and (found := sorted(q for q in p.iterdir() if (q / METRICS_FILE).exists())):
            runs.extend(found)
        else:
            raise UsageError(f"{p} is neither a run folder (with {METRICS_FILE}) nor a folder of runs")
    return runs


def plot_curves(paths: list[str | Path], out: str | Path, title: str | None = None) -> dict:
    """Plot every run's unperturbed score over generations into ``out`` (PNG); returns a summary."""
    runs = find_runs(paths)
    envs = {json.loads((r / CONFIG_FILE).read_text())["env"] for r in runs}
    if len(envs) > 1:
        raise UsageError(f"the runs are for different tasks: {', '.join(sorted(envs))}")
    spec = get_spec(envs.pop())
    metrics = {str(r): [json.loads(line) for line in (r / METRICS_FILE).read_text().splitlines()] for r in runs}
    metrics = {k: v for k, v in metrics.items() if v}
    if not metrics:
        raise UsageError("no run has finished a generation yet")
    out = Path(out)
    if out.suffix != ".png":
        raise UsageError(f"--out must name a .png file, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    figures.success_curves(metrics, spec.solved_threshold, out, title or f"{spec.id}: {len(metrics)} runs")
    first_solved = [next((m["generation"] for m in ms if m["score_unperturbed"] >= spec.solved_threshold), None)
                    for ms in metrics.values()]
    solved = [g for g in first_solved if g is not None]
    return {"runs": len(metrics), "solved": len(solved), "env": spec.id, "figure": str(out),
            "median_generation_first_solved": statistics.median(solved) if solved else None}
