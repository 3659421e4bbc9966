"""The varied-hyperparameter rule of the paper, declared once for every agent.

Per agent, each varied field is drawn around the config's base value ``x``: learning rate, batch or
minibatch size and hidden size log-uniformly in ``[x/3, 3x]`` (sizes rounded), the layer count ``L``
as ``L-1``, ``L`` or ``L+1`` (never below 1); the tabular agents' step size ``alpha`` and discount
``gamma`` uniformly in ``[0.1, 1]`` whatever the base (rule ``"uniform01"``). An agent declares
which fields vary by the fields of its ``HParams`` NamedTuple; :func:`draw` samples any such tuple
and :func:`upper` gives the static maximum a masked, vmapped population is allocated at.

A masked population costs what its largest member costs, so a varied population can be split into
shape strata (:func:`strata`): each stratum draws its shape-setting fields from one part of their
range (one layer count; the lower or upper half of a size's log range) and is allocated at that
part's maximum. Strata used equally often give each agent the same marginal distribution as the
unstratified rule, at a fraction of the cost.
Replay-based agents (DDQN, Dueling DDQN, TD3, SAC) share :class:`HParams` and :class:`Shapes` below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

SPREAD = 3.0
RULES = {"lr": "log", "batch_size": "log_int", "minibatch_size": "log_int", "hidden": "log_int",
         "layers": "layers", "alpha": "uniform01", "gamma": "uniform01"}
"""How each varied field is drawn (a field not named here cannot vary)."""


def log_uniform(key: jax.Array, base: float, spread: float = SPREAD, part: int | None = None) -> jax.Array:
    """Log-uniform in ``[base/spread, base*spread]``; ``part`` 0 or 1: its lower or upper half
    (``[base/spread, base]`` or ``[base, base*spread]``)."""
    lo, hi = math.log(base / spread), math.log(base * spread)
    if part is not None:
        lo, hi = (lo, math.log(base)) if part == 0 else (math.log(base), hi)
    return jnp.exp(jax.random.uniform(key, (), jnp.float32, lo, hi))


def log_uniform_int(key: jax.Array, base: int, spread: float = SPREAD, part: int | None = None) -> jax.Array:
    lo, hi = int_range(base, spread)
    return jnp.clip(jnp.round(log_uniform(key, base, spread, part)), lo, hi).astype(jnp.int32)


def int_range(base: int, spread: float = SPREAD) -> tuple[int, int]:
    """The integer bounds of a varied integer hyperparameter (the maximum sets masked shapes)."""
    return max(1, round(base / spread)), max(1, round(base * spread))


def layer_range(base: int) -> tuple[int, int]:
    return max(1, base - 1), base + 1


def sample_layers(key: jax.Array, base: int) -> jax.Array:
    lo, hi = layer_range(base)
    return jax.random.randint(key, (), lo, hi + 1, jnp.int32)


UNIFORM01 = (0.1, 1.0)
"""The range of the ``"uniform01"`` rule."""


def uniform01(key: jax.Array, base: float) -> jax.Array:
    """U[0.1, 1], ignoring ``base`` (the tabular agents' varied alpha and gamma)."""
    return jax.random.uniform(key, (), jnp.float32, *UNIFORM01)


SHAPE_FIELDS = ("layers", "hidden", "batch_size", "minibatch_size")
"""The varied fields that set array shapes, the ones :func:`strata` can split."""

StratumParts = dict
"""Which part of each split field one shape stratum draws from: ``{field: part}`` for the split fields (``layers``: the index of one layer
count in its range; a size: 0 for the lower half of its log range, 1 for the upper)."""


def draw(hparams_type, key: jax.Array, config, vary: bool, stratum: StratumParts | None = None):
    """An ``hparams_type`` (a NamedTuple of RULES fields) for one agent: the config's values, or
    (``vary``) a draw of the varied-HP distribution, one key per field in field order; ``stratum``
    restricts its split fields to their parts (the other fields draw as without it)."""
    fields = hparams_type._fields
    if not vary:
        return hparams_type(*(jnp.float32(getattr(config, f)) if RULES[f] in ("log", "uniform01") else
                              jnp.int32(getattr(config, f)) for f in fields))
    keys = jax.random.split(key, len(fields))
    sample = {"log": log_uniform, "log_int": log_uniform_int, "layers": sample_layers, "uniform01": uniform01}
    stratum = stratum or {}

    def one(field, k):
        base, part = getattr(config, field), stratum.get(field)
        if part is None:
            return sample[RULES[field]](k, base)
        if RULES[field] == "layers":  # one layer count
            return jnp.int32(bounds(config, field, vary, stratum)[0])
        return log_uniform_int(k, base, part=part)

    return hparams_type(*(one(f, k) for f, k in zip(fields, keys)))


def parts(config, field: str) -> int:
    """How many parts a stratified ``field`` splits into: one per layer count, two halves of a size."""
    if RULES[field] == "layers":
        lo, hi = layer_range(config.layers)
        return hi - lo + 1
    return 2


MIN_STRATUM_AGENTS = 8
"""A population of ``n`` agents splits only as far as every stratum keeps this many: each stratum
is another copy of the training loop to compile and run, which only pays for itself in a stratum of
several agents (small test populations stay whole)."""


def strata(hparams_type, config, vary: bool, fields, agents: int | None = None) -> list[StratumParts | None]:
    """The shape strata of a varied population of ``hparams_type`` agents split by ``fields`` (those
    of them the agent varies): every combination of one part per field, ordered so that strata 2j
    and 2j+1 differ in every field (a candidate's two agents, draws 2j and 2j+1, then cover both
    layer counts and both halves of the hidden range). With ``agents``
    (the population's size), only the leading fields that leave each stratum ``MIN_STRATUM_AGENTS``.
    ``[None]``: one unsplit population (fixed HPs, or no shape field to split)."""
    fields = [f for f in fields if f in hparams_type._fields] if vary else []
    cells: list[StratumParts] = [{}]
    for f in fields:
        split = [{**cell, f: p} for p in range(parts(config, f)) for cell in cells]
        if agents is not None and agents < MIN_STRATUM_AGENTS * len(split):
            break
        cells = split
    if cells == [{}]:
        return [None]
    # Stratum 2j+1 is the complement of stratum 2j (every part p of n as n-1-p: cell i and cell
    # N-1-i), so the two agents of one draw pair (a candidate's two agents) differ in every field.
    n = len(cells)
    order = [i for j in range((n + 1) // 2) for i in dict.fromkeys((j, n - 1 - j))]
    return [cells[i] for i in order]


def bounds(config, field: str, vary: bool, stratum: StratumParts | None = None) -> tuple[int, int]:
    """The smallest and largest values the integer ``field`` takes in a population (the config's own
    value when fixed; in ``stratum``, in its part): the maxima set the masked shapes."""
    base = getattr(config, field)
    if not vary:
        return base, base
    lo, hi = layer_range(base) if RULES[field] == "layers" else int_range(base)
    part = (stratum or {}).get(field)
    if part is None:
        return lo, hi
    if RULES[field] == "layers":
        return lo + part, lo + part
    return (lo, base) if part == 0 else (base, hi)


def upper(config, field: str, vary: bool, stratum: StratumParts | None = None) -> int:
    """The largest value ``field`` takes in a population (in ``stratum``)."""
    return bounds(config, field, vary, stratum)[1]


class HParams(NamedTuple):
    """Per-agent hyperparameters of the replay-based agents (may differ inside one vmap)."""

    lr: jax.Array
    batch_size: jax.Array
    hidden: jax.Array
    layers: jax.Array


@dataclass(frozen=True)
class Shapes:
    """The static maximum shapes every member of a replay-based population is allocated at."""

    hidden: int
    layers: int
    batch_size: int


def max_shapes(config, vary: bool, stratum: StratumParts | None = None) -> Shapes:
    return Shapes(*(upper(config, f, vary, stratum) for f in ("hidden", "layers", "batch_size")))


def sample_hparams(key: jax.Array, config, vary: bool, stratum: StratumParts | None = None) -> HParams:
    return draw(HParams, key, config, vary, stratum)
