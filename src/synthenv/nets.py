"""Small shared network pieces: activation lookup."""

from __future__ import annotations

import jax
import jax.numpy as jnp

ACTIVATIONS = ("tanh", "relu", "leaky_relu", "prelu")


def activation_fn(name: str, x: jax.Array, prelu_slope: jax.Array | None = None) -> jax.Array:
    """Every activation here maps 0 to 0, which lets masked hidden units stay exactly zero."""
    if name == "tanh":
        return jnp.tanh(x)
    if name == "relu":
        return jax.nn.relu(x)
    if name == "leaky_relu":
        return jax.nn.leaky_relu(x, 0.01)
    if name == "prelu":
        return jnp.where(x >= 0, x, prelu_slope * x)
    raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
