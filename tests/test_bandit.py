"""The synthetic contextual bandit (``synthenv.proxies.bandit``): one-step episodes from a learned
state generator, a learned reward, and fresh agents of any algorithm learning the rule its reward
encodes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import synthenv
from synthenv.agents.ddqn import DDQNConfig
from synthenv.environment import env_step
from synthenv.errors import UsageError
from synthenv.experiments.evaluate import evaluate_agents, with_budget
from synthenv.proxies.bandit import BanditConfig, SyntheticBandit
from synthenv.proxies.files import save_proxy
from synthenv.tasks.real import make_task

RULE = np.array([0.0, 0.3, 1.0, 1.0])
"""Push right when theta + theta_dot + 0.3 x_dot > 0: this rule balances CartPole-v1 for 500 steps."""
SPREAD = np.array([1.0, 1.0, 0.15, 1.0])
"""The hand-made generator's standard deviation per state dimension (x, x_dot, theta, theta_dot)."""


def hand_made_weights(hidden: int = 32) -> dict:
    """A bandit whose generator is ``SPREAD * z`` and whose reward is ``relu(5 u)`` for pushing right
    and ``relu(-5 u)`` for pushing left, ``u = RULE . s``: exact with ReLU units (two per sign)."""
    d, big = 4, 100.0
    gen_in, gen_out = np.zeros((d, hidden)), np.zeros((hidden, d))
    for i in range(d):
        gen_in[i, i], gen_in[i, d + i] = 1.0, -1.0
        gen_out[i, i], gen_out[d + i, i] = SPREAD[i], -SPREAD[i]
    rew_in, rew_bias = np.zeros((2 + d, hidden)), np.zeros(hidden)
    rew_in[2:, 0], rew_in[1, 0], rew_bias[0] = 5 * RULE, big, -big  # right: relu(5u) (0 when pushing left)
    rew_in[2:, 1], rew_in[0, 1], rew_bias[1] = -5 * RULE, big, -big  # left: relu(-5u)
    rew_out = np.zeros((hidden, 1))
    rew_out[:2, 0] = 1.0
    f = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    return {"state_gen": {"hidden_0": {"kernel": f(gen_in), "bias": f(np.zeros(hidden))},
                          "out": {"kernel": f(gen_out), "bias": f(np.zeros(d))}},
            "reward_net": {"hidden_0": {"kernel": f(rew_in), "bias": f(rew_bias)},
                           "out": {"kernel": f(rew_out), "bias": f(np.zeros(1))}}}


def test_hand_made_weights_fit_the_architecture():
    env = SyntheticBandit(make_task("CartPole-v1"))
    fresh = env.init(jax.random.key(0))
    assert jax.tree.map(jnp.shape, fresh) == jax.tree.map(jnp.shape, hand_made_weights())


