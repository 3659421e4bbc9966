"""PPO: learns real CartPole-v0 (discrete) and Pendulum-v1 (continuous), varied-HP populations stop
per agent with stopped agents frozen, masked minibatches are exact, configs are validated."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synthenv.agents import ppo
from synthenv.agents.registry import check_supports
from synthenv.errors import UsageError
from synthenv.proxies.se import SEConfig, SyntheticEnv
from synthenv.tasks.real import make_task

N_AGENTS = 4
TEST_EPISODES = 10


def test_continuous_policy_stays_in_bounds():
    env = make_task("Pendulum-v1")
    cfg = ppo.resolve("small")
    shapes = ppo.max_shapes(cfg, vary=False)
    hp = ppo.sample_hparams(jax.random.PRNGKey(0), cfg, vary=False)
    params = ppo.policy_params(ppo.init_params(jax.random.PRNGKey(0), env.info, shapes, hp, cfg), env.info)
    params = {**params, "actor": {**params["actor"], "b_out": jnp.array([50.0])}}  # mean far outside
    action = ppo.make_policy(cfg)(params, hp, jnp.ones(3))
    assert action.shape == (1,) and float(action[0]) == 2.0


@pytest.fixture(scope="module")
def se_population():
    """Varied-HP agents on a random CartPole SE with the paper's convergence stop, in one vmap. The
    random SE never ends an episode before the 200-step cap, so a 3-episode window lets the rule fire."""
    cfg = ppo.resolve("small", proxy_max_steps=3000, stop_window=3)
    se = SyntheticEnv(make_task("CartPole-v0"), SEConfig(hidden=16))
    se_params = se.params_for(se.init(jax.random.PRNGKey(1)))
    shapes = ppo.max_shapes(cfg, vary=True)
    train = ppo.make_train(cfg, se, shapes, stop_rule="converged")
    keys = jax.random.split(jax.random.PRNGKey(11), N_AGENTS)
    hps = jax.vmap(lambda k: ppo.sample_hparams(k, cfg, vary=True))(jax.random.split(jax.random.PRNGKey(12), N_AGENTS))
    res = jax.device_get(jax.jit(jax.vmap(lambda k, hp: train(k, se_params, hp)))(keys, hps))
    return dict(cfg=cfg, train=train, se_params=se_params, keys=keys, hps=hps, res=res)


def test_varied_population_stops_per_agent(se_population):
    res, cfg, hps = se_population["res"], se_population["cfg"], se_population["hps"]
    assert len(set(np.asarray(hps.minibatch_size).tolist())) > 1 and len(set(np.asarray(hps.hidden).tolist())) > 1
    assert not np.any(res.diverged)
    assert np.all(res.steps <= cfg.proxy_max_steps)
    assert len(set(res.steps.tolist())) > 1, res.steps  # they stopped at different times
    assert np.any(res.steps < cfg.proxy_max_steps), res.steps  # the convergence rule fired for some


def test_masked_minibatches_equal_unmasked():
    """A minibatch size of 32 inside max shapes (96 rows, 12 minibatches) trains exactly as without masking."""
    cfg = ppo.resolve("small", max_steps=400)
    env = make_task("CartPole-v0")
    hp = ppo.sample_hparams(jax.random.PRNGKey(0), cfg, vary=False)
    exact = ppo.max_shapes(cfg, vary=False)
    masked = ppo.Shapes(exact.hidden, exact.layers, minibatch_size=96, minibatches=12)
    results = [jax.device_get(jax.jit(ppo.make_train(cfg, env, s, stop_rule="threshold", threshold=1e9))(
        jax.random.PRNGKey(4), None, hp)) for s in (exact, masked)]
    assert int(results[0].steps) == int(results[1].steps) == cfg.max_steps
    for a, b in zip(jax.tree.leaves(results[0].params), jax.tree.leaves(results[1].params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_max_shapes_cover_varied_draws():
    cfg = ppo.resolve("default")
    shapes = ppo.max_shapes(cfg, vary=True)
    hps = jax.vmap(lambda k: ppo.sample_hparams(k, cfg, vary=True))(jax.random.split(jax.random.PRNGKey(0), 1000))
    mb = np.asarray(hps.minibatch_size)
    assert mb.max() <= shapes.minibatch_size <= cfg.rollout_steps
    assert cfg.rollout_steps // mb.min() <= shapes.minibatches
    assert np.asarray(hps.hidden).max() <= shapes.hidden and np.asarray(hps.layers).max() <= shapes.layers


def test_validate_and_resolve():
    with pytest.raises(UsageError, match="minibatch_size") as err:
        ppo.resolve("small", minibatch_size=1000).validate()
    assert "\n" not in str(err.value)
    with pytest.raises(UsageError, match="clip_eps"):
        ppo.resolve("small", clip_eps=0.0).validate()
    with pytest.raises(UsageError, match="known presets: default, continuous, small, tiny"):
        ppo.resolve("nope")
    assert check_supports("ppo", True, "Pendulum-v1") is ppo
    assert check_supports("ppo", False, "CartPole-v0") is ppo


def test_gae_bootstraps_truncation_not_termination():
    """Three steps: a truncated episode end, a terminated one, then a step cut off by the rollout."""
    reward = jnp.array([1.0, 1.0, 1.0])
    v, v_next = jnp.array([0.5, 0.5, 0.5]), jnp.array([2.0, 3.0, 4.0])
    td_done = jnp.array([0.0, 1.0, 0.0])  # step 0 truncated (bootstrap), step 1 terminated
    ep_end = jnp.array([True, True, False])
    gamma, lam = 0.9, 0.5
    adv = np.asarray(ppo.gae(reward, v, v_next, td_done, ep_end, gamma, lam))
    expected = [1.0 + gamma * 2.0 - 0.5,  # truncation: V(final obs) bootstrapped, nothing from step 1
                1.0 - 0.5,  # termination: no bootstrap
                1.0 + gamma * 4.0 - 0.5]  # rollout end: bootstrap, no later advantage
    np.testing.assert_allclose(adv, expected, rtol=1e-6)
    # Two steps of one episode chain through lambda.
    adv2 = np.asarray(ppo.gae(reward[:2], v[:2], v_next[:2], jnp.zeros(2), jnp.array([False, False]), gamma, lam))
    d = 1.0 + gamma * v_next[:2] - v[:2]
    np.testing.assert_allclose(adv2, [d[0] + gamma * lam * d[1], d[1]], rtol=1e-6)
