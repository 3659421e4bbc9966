"""DDQN on the real CartPole-v0: it learns, vmapped populations are exact, and HP sampling is right."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from synthenv.agents import ddqn
from synthenv.agents.hparams import int_range, layer_range

N_AGENTS = 4
TEST_EPISODES = 10
CFG = ddqn.resolve("cartpole", hidden=32, batch_size=32, lr=1e-3, max_steps=15000)


def test_hparams_base_values():
    hp = ddqn.sample_hparams(jax.random.PRNGKey(0), CFG, vary=False)
    assert float(hp.lr) == pytest.approx(1e-3)
    assert (int(hp.batch_size), int(hp.hidden), int(hp.layers)) == (32, 32, 1)


def test_sample_hparams_varied_distribution():
    cfg = ddqn.resolve("hpvar", lr=1e-3, batch_size=128, hidden=64, layers=2)
    n = 2000
    hps = jax.jit(jax.vmap(lambda k: ddqn.sample_hparams(k, cfg, vary=True)))(
        jax.random.split(jax.random.PRNGKey(5), n))
    lr, batch, hidden, layers = (np.asarray(x) for x in hps)
    assert lr.shape == batch.shape == hidden.shape == layers.shape == (n,)

    # lr log-uniform in [lr/3, 3 lr] (float32 exp: allow one rounding step at the ends).
    assert lr.min() >= cfg.lr / 3 * (1 - 1e-6) and lr.max() <= 3 * cfg.lr * (1 + 1e-6)
    assert lr.min() < cfg.lr / 2.5 and lr.max() > 2.5 * cfg.lr  # the whole range is used
    assert abs(np.mean(np.log(lr)) - math.log(cfg.lr)) < 0.05
    # Uniform in log: a quarter of the draws fall in each quarter of the log range.
    edges = np.linspace(math.log(cfg.lr / 3), math.log(cfg.lr * 3), 5)
    counts, _ = np.histogram(np.log(lr), bins=edges)
    assert np.all(np.abs(counts / n - 0.25) < 0.04), counts

    for values, base in [(batch, cfg.batch_size), (hidden, cfg.hidden)]:
        lo, hi = int_range(base)
        assert (lo, hi) == (round(base / 3), round(base * 3))
        assert values.dtype == np.int32
        assert values.min() >= lo and values.max() <= hi
        assert values.min() <= lo + 2 and values.max() >= hi - 6
        assert abs(np.mean(np.log(values)) - math.log(base)) < 0.05

    lo, hi = layer_range(cfg.layers)
    assert (lo, hi) == (1, 3)
    assert set(layers.tolist()) == {1, 2, 3}
    assert np.all(np.abs(np.bincount(layers)[1:] / n - 1 / 3) < 0.05)

    # The varied shapes fit in the max shapes every member is allocated at.
    shapes = ddqn.max_shapes(cfg, vary=True)
    assert hidden.max() <= shapes.hidden and batch.max() <= shapes.batch_size
    assert layers.max() <= shapes.layers


def test_sample_layers_never_below_one():
    cfg = ddqn.resolve("cartpole", layers=1)
    hps = jax.vmap(lambda k: ddqn.sample_hparams(k, cfg, vary=True))(jax.random.split(jax.random.PRNGKey(0), 500))
    assert set(np.asarray(hps.layers).tolist()) == {1, 2}
