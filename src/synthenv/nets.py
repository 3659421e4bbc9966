"""Small shared network pieces: activation lookup and the proxies' MLP."""

from __future__ import annotations

import flax.linen as nn
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


class MLP(nn.Module):
    """``layers`` hidden layers of ``hidden`` units with ``activation`` (PReLU: a learned slope per
    layer), then a linear layer of ``out`` units."""

    hidden: int
    layers: int
    activation: str
    out: int

    @nn.compact
    def __call__(self, x):
        for i in range(self.layers):
            x = nn.Dense(self.hidden, name=f"hidden_{i}")(x)
            slope = self.param(f"prelu_{i}", lambda k: jnp.full((1,), 0.25)) if self.activation == "prelu" else None
            x = activation_fn(self.activation, x, slope)
        return nn.Dense(self.out, name="out")(x)
