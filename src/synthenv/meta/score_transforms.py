"""The paper's score transforms (ids 0-7): member scores -> update weights. Higher score = better."""

from __future__ import annotations

import jax.numpy as jnp

TRANSFORMS = {
    0: "linear to [0, 1]",
    1: "rank to [0, 1]",
    2: "NES utilities, zero mean, best = 1",
    3: "NES utilities without subtracting 1/n, best = 1",
    4: "single best",
    5: "single best, only if above the mean unperturbed score",
    6: "all above the mean unperturbed score, weighted by excess, max-normalised",
    7: "all above the mean unperturbed score, weighted by excess, sum-normalised",
}


def ranks_best_first(scores: jnp.ndarray) -> jnp.ndarray:
    """Rank 1 for the best score, n for the worst (ties broken by position)."""
    order = jnp.argsort(-scores, stable=True)
    return jnp.zeros_like(order).at[order].set(jnp.arange(1, scores.shape[0] + 1))


def transform(scores: jnp.ndarray, kind: int, unperturbed_mean: jnp.ndarray) -> jnp.ndarray:
    n = scores.shape[0]
    scores = scores.astype(jnp.float32)
    if kind == 0:
        return (scores - scores.min()) / (scores.max() - scores.min() + 1e-9)
    if kind == 1:
        return (n - ranks_best_first(scores)).astype(jnp.float32) / (n - 1)
    if kind in (2, 3):
        rank = ranks_best_first(scores).astype(jnp.float32)
        u = jnp.maximum(0.0, jnp.log(n / 2 + 1) - jnp.log(rank))
        u = u / u.sum()
        if kind == 2:
            u = u - 1.0 / n
        return u / u.max()
    if kind == 4:
        return jnp.zeros(n).at[jnp.argmax(scores)].set(1.0)
    if kind == 5:
        return jnp.zeros(n).at[jnp.argmax(scores)].set(jnp.where(scores.max() > unperturbed_mean, 1.0, 0.0))
    if kind in (6, 7):
        excess = jnp.maximum(scores - unperturbed_mean, 0.0)
        norm = excess.max() if kind == 6 else excess.sum()
        return jnp.where(norm > 0, excess / jnp.where(norm > 0, norm, 1.0), 0.0)
    raise ValueError(f"unknown score transform {kind}")
