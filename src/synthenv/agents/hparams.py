"""The varied-hyperparameter rule of the paper, declared once for every agent.

Per agent, each varied field is drawn around the config's base value ``x``: learning rate, batch or
minibatch size and hidden size log-uniformly in ``[x/3, 3x]`` (sizes rounded), the layer count ``L``
as ``L-1``, ``L`` or ``L+1`` (never below 1); the tabular agents' step size ``alpha`` and discount
``gamma`` uniformly in ``[0.1, 1]`` whatever the base (rule ``"uniform01"``). An agent declares
which fields vary by the fields of its ``HParams`` NamedTuple; :func:`draw` samples any such tuple
and :func:`upper` gives the static maximum a masked, vmapped population is allocated at.
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


def log_uniform(key: jax.Array, base: float, spread: float = SPREAD) -> jax.Array:
    lo, hi = math.log(base / spread), math.log(base * spread)
    return jnp.exp(jax.random.uniform(key, (), jnp.float32, lo, hi))


def log_uniform_int(key: jax.Array, base: int, spread: float = SPREAD) -> jax.Array:
    lo, hi = int_range(base, spread)
    return jnp.clip(jnp.round(log_uniform(key, base, spread)), lo, hi).astype(jnp.int32)


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


def draw(hparams_type, key: jax.Array, config, vary: bool):
    """An ``hparams_type`` (a NamedTuple of RULES fields) for one agent: the config's values, or
    (``vary``) a draw of the varied-HP distribution, one key per field in field order."""
    fields = hparams_type._fields
    if not vary:
        return hparams_type(*(jnp.float32(getattr(config, f)) if RULES[f] in ("log", "uniform01") else
                              jnp.int32(getattr(config, f)) for f in fields))
    keys = jax.random.split(key, len(fields))
    sample = {"log": log_uniform, "log_int": log_uniform_int, "layers": sample_layers, "uniform01": uniform01}
    return hparams_type(*(sample[RULES[f]](k, getattr(config, f)) for f, k in zip(fields, keys)))


def bounds(config, field: str, vary: bool) -> tuple[int, int]:
    """The smallest and largest values the integer ``field`` takes in a population (the config's own
    value when fixed): the maxima set the masked shapes."""
    base = getattr(config, field)
    if not vary:
        return base, base
    return layer_range(base) if RULES[field] == "layers" else int_range(base)


def upper(config, field: str, vary: bool) -> int:
    """The largest value ``field`` takes in a population."""
    return bounds(config, field, vary)[1]


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


def max_shapes(config, vary: bool) -> Shapes:
    return Shapes(*(upper(config, f, vary) for f in ("hidden", "layers", "batch_size")))


def sample_hparams(key: jax.Array, config, vary: bool) -> HParams:
    return draw(HParams, key, config, vary)
