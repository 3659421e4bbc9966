"""The Gymnasium reward wrapper of a learned RN (``synthenv.adapters.reward_wrapper``): its rewards
equal the JAX network's for all four variants over a whole episode (terminal step included) and for
the info-reading RNs over a HalfCheetah-v5 episode, the env's reward travels in ``info``, the wrapped
env passes Gymnasium's checker, and Stable-Baselines3 trains on it."""

from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium
import jax
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import synthenv
from synthenv.adapters.reward_wrapper import RNRewardWrapper, make_reward_wrapper
from synthenv.errors import UsageError
from synthenv.proxies.files import save_proxy
from synthenv.proxies.rn import LINEAR_INFO, VARIANTS, RewardNetEnv, RNConfig
from synthenv.tasks.real import make_task
from synthenv.tasks.registry import get_spec

SE_MODEL = Path(__file__).resolve().parents[1] / "models" / "cartpole-v0-invariant.safetensors"
RN_MODEL = Path(__file__).resolve().parents[1] / "models" / "cartpole-v0-rn.safetensors"
pytestmark = pytest.mark.filterwarnings("ignore:.*CartPole-v0 is out of date")


def saved_rn(tmp_path, variant, name="rn", **config):
    """A freshly initialised CartPole-v0 RN, saved and loaded back as users get it."""
    env = RewardNetEnv(make_task("CartPole-v0"), RNConfig(variant=variant, hidden=8, **config))
    path = tmp_path / f"{name}-{variant}.safetensors"
    save_proxy(path, env, env.init(jax.random.key(0)), {}, generation=0, score=0.0)
    return synthenv.load(path)


def cartpole():
    return gymnasium.make("CartPole-v0")


def expected_reward(rn, prev_obs, obs, real_reward, terminated):
    """The reward by hand from ``RewardNetEnv.potential`` (JAX) on the two observations."""
    env, c = rn.env, rn.config
    out_prev = float(env.potential(rn.weights, np.asarray(prev_obs, np.float32)))
    out_next = float(env.potential(rn.weights, np.asarray(obs, np.float32)))
    if c.potential:
        phi_next = 0.0 if (terminated and c.terminal_potential_zero) else out_next
        learned = c.gamma * phi_next - out_prev
    else:
        learned = out_next
    return real_reward + learned if c.additive else learned


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != LINEAR_INFO])
def test_rewards_match_the_jax_network_over_an_episode(tmp_path, variant):
    rn = saved_rn(tmp_path, variant)
    wrapped = rn.as_gymnasium_wrapper(cartpole())
    real = cartpole()
    obs, _ = wrapped.reset(seed=3)
    real_obs, _ = real.reset(seed=3)
    np.testing.assert_array_equal(obs, real_obs)  # observations pass through unchanged
    rng = np.random.default_rng(0)
    terminated = truncated = False
    steps = 0
    while not (terminated or truncated):
        action = int(rng.integers(2))
        next_obs, reward, terminated, truncated, info = wrapped.step(action)
        real_next, real_reward, real_term, real_trunc, _ = real.step(action)
        np.testing.assert_array_equal(next_obs, real_next)
        assert (terminated, truncated) == (real_term, real_trunc)
        assert info["real_reward"] == real_reward == 1.0
        assert not info["bad"]
        assert isinstance(reward, float)
        assert reward == pytest.approx(expected_reward(rn, obs, next_obs, real_reward, terminated), abs=1e-5)
        obs, steps = next_obs, steps + 1
    assert terminated and steps < 200  # random actions drop the pole: the terminal step was checked