def test_every_episode_is_one_terminated_step_from_the_generator():
    env = SyntheticBandit(make_task("CartPole-v1"))
    env = env.bind(env.init(jax.random.key(1)))
    weights = env.weights

    def one(key):
        k_reset, k_act, k_step = jax.random.split(key, 3)
        obs, state = env.reset(k_reset)
        action = jax.random.randint(k_act, (), 0, 2)
        return obs, action, env_step(env, k_step, state, action, env.default_params)

    keys = jax.random.split(jax.random.key(2), 256)
    obs, action, tr = jax.jit(jax.vmap(one))(keys)
    # The first state is the generator's image of a standard normal latent drawn from the reset key.
    z = jax.vmap(lambda k: jax.random.normal(jax.random.split(k, 3)[0], (4,)))(keys)
    np.testing.assert_allclose(obs, jax.vmap(lambda z: env.start_state(weights, z))(z), rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(tr.terminated)) and not np.any(np.asarray(tr.truncated))
    np.testing.assert_array_equal(tr.td_done, 1.0)  # nothing bootstraps past the step
    np.testing.assert_allclose(tr.reward, jax.vmap(lambda o, a: env.reward(weights, o, a))(obs, action),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(tr.next_obs, obs)  # the step's own observation, before the auto-reset
    assert not np.allclose(tr.obs, obs)  # then a new episode from a new latent
    assert float(jnp.std(obs)) > 0.01 and not np.any(np.asarray(tr.bad))


def test_non_finite_weights_are_reported_not_propagated():
    env = SyntheticBandit(make_task("CartPole-v0"))
    weights = env.init(jax.random.key(3))
    weights["state_gen"]["out"]["bias"] = weights["state_gen"]["out"]["bias"].at[0].set(jnp.inf)
    env = env.bind(weights)
    obs, state = env.reset(jax.random.key(4))
    tr = env_step(env, jax.random.key(5), state, 1, env.default_params)
    assert np.all(np.isfinite(obs)) and bool(tr.bad) and float(tr.reward) == 0.0


def test_rejects_continuous_tasks_and_bad_architectures():
    with pytest.raises(UsageError, match="continuous"):
        SyntheticBandit(make_task("Pendulum-v1"))
    with pytest.raises(UsageError, match="activation"):
        SyntheticBandit(make_task("CartPole-v0"), BanditConfig(activation="sigmoid"))


@pytest.fixture(scope="module")
def hand_made_file(tmp_path_factory):
    env = SyntheticBandit(make_task("CartPole-v1"))
    path = tmp_path_factory.mktemp("bandit") / "rule.safetensors"
    training = {"agent": {"proxy_min_steps": 1000, "proxy_max_steps": 1000, "max_episodes": 1000}}
    save_proxy(path, env, hand_made_weights(), training, generation=0, score=0.0)
    return path


def test_file_round_trip_and_kind(hand_made_file):
    loaded = synthenv.load(hand_made_file)
    assert loaded.kind.name == "bandit" and loaded.kind.stop_rule == "budget"
    assert isinstance(loaded.as_gymnax(), SyntheticBandit)
    np.testing.assert_array_equal(loaded.weights["reward_net"]["hidden_0"]["bias"],
                                  hand_made_weights()["reward_net"]["hidden_0"]["bias"])


@pytest.mark.parametrize("agent, steps, budget", [("ddqn", 1500, 1500), ("ppo", None, 40_000)])
def test_fresh_agents_learn_the_rule_and_balance_the_real_task(hand_made_file, agent, steps, budget):
    """Agents never see the real dynamics; they learn which action the reward prefers in which state,
    and that rule balances the real CartPole-v1. Each trains its budget in full (one-step episodes: no
    convergence test, no episode cap): the ``steps`` asked for, else for PPO the bandit kind's
    fresh-agent budget (longer than its own cap)."""
    r = evaluate_agents(proxy=hand_made_file, agent=agent, agents=2, episodes=2, seed=0, steps=steps)
    assert r["step_cap"] == budget and r["train_steps"] == [budget] * 2
    assert r["real_train_steps"] == [0] * 2 and r["curves"] == []
    assert r["mean_return"] >= 450.0, r["returns_per_agent"]


def test_fresh_agent_budget_takes_the_longer_cap_or_the_one_asked_for():
    config = DDQNConfig(proxy_max_steps=2000, proxy_min_steps=2000, max_steps=50_000)
    longer = with_budget(config, None, "budget", 10_000)
    assert (longer.proxy_max_steps, longer.proxy_min_steps, longer.max_steps) == (10_000, 2000, 50_000)
    assert with_budget(config, None, "budget", 1000) == config  # a kind's budget never shortens the agent's own
    assert with_budget(config, None, "budget", None) == config and with_budget(config, None, "threshold", 10_000) == config
    shorter = with_budget(config, 500, "converged")
    assert (shorter.proxy_max_steps, shorter.proxy_min_steps) == (500, 500)
    assert with_budget(config, 7000, "none").max_steps == 7000  # real dynamics: the real-env cap


def test_gymnasium_adapter_matches_the_jax_bandit(hand_made_file):
    from gymnasium.utils.env_checker import check_env

    loaded = synthenv.load(hand_made_file)
    env = loaded.as_gymnasium()
    check_env(env, skip_render_check=True)
    jax_env = loaded.as_gymnax()
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        assert obs.dtype == np.float32 and np.all(np.abs(obs / SPREAD) < 10)
        for action in (0, 1):
            expected = float(jax_env.reward(loaded.weights, jnp.asarray(obs), action))
            env.reset(seed=seed)
            again, reward, terminated, truncated, info = env.step(action)
            np.testing.assert_array_equal(again, obs)
            assert terminated and not truncated and not info["bad"]
            assert reward == pytest.approx(expected, rel=1e-5, abs=1e-6)
            assert (reward > 0) == ((action == 1) == (float(RULE @ obs) > 0))  # the hand-made rule
    vec = loaded.as_gymnasium_vector(3)
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (3, 4)


@pytest.mark.parametrize("seed", [21, 22])
def test_the_es_learns_a_bandit_that_teaches_balancing(seed):
    """From a random bandit (agents balance about 10 steps), 25 generations of the default ES make one
    on which fresh varied-HP DDQN agents, trained on it alone, balance the real CartPole-v0 at least
    three times as long (and 40 steps). Two seeds, neither picked."""
    from synthenv.meta.config import make_config
    from synthenv.meta.learner import learn

    config = make_config(env="CartPole-v0", proxy_kind="bandit", seed=seed, generations=15, stop_when_solved=False,
                         es={"population": 8}, unperturbed_agents=8, agents_per_member=1, confirm_agents=0,
                         restart_after=0)
    _, records = learn(config)
    scores = [r.score_unperturbed for r in records]
    assert max(scores[-5:]) >= max(40.0, 3 * scores[0]), [round(s) for s in scores]
