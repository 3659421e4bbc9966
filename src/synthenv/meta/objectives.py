"""What an RN is scored by: one agent's learning curve on the real task -> one number (higher is better).

An agent trains on the RN-wrapped task (real dynamics, learned reward) for at most ``max_episodes``
episodes with one greedy real test episode after each (``synthenv.agents.learning_curve``):

- ``threshold``: ``-(training steps until the mean of the last d test returns reaches the threshold)
  - 100 * max(0, threshold - that mean at the end)``; an agent that never gets there is charged all
  the steps it trained plus the shortfall penalty (the paper's first objective). Training stops at
  the threshold.
- ``auc``: the area under the test-return curve over training steps, ``sum_i return_i * length_i``
  (each test return weighted by the length of the training episode before it); a fixed budget of
  episodes.
- ``final``: the mean of the last d test returns after the full budget.

An agent whose RN gave inf/NaN (or whose training diverged) is scored as if every test had returned
the task's worst return.
"""

from __future__ import annotations

import jax.numpy as jnp

from synthenv.agents.learning_curve import Curve

OBJECTIVES = ("auc", "threshold", "final")
SHORTFALL_PENALTY = 100.0
"""The threshold objective's charge per unit of return the final mean falls short of the threshold."""


def score(objective: str, curve: Curve, threshold: float, window: int, worst_return: float, diverged) -> jnp.ndarray:
    """The objective of one agent's curve (``diverged``: its tests count as ``worst_return``)."""
    valid = jnp.arange(curve.returns.shape[-1]) < curve.count
    returns = jnp.where(diverged, worst_return, curve.returns)
    final = jnp.where(diverged, worst_return, curve.last_mean(window))
    if objective == "final":
        return final
    if objective == "auc":
        return jnp.sum(jnp.where(valid, returns * curve.lengths, 0.0))
    if objective == "threshold":
        steps = jnp.max(jnp.where(valid, curve.steps, 0)).astype(jnp.float32)
        return -steps - SHORTFALL_PENALTY * jnp.maximum(0.0, threshold - final)
    raise ValueError(f"unknown objective {objective!r}")