@pytest.mark.parametrize("variant", ["additive-potential", LINEAR_INFO])
def test_info_rewards_match_the_jax_network_on_half_cheetah(tmp_path, variant):
    """An RN "+ info" and linear-info on Gymnasium's own HalfCheetah-v5 (its step info gives the info
    vector): each step's reward is what the JAX RN gives on the same transition."""
    pytest.importorskip("mujoco")
    env = RewardNetEnv(make_task("HalfCheetah-v5"),
                       RNConfig(variant=variant, hidden=8, info=variant != LINEAR_INFO))  # implied for linear-info
    weights = env.init(jax.random.key(0))
    if variant == LINEAR_INFO:  # not the initial w = 1, b = 0 (the real reward)
        weights = {"reward_net": {"out": {"kernel": np.array([[0.7], [-1.3]], np.float32),
                                          "bias": np.array([0.2], np.float32)}}}
    path = tmp_path / "rn.safetensors"
    save_proxy(path, env, weights, {}, generation=0, score=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapped = synthenv.load(path).as_gymnasium_wrapper(gymnasium.make("HalfCheetah-v5", max_episode_steps=25))
    jax_reward = jax.jit(env.transition_reward)
    obs, _ = wrapped.reset(seed=0)
    info_prev = np.zeros(2, np.float32)  # a first state's info vector
    rng = np.random.default_rng(0)
    truncated, steps = False, 0
    while not truncated:
        next_obs, reward, terminated, truncated, info = wrapped.step(rng.uniform(-1, 1, 6).astype(np.float32))
        info_next = np.array([info["reward_forward"], info["reward_ctrl"]], np.float32)
        assert info["reward_forward"] + info["reward_ctrl"] == pytest.approx(info["real_reward"])
        expected, bad = jax_reward(weights, obs.astype(np.float32), info_prev, next_obs.astype(np.float32),
                                   info_next, np.float32(info["real_reward"]), terminated)
        assert not info["bad"] and not bool(bad)
        assert reward == pytest.approx(float(expected), rel=1e-5, abs=1e-5)
        obs, info_prev, steps = next_obs, info_next, steps + 1
    assert steps == 25 and not terminated


def test_info_inputs_refusals():
    """No info vector for the task: refused on construction; an env whose step info lacks an entry of
    it: refused on the step."""
    spec = get_spec("HalfCheetah-v5")
    weights = {"reward_net": {"out": {"kernel": np.ones((2, 1), np.float32), "bias": np.zeros(1, np.float32)}}}
    with pytest.raises(UsageError, match="CartPole-v0 has none .tasks with one: HalfCheetah-v5.$"):
        make_reward_wrapper(cartpole(), get_spec("CartPole-v0"), RNConfig(variant=LINEAR_INFO), weights)

    class NoInfo(gymnasium.Env):
        observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (17,), np.float64)
        action_space = gymnasium.spaces.Box(-1.0, 1.0, (6,), np.float32)

        def reset(self, *, seed=None, options=None):
            return np.zeros(17), {}

        def step(self, action):
            return np.zeros(17), 1.0, False, False, {"reward_forward": 1.0}

    wrapped = make_reward_wrapper(NoInfo(), spec, RNConfig(variant=LINEAR_INFO), weights)
    wrapped.reset()
    with pytest.raises(UsageError) as e:
        wrapped.step(np.zeros(6, np.float32))
    assert str(e.value) == ("the RN for HalfCheetah-v5 reads 'reward_ctrl' from the env's step info; this env's "
                            "info has 'reward_forward'")


def test_terminal_potential_is_zeroed_only_on_termination(tmp_path):
    rn_zero = saved_rn(tmp_path, "exclusive-potential")
    rn_raw = saved_rn(tmp_path, "exclusive-potential", name="raw", terminal_potential_zero=False)
    rewards = {}
    for name, rn in (("zero", rn_zero), ("raw", rn_raw)):
        wrapped = rn.as_gymnasium_wrapper(cartpole())
        wrapped.reset(seed=1)
        out = []
        done = False
        while not done:
            _, reward, terminated, truncated, _ = wrapped.step(1)  # always push right: falls quickly
            out.append(reward)
            done = terminated or truncated
        assert terminated
        rewards[name] = out
    np.testing.assert_allclose(rewards["zero"][:-1], rewards["raw"][:-1], atol=1e-6)
    assert rewards["zero"][-1] != pytest.approx(rewards["raw"][-1], abs=1e-6)


def test_gymnasium_env_checker_passes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = RewardNetEnv(make_task("CartPole-v0"), RNConfig(hidden=8))
        wrapped = make_reward_wrapper(cartpole(), env.spec, env.config,
                                      jax.tree.map(np.asarray, env.init(jax.random.key(1))))
        assert isinstance(wrapped, RNRewardWrapper)
        check_env(wrapped, skip_render_check=True)


def test_refusals(tmp_path):
    rn = saved_rn(tmp_path, "additive")
    with pytest.raises(UsageError, match="shape"):
        rn.as_gymnasium_wrapper(gymnasium.make("Acrobot-v1"))
    wrapped = rn.as_gymnasium_wrapper(cartpole())
    with pytest.raises(gymnasium.error.ResetNeeded):
        wrapped.step(0)
    with pytest.raises(UsageError, match="reward networks"):
        synthenv.load(SE_MODEL).as_gymnasium_wrapper(cartpole())


def test_sb3_dqn_learns_cartpole_with_the_shipped_rn_and_not_without():
    """SB3's DQN with its default settings, 3,000 real steps: the shipped RN's reward teaches it the task;
    the task's own reward does not (yet) at that budget."""
    from stable_baselines3 import DQN

    from synthenv.adapters.rollouts import greedy_returns

    rn = synthenv.load(RN_MODEL)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small-batch updates are far slower with 2 threads on a busy 2-core machine
    try:
        scores = {}
        for name, env in (("rn", rn.as_gymnasium_wrapper(cartpole())), ("real", cartpole())):
            model = DQN("MlpPolicy", env, seed=0)
            model.learn(total_timesteps=3000)
            scores[name] = float(np.mean(greedy_returns(cartpole(), model, 5)))
    finally:
        torch.set_num_threads(threads)
    assert scores["rn"] >= 195 and scores["real"] < 100, scores
