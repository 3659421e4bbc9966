"""The paper's figures as PNG files (matplotlib, no screen needed): success curves over generations
(Fig. 2), return densities and training-step bars of the transfer study (Fig. 3), and next-state /
reward histograms of SE and real transitions (Fig. 4), real test return against training steps of
RNs and baselines (Fig. 5); and ours: the SE-against-real scatter of the HPO-proxy study."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    """Write atomically: render to a temporary file in the same folder, then rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)
    _plt().close(fig)


def density(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Gaussian kernel density estimate with Scott's bandwidth (a point mass gets a narrow bump)."""
    values = np.asarray(values, float)
    spread = values.std() or (grid[-1] - grid[0]) / 100 or 1.0
    bw = 1.06 * spread * values.size ** (-1 / 5)
    z = (grid[:, None] - values[None, :]) / bw
    return np.exp(-0.5 * z**2).sum(axis=1) / (values.size * bw * np.sqrt(2 * np.pi))


def return_densities(all_returns: dict, agents: list[str], spec, path: Path) -> None:
    """One panel per agent, one density per setting, over the task's return range."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(agents), figsize=(4.2 * len(agents), 3.2), squeeze=False)
    lo = min(spec.min_return, min(np.min(c[a]["returns"]) for c in all_returns.values() for a in c))
    hi = max(spec.solved_threshold, max(np.max(c[a]["returns"]) for c in all_returns.values() for a in c))
    grid = np.linspace(lo, hi, 400)
    for ax, a in zip(axes[0], agents):
        for setting, cells in all_returns.items():
            if a in cells:
                r = np.ravel(cells[a]["returns"])
                ax.plot(grid, density(r, grid), label=f"{setting} (mean {r.mean():.1f})")
        ax.axvline(spec.solved_threshold, color="gray", ls=":", lw=1)
        ax.set_title(a)
        ax.set_xlabel("real test return")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("density")
    _save(fig, path)


def step_bars(summary: dict, agents: list[str], path: Path) -> None:
    """Mean ± std training steps per agent (groups) and setting (bars)."""
    plt = _plt()
    settings = list(summary["settings"])
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(agents) * len(settings) / 2), 3.4))
    width = 0.8 / len(settings)
    x = np.arange(len(agents))
    for i, s in enumerate(settings):
        cells = [summary["settings"][s].get(a) for a in agents]
        mean = [c["train_steps_mean"] if c else 0 for c in cells]
        std = [c["train_steps_std"] if c else 0 for c in cells]
        ax.bar(x + i * width - 0.4 + width / 2, mean, width, yerr=std, capsize=3, label=s)
    ax.set_xticks(x, agents)
    ax.set_ylabel("training steps")
    ax.legend(fontsize=8)
    _save(fig, path)


def success_curves(runs: dict[str, list[dict]], threshold: float, path: Path, title: str = "") -> None:
    """Fig. 2: the unperturbed score of every run over generations, and their mean."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    longest = max(len(m) for m in runs.values())
    padded = []
    for name, metrics in runs.items():
        score = np.array([m["score_unperturbed"] for m in metrics])
        ax.plot(np.arange(score.size), score, lw=0.8, alpha=0.5)
        # A run that stopped (solved) keeps its last score for the mean.
        padded.append(np.concatenate([score, np.full(longest - score.size, score[-1])]))
    ax.plot(np.arange(longest), np.mean(padded, axis=0), color="black", lw=2, label=f"mean of {len(runs)} runs")
    ax.axhline(threshold, color="gray", ls=":", lw=1, label=f"solved ({threshold:g})")
    ax.set_xlabel("generation")
    ax.set_ylabel("real return of agents on the unperturbed SE")
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, path)


def transition_histograms(groups: dict[str, dict[str, np.ndarray]], obs_names: list[str], path: Path,
                          title: str = "") -> None:
    """Fig. 4: one panel per next-state dimension and one for the reward; one histogram per group
    (e.g. SE transitions in training, real transitions at test, SE outputs on the real (s, a) pairs)."""
    plt = _plt()
    n = len(obs_names) + 1
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n, 2.8), squeeze=False)
    for d in range(n):
        ax = axes[0][d]
        cols = [(g, v["next_obs"][:, d] if d < len(obs_names) else v["reward"]) for g, v in groups.items()]
        finite = np.concatenate([c[np.isfinite(c)] for _, c in cols])
        lo, hi = np.quantile(finite, [0.005, 0.995]) if finite.size else (0.0, 1.0)
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
        for g, c in cols:
            ax.hist(np.clip(c[np.isfinite(c)], bins[0], bins[-1]), bins=bins, density=True, histtype="step",
                    lw=1.2, label=g)
        ax.set_title(obs_names[d] if d < len(obs_names) else "reward", fontsize=9)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10, y=1.04)
    _save(fig, path)


def proxy_scatter(se_returns, real_returns, spec, title: str, path: Path) -> None:
    """One point per hyperparameter config: its mean real test return after training on the SE (x)
    and after training on the real task (y), with the task's solved threshold on both axes."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.scatter(se_returns, real_returns, s=22, alpha=0.75)
    ax.axvline(spec.solved_threshold, color="gray", ls=":", lw=1)
    ax.axhline(spec.solved_threshold, color="gray", ls=":", lw=1, label=f"solved ({spec.solved_threshold:g})")
    ax.set_xlabel("real test return after training on the SE")
    ax.set_ylabel("real test return after training on the real task")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    _save(fig, path)


def learning_curves(settings: dict, grid: np.ndarray, spec, title: str, path: Path) -> None:
    """Mean real test return against training steps, ± one standard error, one line per setting."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, v in settings.items():
        mean, se = np.asarray(v["mean"]), np.asarray(v["standard_error"])
        style = "-" if name.startswith("RN") else "--"
        (line,) = ax.plot(grid, mean, style, label=f"{name} ({v['agents']})")
        ax.fill_between(grid, mean - se, mean + se, color=line.get_color(), alpha=0.2)
    ax.axhline(spec.solved_threshold, color="gray", ls=":", lw=1)
    ax.set_xlabel("training steps (real dynamics)")
    ax.set_ylabel("real test return")
    ax.set_title(title)
    ax.legend(fontsize=7)
    _save(fig, path)
