"""SAC (discrete and continuous) on real tasks: it learns CartPole-v0 and Pendulum-v1 within small
budgets, a vmapped varied-HP population on an SE stops per agent with stopped agents frozen, and the
tanh-Gaussian log-density is right."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synthenv.agents import masked_mlp, sac
from synthenv.agents.registry import check_supports
from synthenv.errors import UsageError
from synthenv.evaluation import make_evaluate
from synthenv.proxies.se import SEConfig, SyntheticEnv
from synthenv.training_env import RealEnv
from synthenv.tasks.registry import make_task

TEST_EPISODES = 10


def train_and_score(env_id: str, cfg: sac.SACConfig, n_agents: int, seed: int):
    """Train ``n_agents`` in one vmap with the real-task threshold rule; greedy test returns of the
    trained agents and of the same actor networks untrained (per agent, mean over episodes)."""
    task = make_task(env_id)
    env = RealEnv(task)
    shapes = sac.max_shapes(cfg, vary=False)
    train = sac.make_train(cfg, env, shapes, stop_rule="threshold", threshold=task.spec.solved_threshold)
    hp = sac.sample_hparams(jax.random.PRNGKey(0), cfg, vary=False)
    keys = jax.random.split(jax.random.PRNGKey(seed), n_agents)
    res = jax.device_get(jax.jit(jax.vmap(lambda k: train(k, None, hp)))(keys))

    evaluate = make_evaluate(task, sac.make_policy(cfg), TEST_EPISODES)
    evaluate_pop = jax.jit(jax.vmap(lambda k, p: evaluate(k, p, hp)[0].mean()))
    eval_keys = jax.random.split(jax.random.PRNGKey(77), n_agents)
    trained = np.asarray(evaluate_pop(eval_keys, res.params))

    out = 2 * task.action_dim if task.continuous else task.n_actions
    shape = masked_mlp.MLPShape(jnp.int32(cfg.hidden), jnp.int32(cfg.layers))
    actor = jax.vmap(lambda k: masked_mlp.init_params(k, task.obs_dim, out, shapes.hidden, shapes.layers,
                                                      shape))(keys)
    high = jnp.full((n_agents,), task.action_high, jnp.float32) if task.continuous else None
    untrained = np.asarray(evaluate_pop(eval_keys, sac.Params(actor, None, None, high)))
    return res, trained, untrained


def test_discrete_sac_learns_cartpole():
    cfg = sac.resolve("small", max_steps=8000)
    res, trained, untrained = train_and_score("CartPole-v0", cfg, n_agents=3, seed=2024)
    assert not np.any(res.diverged)
    assert np.all(res.steps <= cfg.max_steps)
    assert trained.mean() >= 150.0 and trained.min() >= 100.0, (trained, res.steps)
    assert untrained.mean() < 60.0, untrained


def test_continuous_sac_learns_pendulum():
    cfg = sac.resolve("small", max_steps=10000)
    res, trained, untrained = train_and_score("Pendulum-v1", cfg, n_agents=2, seed=2024)
    assert not np.any(res.diverged)
    assert np.all(res.steps <= cfg.max_steps)
    # Returns lie in about [-1700, 0]; a policy that swings up and balances from most starts scores
    # above -400, untrained ones spin or hang and score far below.
    assert trained.mean() >= -400.0 and trained.min() >= -600.0, (trained, res.steps)
    assert untrained.mean() < -900.0, untrained
    assert res.params.action_high.tolist() == [2.0, 2.0]


def test_varied_population_on_an_se_stops_per_agent_and_frozen():
    """Varied HPs in one vmap on an SE (env params traced) with the paper's convergence rule. The
    first member to stop gets the same result next to partners that run longer, so it was not
    changed while they ran on (a member trained alone differs by float rounding of batched matmuls,
    which a stochastic policy turns into a different trajectory)."""
    se = SyntheticEnv(make_task("CartPole-v0"), SEConfig(hidden=8))
    cfg = sac.resolve("small", hidden=16, batch_size=32, proxy_max_steps=1000, init_episodes=1)
    shapes = sac.max_shapes(cfg, vary=True)
    assert (shapes.hidden, shapes.layers, shapes.batch_size) == (48, 3, 96)
    train = jax.jit(jax.vmap(sac.make_train(cfg, se, shapes, stop_rule="converged"), in_axes=(0, None, 0)))
    se_params = se.init(jax.random.PRNGKey(0))
    hps = jax.vmap(lambda k: sac.sample_hparams(k, cfg, vary=True))(jax.random.split(jax.random.PRNGKey(3), 4))
    keys = jax.random.split(jax.random.PRNGKey(11), 4)
    res = jax.device_get(train(keys, se_params, hps))

    assert len(set(np.asarray(hps.hidden).tolist())) > 1 and len(set(np.asarray(hps.layers).tolist())) > 1
    assert len(set(res.steps.tolist())) > 1, res.steps
    assert np.all(res.steps <= cfg.proxy_max_steps) and not np.any(res.diverged)
    assert res.params.action_high is None

    first = int(np.argmin(res.steps))
    partners = jax.random.split(jax.random.PRNGKey(12), 4)
    keys2 = partners.at[first].set(keys[first])
    res2 = jax.device_get(train(keys2, se_params, hps))
    # Partners ran on after the first member stopped, for different numbers of loop chunks.
    assert min(res.steps.max(), res2.steps.max()) > res.steps[first], (res.steps, res2.steps)
    assert -(-res.steps.max() // cfg.chunk_steps) != -(-res2.steps.max() // cfg.chunk_steps)
    assert (res2.steps[first], res2.episodes[first]) == (res.steps[first], res.episodes[first])
    assert res2.last_return[first] == res.last_return[first]
    for a, b in zip(jax.tree.leaves(res.params), jax.tree.leaves(res2.params)):
        np.testing.assert_array_equal(a[first], b[first])
    action = sac.make_policy(cfg)(jax.tree.map(lambda x: x[first], res.params),
                                  jax.tree.map(lambda x: x[first], hps), jnp.zeros(4))
    assert action.dtype == jnp.int32 and action.shape == ()


def test_tanh_gaussian_log_prob_matches_change_of_variables():
    cfg = sac.resolve("small")
    hp = sac.sample_hparams(jax.random.PRNGKey(0), cfg, vary=False)
    shape = masked_mlp.MLPShape(hp.hidden, hp.layers)
    actor = masked_mlp.init_params(jax.random.PRNGKey(4), 3, 2, cfg.hidden, cfg.layers, shape)
    obs = jax.random.normal(jax.random.PRNGKey(5), (64, 3))
    weights, actions, log_pi = sac._policy(True, 2.0, cfg.activation)(actor, obs, hp, jax.random.PRNGKey(6))
    assert weights.shape == log_pi.shape == (64, 1) and actions.shape == (64, 1, 1)
    mean, log_std = sac._gaussian(actor, obs, hp, cfg.activation)
    a = np.asarray(actions[:, 0, 0], np.float64) / 2.0
    x = np.arctanh(a)
    mu, sd = np.asarray(mean[:, 0], np.float64), np.exp(np.asarray(log_std[:, 0], np.float64))
    expected = (-0.5 * ((x - mu) / sd) ** 2 - np.log(sd) - 0.5 * math.log(2 * math.pi)
                - np.log(2.0 * (1 - a ** 2)))
    np.testing.assert_allclose(np.asarray(log_pi[:, 0]), expected, rtol=1e-3, atol=1e-3)
    assert np.all(np.abs(np.asarray(actions)) <= 2.0)


def test_config_errors_and_registry():
    with pytest.raises(UsageError, match="tau") as err:
        sac.resolve("small", tau=0.0).validate()
    assert "\n" not in str(err.value)
    with pytest.raises(UsageError, match="target_entropy_scale"):
        sac.resolve("small", target_entropy_scale=1.5).validate()
    with pytest.raises(UsageError, match="small, tiny, standard"):
        sac.resolve("nope")
    assert check_supports("sac", True, "Pendulum-v1") is sac
    assert check_supports("sac", False, "CartPole-v0") is sac
    hp = sac.sample_hparams(jax.random.PRNGKey(0), sac.PRESETS["small"], vary=False)
    assert float(hp.lr) == pytest.approx(1e-3) and int(hp.hidden) == 32 and int(hp.layers) == 2
