"""The masked max-shape MLP computes, and trains, exactly like the MLP of its small shape."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from synthenv.agents import masked_mlp
from synthenv.agents.masked_mlp import MLPShape

IN_DIM, OUT_DIM = 5, 3
MAX_HIDDEN, MAX_LAYERS = 40, 3
ADAM_STEPS = 5
# jit keeps the many small forward passes cheap (eager dispatch is slow on a 2-core machine).
_apply = jax.jit(masked_mlp.apply, static_argnums=3)
LR = 1e-2

CASES = [
    (13, 2, "tanh"),
    (13, 2, "relu"),
    (7, 1, "leaky_relu"),
    (1, 1, "tanh"),
    (25, 3, "prelu"),
    (40, 3, "relu"),  # full width, full depth: nothing masked
    (40, 1, "prelu"),
    (9, 3, "leaky_relu"),
    (31, 2, "prelu"),
]


def _shape(hidden, layers):
    return MLPShape(jnp.int32(hidden), jnp.int32(layers))


def _init(seed, hidden, layers):
    return masked_mlp.init_params(jax.random.PRNGKey(seed), IN_DIM, OUT_DIM, MAX_HIDDEN, MAX_LAYERS,
                                  _shape(hidden, layers))


def _inputs(seed, n=64):
    # Scaled so every activation sees both signs and tanh is not saturated.
    return 2.0 * jax.random.normal(jax.random.PRNGKey(1000 + seed), (n, IN_DIM))


def _prelu_slopes(params, seed):
    # The default slope 0.25 for every layer would hide a layer-index mix-up: make them distinct.
    return {**params, "prelu": jnp.linspace(0.05, 0.45, params["prelu"].shape[0]) + 0.01 * seed}


def _assert_tree_close(a, b, **tol):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert x.shape == y.shape
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tol)


def _inactive_mask(params, hidden, layers):
    """True for every parameter entry the small network does not have."""
    h = np.arange(MAX_HIDDEN) < hidden
    m = {
        "w0": ~np.broadcast_to(h[None, :], params["w0"].shape),
        "b0": ~h,
        "w_out": ~np.broadcast_to(h[:, None], params["w_out"].shape),
        "b_out": np.zeros(params["b_out"].shape, bool),
        "prelu": np.arange(MAX_LAYERS) >= layers,
    }
    layer_active = np.arange(MAX_LAYERS - 1) < layers - 1
    m["w_hid"] = ~(layer_active[:, None, None] & h[None, :, None] & h[None, None, :])
    m["b_hid"] = ~(layer_active[:, None] & h[None, :])
    return m


def test_shrink_shapes():
    params = _init(0, 13, 2)
    small = masked_mlp.shrink(params, (13, 2))
    assert small["w0"].shape == (IN_DIM, 13)
    assert small["w_hid"].shape == (1, 13, 13)
    assert small["b_hid"].shape == (1, 13)
    assert small["w_out"].shape == (13, OUT_DIM)
    assert small["prelu"].shape == (2,)
    small1 = masked_mlp.shrink(params, (13, 1))
    assert "w_hid" not in small1 and "b_hid" not in small1


@pytest.mark.parametrize("hidden,layers,activation", CASES)
def test_masked_forward_equals_small(hidden, layers, activation):
    for seed in range(2):
        params = _prelu_slopes(_init(seed, hidden, layers), seed)
        small = masked_mlp.shrink(params, (hidden, layers))
        x = _inputs(seed)
        out_masked = _apply(params, x, _shape(hidden, layers), activation)
        out_small = _apply(small, x, _shape(hidden, layers), activation)
        assert out_masked.shape == out_small.shape == (x.shape[0], OUT_DIM)
        np.testing.assert_allclose(out_masked, out_small, rtol=1e-6, atol=1e-6)
        # Sanity: the mask matters (the full-shape network computes something else).
        if (hidden, layers) != (MAX_HIDDEN, MAX_LAYERS):
            full = _apply(params, x, _shape(MAX_HIDDEN, MAX_LAYERS), activation)
            assert not np.allclose(full, out_small, atol=1e-3)


def test_masked_forward_under_vmap_with_different_shapes():
    # The point of the masking: members with different shapes inside one vmap.
    shapes = [(13, 2), (7, 1), (40, 3), (20, 3)]
    keys = jax.random.split(jax.random.PRNGKey(0), len(shapes))
    hid = jnp.array([s[0] for s in shapes], jnp.int32)
    lay = jnp.array([s[1] for s in shapes], jnp.int32)
    params = jax.jit(jax.vmap(lambda k, h, l: masked_mlp.init_params(
        k, IN_DIM, OUT_DIM, MAX_HIDDEN, MAX_LAYERS, MLPShape(h, l))))(keys, hid, lay)
    x = _inputs(0)
    out = jax.jit(jax.vmap(lambda p, h, l: masked_mlp.apply(p, x, MLPShape(h, l), "relu")))(params, hid, lay)
    for i, (h, l) in enumerate(shapes):
        p_i = jax.tree.map(lambda a: a[i], params)
        small = masked_mlp.shrink(p_i, (h, l))
        np.testing.assert_allclose(out[i], _apply(small, x, _shape(h, l), "relu"),
                                   rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("hidden,layers,activation", CASES)
def test_adam_training_masked_equals_small(hidden, layers, activation):
    """A few Adam steps (optax.scale_by_adam, applied as in ddqn.py) on an MSE loss: the masked
    network's active block follows the small network exactly, and masked weights never move."""
    params = _prelu_slopes(_init(7, hidden, layers), 0)
    small = masked_mlp.shrink(params, (hidden, layers))
    shape = _shape(hidden, layers)
    x = _inputs(7)
    y = jax.random.normal(jax.random.PRNGKey(99), (x.shape[0], OUT_DIM))
    adam = optax.scale_by_adam()

    def loss(p):
        return jnp.mean((masked_mlp.apply(p, x, shape, activation) - y) ** 2)

    @jax.jit
    def adam_step(p, opt_state):
        grads = jax.grad(loss)(p)
        updates, opt_state = adam.update(grads, opt_state)
        return jax.tree.map(lambda w, u: w - LR * u, p, updates), opt_state, grads

    masked, small_p = params, small
    opt_m, opt_s = adam.init(masked), adam.init(small_p)
    inactive = _inactive_mask(params, hidden, layers)
    losses = []
    for _ in range(ADAM_STEPS):
        losses.append(float(loss(small_p)))
        masked, opt_m, grads_m = adam_step(masked, opt_m)
        small_p, opt_s, _ = adam_step(small_p, opt_s)
        # Masked units get exactly zero gradient.
        for name, g in grads_m.items():
            assert np.all(np.asarray(g)[inactive[name]] == 0.0), name
        _assert_tree_close(masked_mlp.shrink(masked, (hidden, layers)), small_p, rtol=1e-5, atol=1e-6)

    assert float(loss(small_p)) < losses[0], "training should reduce the loss"
    # Inactive weights did not change at all (bitwise), active ones did.
    for name in params:
        before, after = np.asarray(params[name]), np.asarray(masked[name])
        np.testing.assert_array_equal(after[inactive[name]], before[inactive[name]], err_msg=name)
    assert not np.array_equal(np.asarray(masked["w0"])[:, :hidden], np.asarray(params["w0"])[:, :hidden])
    # Adam's moments for masked entries stay zero too.
    mu = opt_m.mu
    for name in params:
        assert np.all(np.asarray(mu[name])[inactive[name]] == 0.0), name
    # And the trained masked network still equals the trained small one.
    np.testing.assert_allclose(_apply(masked, x, shape, activation),
                               _apply(small_p, x, shape, activation), rtol=1e-5, atol=1e-5)


def test_init_fan_in_uses_active_width():
    # PyTorch-style bounds: layers after the first are bounded by 1/sqrt(active hidden).
    params = _init(3, 4, 3)
    assert float(jnp.max(jnp.abs(params["w0"]))) <= 1 / np.sqrt(IN_DIM)
    assert float(jnp.max(jnp.abs(params["w_hid"]))) <= 1 / np.sqrt(4)
    assert float(jnp.max(jnp.abs(params["w_out"]))) <= 1 / np.sqrt(4)
    assert float(jnp.max(jnp.abs(params["w_out"]))) > 1 / np.sqrt(MAX_HIDDEN)
