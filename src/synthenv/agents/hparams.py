"""The varied-hyperparameter sampler of the paper: lr, batch and hidden size log-uniform in
[x/3, 3x] around the base, layer count L-1, L or L+1 (never below 1)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

SPREAD = 3.0


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
