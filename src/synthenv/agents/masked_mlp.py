"""An MLP allocated at a maximum width and depth, with the actual width and depth as traced values.

Shape-setting hyperparameters (hidden size, layer count) cannot differ inside one ``vmap``. This MLP
keeps every member at the maximum shape and masks the rest: hidden units past ``hidden`` are
multiplied by zero (every activation we use maps 0 to 0), and layers past ``layers`` are skipped
with a select. The masked units then get exactly zero gradient, Adam leaves them at zero update,
and the network computes exactly what an MLP of the small shape computes (``tests/test_masked_mlp.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from synthenv.nets import activation_fn


class MLPShape(NamedTuple):
    """The shape one member actually uses (traced: may differ across a vmapped population)."""

    hidden: jax.Array  # int32
    layers: jax.Array  # int32, >= 1


def init_params(key: jax.Array, in_dim: int, out_dim: int, max_hidden: int, max_layers: int,
                shape: MLPShape) -> dict:
    """PyTorch-style init U(±1/sqrt(fan_in)), with fan_in the *active* input width of each layer."""
    keys = jax.random.split(key, 2 * (max_layers + 1))
    hidden = shape.hidden.astype(jnp.float32)

    def uniform(k, shp, fan_in):
        return jax.random.uniform(k, shp, jnp.float32, -1.0, 1.0) / jnp.sqrt(fan_in)

    params = {
        "w0": uniform(keys[0], (in_dim, max_hidden), float(in_dim)),
        "b0": uniform(keys[1], (max_hidden,), float(in_dim)),
        "w_out": uniform(keys[2], (max_hidden, out_dim), hidden),
        "b_out": uniform(keys[3], (out_dim,), hidden),
        "prelu": jnp.full((max_layers,), 0.25, jnp.float32),
    }
    if max_layers > 1:
        params["w_hid"] = jnp.stack(
            [uniform(keys[4 + 2 * i], (max_hidden, max_hidden), hidden) for i in range(max_layers - 1)])
        params["b_hid"] = jnp.stack(
            [uniform(keys[5 + 2 * i], (max_hidden,), hidden) for i in range(max_layers - 1)])
    return params


def apply(params: dict, x: jax.Array, shape: MLPShape, activation: str) -> jax.Array:
    max_hidden = params["w0"].shape[1]
    mask = (jnp.arange(max_hidden) < shape.hidden).astype(x.dtype)
    h = activation_fn(activation, x @ params["w0"] + params["b0"], params["prelu"][0]) * mask
    if "w_hid" in params:
        for i in range(params["w_hid"].shape[0]):
            h_next = activation_fn(activation, h @ params["w_hid"][i] + params["b_hid"][i],
                                   params["prelu"][i + 1]) * mask
            h = jnp.where(i + 1 < shape.layers, h_next, h)
    return h @ params["w_out"] + params["b_out"]


def shrink(params: dict, shape: tuple[int, int]) -> dict:
    """The small network's parameters (active block only), for tests and for export."""
    hidden, layers = shape
    out = {
        "w0": params["w0"][:, :hidden],
        "b0": params["b0"][:hidden],
        "w_out": params["w_out"][:hidden],
        "b_out": params["b_out"],
        "prelu": params["prelu"][:layers],
    }
    if layers > 1:
        out["w_hid"] = params["w_hid"][: layers - 1, :hidden, :hidden]
        out["b_hid"] = params["b_hid"][: layers - 1, :hidden]
    return out
