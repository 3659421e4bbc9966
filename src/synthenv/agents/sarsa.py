"""Tabular SARSA: the on-policy tabular agent (``synthenv.agents.tabular`` with
``algorithm="sarsa"``), a tabular baseline for one-hot grid tasks such as ``Cliff-v0``.

Its target bootstraps from ``Q(s', a')`` with ``a'`` the epsilon-greedy action it takes next, so
while it explores it prefers paths away from the cliff. Presets: "small" (alpha 1, gamma 0.99,
epsilon 0.1 -> 0, x0.8 per episode, 20-episode stop window) and "count" (small with the count-based
exploration bonus 0.1 / sqrt(n(s, a))).
"""

from __future__ import annotations

from synthenv.agents import common
from synthenv.agents.tabular import (  # noqa: F401
    CONTINUOUS,
    DISCRETE,
    HParams,
    Shapes,
    make_policy,
    make_train,
    max_shapes,
    presets,
    sample_hparams,
)
from synthenv.agents.tabular import TabularConfig as Config

PRESETS: dict[str, Config] = presets("sarsa")
REAL_TASK_PRESETS: dict[str, str] = {}
"""Presets ``evaluate --env`` uses on real tasks (``small`` everywhere; see ``agents.protocol``)."""


def resolve(preset: str, **overrides) -> Config:
    return common.resolve_preset("SARSA", PRESETS, preset, overrides)
