"""DDQN on the real CartPole-v0: it learns, vmapped populations are exact, and HP sampling is right."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synthenv.agents import ddqn, masked_mlp
from synthenv.agents.hparams import int_range, layer_range
from synthenv.evaluation import make_evaluate
from synthenv.training_env import RealEnv
from synthenv.tasks.registry import make_task

N_AGENTS = 4
TEST_EPISODES = 10
CFG = ddqn.resolve("cartpole", hidden=32, batch_size=32, lr=1e-3, max_steps=15000)


@pytest.fixture(scope="module")
def setup():
    task = make_task("CartPole-v0")
    env = RealEnv(task)
    shapes = ddqn.max_shapes(CFG, vary=False)
    train = ddqn.make_train(CFG, env, shapes, stop_rule="threshold", threshold=195)
    hp = ddqn.sample_hparams(jax.random.PRNGKey(0), CFG, vary=False)
    evaluate = make_evaluate(task, ddqn.make_policy(CFG), TEST_EPISODES)
    evaluate_pop = jax.jit(jax.vmap(lambda k, p: evaluate(k, p, hp)))
    return dict(task=task, train=train, hp=hp, shapes=shapes, evaluate_pop=evaluate_pop)


@pytest.fixture(scope="module")
def population(setup):
    """4 agents with fixed seeds trained in one vmap (their stop times differ)."""
    keys = jax.random.split(jax.random.PRNGKey(2024), N_AGENTS)
    hp = setup["hp"]
    res = jax.jit(jax.vmap(lambda k: setup["train"](k, None, hp)))(keys)
    return keys, jax.device_get(res)


def test_hparams_base_values():
    hp = ddqn.sample_hparams(jax.random.PRNGKey(0), CFG, vary=False)
    assert float(hp.lr) == pytest.approx(1e-3)
    assert (int(hp.batch_size), int(hp.hidden), int(hp.layers)) == (32, 32, 1)


def test_trained_agents_solve_cartpole(setup, population):
    _, res = population
    eval_keys = jax.random.split(jax.random.PRNGKey(77), N_AGENTS)
    returns, _ = setup["evaluate_pop"](eval_keys, res.params)
    trained = float(np.mean(returns))

    # Untrained: freshly initialised networks of the same architecture, same evaluation.
    shape = masked_mlp.MLPShape(jnp.int32(CFG.hidden), jnp.int32(CFG.layers))
    init_keys = jax.random.split(jax.random.PRNGKey(2024), N_AGENTS)
    init_params = jax.vmap(lambda k: masked_mlp.init_params(
        k, 4, 2, setup["shapes"].hidden, setup["shapes"].layers, shape))(init_keys)
    untrained_returns, _ = setup["evaluate_pop"](eval_keys, init_params)
    untrained = float(np.mean(untrained_returns))

    assert not np.any(res.diverged)
    assert np.all(res.steps <= CFG.max_steps)
    assert trained >= 150.0, (trained, np.asarray(returns).mean(axis=1), res.steps)
    assert untrained < 60.0, (untrained, np.asarray(untrained_returns).mean(axis=1))
    assert np.all(np.asarray(returns) <= 200.0)  # CartPole-v0 truncates at 200


def test_vmapped_agent_equals_agent_trained_alone(setup, population):
    keys, res = population
    # Make sure the test is meaningful: the agents stopped at different times.
    assert len(set(np.asarray(res.steps).tolist())) > 1, res.steps
    train_one = jax.jit(lambda k: setup["train"](k, None, setup["hp"]))
    for i in range(N_AGENTS):
        alone = jax.device_get(train_one(keys[i]))
        assert int(alone.steps) == int(res.steps[i])
        assert int(alone.episodes) == int(res.episodes[i])
        assert bool(alone.diverged) == bool(res.diverged[i])
        assert float(alone.last_return) == float(res.last_return[i])
        for a, b in zip(jax.tree.leaves(alone.params), jax.tree.leaves(res.params)):
            # Batched matmuls are not bitwise equal to unbatched ones (measured: up to ~1e-5 apart
            # after thousands of steps); the trajectory itself (steps, episodes) must be identical.
            np.testing.assert_allclose(a, b[i], rtol=1e-4, atol=1e-4)


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
