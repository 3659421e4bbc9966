"""Tabular Q-learning and SARSA: the TD update by hand (each algorithm's bootstrap, the count bonus, the
cut at termination but not at truncation), the varied-HP rule, config errors, and Q-learning's
greedy policy reaching the optimum of Cliff-v0 after training."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from agent_checks import mean_returns, train_population

from synthenv.agents import q_learning, sarsa, tabular
from synthenv.environment import env_step
from synthenv.errors import UsageError
from synthenv.tasks.cliff import EnvState
from synthenv.tasks.real import make_task

Q = np.array([[0.0, 1.0], [2.0, -1.0], [0.5, 3.0], [-2.0, 4.0]], np.float32)
HP = tabular.HParams(alpha=jnp.float32(0.5), gamma=jnp.float32(0.9))
S, A, R, S2 = 1, 0, -1.0, 2  # the transition (obs, action, reward, next_obs)


def one_hot(i, n=4):
    return jax.nn.one_hot(i, n, dtype=jnp.float32)


def update(config, next_action=0, td_done=0.0, counts=None, q=Q):
    counts = jnp.zeros_like(q) if counts is None else counts
    return tabular.td_update(config, HP, jnp.asarray(q), counts, one_hot(S), A, jnp.float32(R), one_hot(S2),
                             next_action, jnp.float32(td_done))


def changed_only_at(new_q, s, a, value):
    expected = Q.copy()
    expected[s, a] = value
    np.testing.assert_allclose(np.asarray(new_q), expected, rtol=1e-6)


def test_q_learning_update_by_hand():
    q, counts, td = update(q_learning.resolve("small"), next_action=0)
    target = R + 0.9 * max(Q[S2])  # max over next actions: 3.0, whatever action comes next
    assert float(td) == pytest.approx(target - Q[S, A])
    changed_only_at(q, S, A, Q[S, A] + 0.5 * (target - Q[S, A]))
    expected_counts = np.zeros_like(Q)
    expected_counts[S, A] = 1.0  # one visit of (S, A)
    np.testing.assert_array_equal(np.asarray(counts), expected_counts)


def test_sarsa_update_uses_the_next_action_taken():
    config = sarsa.resolve("small")
    for next_action in (0, 1):
        q, _, _ = update(config, next_action=next_action)
        target = R + 0.9 * Q[S2, next_action]
        changed_only_at(q, S, A, Q[S, A] + 0.5 * (target - Q[S, A]))


def test_count_bonus_by_hand():
    config = q_learning.resolve("small", count_bonus=2.0)
    counts = jnp.zeros_like(jnp.asarray(Q)).at[S, A].set(3.0)  # (S, A) seen 3 times before: n = 4
    q, new_counts, _ = update(config, counts=counts)
    assert float(new_counts[S, A]) == 4.0 and float(jnp.sum(new_counts)) == 4.0
    target = R + 2.0 / np.sqrt(4.0) + 0.9 * max(Q[S2])
    changed_only_at(q, S, A, Q[S, A] + 0.5 * (target - Q[S, A]))


def test_td_done_cuts_the_bootstrap_truncation_does_not():
    """On the real Cliff-v0: a fall ends the episode (td_done 1, target = reward); the step at the cap
    truncates (td_done 0, the target bootstraps from the true next cell)."""
    task = make_task("Cliff-v0")
    params = task.default_params
    config = q_learning.resolve("small")
    q48 = jax.random.normal(jax.random.PRNGKey(0), (48, 4))
    hp = tabular.HParams(alpha=jnp.float32(1.0), gamma=jnp.float32(0.9))

    def step(pos, time, action):
        state = EnvState(time=jnp.int32(time), pos=jnp.int32(pos))
        tr = env_step(task, jax.random.PRNGKey(1), state, jnp.int32(action), params)
        obs = one_hot(pos, 48)
        q, _, _ = tabular.td_update(config, hp, q48, jnp.zeros_like(q48), obs, action, tr.reward, tr.next_obs,
                                    0, tr.td_done)
        return tr, float(q[pos, action])

    tr, value = step(pos=36, time=0, action=1)  # start -> right: into the cliff
    assert bool(tr.terminated) and float(tr.td_done) == 1.0
    assert value == pytest.approx(-100.0)
    tr, value = step(pos=0, time=49, action=1)  # (0, 0) -> (0, 1) at the 50-step cap
    assert bool(tr.truncated) and not bool(tr.terminated) and float(tr.td_done) == 0.0
    assert value == pytest.approx(-1.0 + 0.9 * float(jnp.max(q48[1])), rel=1e-6)


def test_varied_hparams_are_uniform_in_0p1_1():
    config = q_learning.resolve("small")
    hps = jax.vmap(lambda k: q_learning.sample_hparams(k, config, True))(jax.random.split(jax.random.PRNGKey(0), 500))
    for x in hps:
        x = np.asarray(x)
        assert x.min() >= 0.1 and x.max() <= 1.0 and x.min() < 0.15 and x.max() > 0.95
    fixed = q_learning.sample_hparams(jax.random.PRNGKey(0), config, False)
    assert float(fixed.alpha) == config.alpha and float(fixed.gamma) == pytest.approx(config.gamma)


@pytest.mark.parametrize("overrides, match", [(dict(algorithm="td"), "unknown tabular algorithm 'td'"),
                                              (dict(alpha=0.0), "invalid q_learning setting alpha=0.0"),
                                              (dict(count_bonus=-1.0), "setting count_bonus=-1.0")])
def test_invalid_config_is_one_line(overrides, match):
    with pytest.raises(UsageError, match=match) as err:
        q_learning.resolve("small", **overrides).validate()
    assert "\n" not in str(err.value)


def test_q_learning_reaches_the_optimum_on_cliff():
    pop = train_population(q_learning, q_learning.resolve("small", max_steps=5000), "Cliff-v0", n=3, seed=3)
    assert not np.any(pop.result.diverged)
    np.testing.assert_array_equal(mean_returns(pop, pop.result.params, episodes=2), -12.0)
