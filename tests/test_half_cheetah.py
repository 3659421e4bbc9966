"""HalfCheetah-v5 stepped on the host: Gymnasium's dynamics and reward, batched under vmap, an agent
and an RN running on it end to end, and the RNs that read its info vector (linear-info at its start,
model files)."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest

pytest.importorskip("mujoco")
import gymnasium  # noqa: E402

from synthenv.tasks.real import make_task  # noqa: E402


def gymnasium_cheetah():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gymnasium.make("HalfCheetah-v5")


def test_a_trajectory_matches_gymnasiums():
    task = make_task("HalfCheetah-v5")
    obs, state = task.reset(jax.random.key(0), task.default_params)
    env = gymnasium_cheetah()
    env.reset(seed=0)
    env.unwrapped.set_state(np.asarray(state.qpos, np.float64), np.asarray(state.qvel, np.float64))
    np.testing.assert_allclose(np.asarray(obs), env.unwrapped._get_obs(), atol=1e-6)
    step = jax.jit(task.step)
    rng = np.random.default_rng(0)
    for t in range(10):
        a = rng.uniform(-1, 1, 6).astype(np.float32)
        obs, state, reward, terminated, truncated, _ = step(jax.random.key(t), state, a, task.default_params)
        obs_g, reward_g, *_ = env.step(a)
        np.testing.assert_allclose(np.asarray(obs), obs_g, atol=1e-3)  # float32 state between steps
        assert float(reward) == pytest.approx(reward_g, abs=1e-3)
        assert not bool(terminated) and not bool(truncated)
    # The first states: positions within the reset noise, velocities around 0.
    assert np.all(np.abs(np.asarray(make_task("HalfCheetah-v5").reset(jax.random.key(5))[1].qpos)) <= 0.1)


def test_a_vmapped_batch_steps_each_member_as_alone():
    task = make_task("HalfCheetah-v5")
    keys = jax.random.split(jax.random.key(1), 3)
    _, states = jax.vmap(task.reset, in_axes=(0, None))(keys, task.default_params)
    actions = jax.random.uniform(jax.random.key(2), (3, 6), minval=-1, maxval=1)
    step = jax.jit(jax.vmap(task.step, in_axes=(0, 0, 0, None)))
    obs_b, _, reward_b, *_ = step(keys, states, actions, task.default_params)
    for i in range(3):
        state_i = jax.tree.map(lambda x: x[i], states)
        obs_i, _, reward_i, *_ = jax.jit(task.step)(keys[i], state_i, actions[i], task.default_params)
        np.testing.assert_array_equal(np.asarray(obs_b[i]), np.asarray(obs_i))
        assert float(reward_b[i]) == float(reward_i)


def test_an_rn_generation_runs_on_the_host_task():
    from synthenv.meta.learner import learn
    from synthenv.meta.rn_config import make_rn_config

    config = make_rn_config("HalfCheetah-v5", variant="additive", objective="final", generations=1,
                            max_episodes=1, es={"population": 2}, window=1)
    _, records = learn(config)
    assert records[0].real_env_steps_generation == (2 * 2 + 2) * 2 * 1000  # 6 agents, 1 episode + 1 test
    assert np.isfinite(records[0].score_unperturbed)


def test_linear_info_starts_at_the_real_reward():
    """The info vector (reward_forward, reward_ctrl) sums to the reward, so linear-info's initial
    w = 1, b = 0 gives the real reward on every step."""
    from synthenv.proxies.rn import RewardNetEnv, RNConfig

    env = RewardNetEnv(make_task("HalfCheetah-v5"), RNConfig(variant="linear-info"))
    env = env.bind(env.init(jax.random.key(0)))
    _, state = env.reset(jax.random.key(1))
    step = jax.jit(env.step)
    rng = np.random.default_rng(0)
    for t in range(5):
        _, state, reward, _, _, info = step(jax.random.key(t), state, rng.uniform(-1, 1, 6).astype(np.float32))
        assert set(env.spec.info_keys) <= set(info)
        assert float(reward) == pytest.approx(float(info["real_reward"]), rel=1e-6, abs=1e-6)
        assert float(info["reward_ctrl"]) < 0  # minus the control cost, as in Gymnasium's info
        np.testing.assert_array_equal(np.asarray(state.info), [info["reward_forward"], info["reward_ctrl"]])


def test_an_info_rn_file_round_trip(tmp_path):
    import synthenv
    from synthenv.proxies.files import save_proxy
    from synthenv.proxies.rn import RewardNetEnv, RNConfig

    task = make_task("HalfCheetah-v5")
    x = jax.random.normal(jax.random.key(2), (4, 17))
    info = jax.random.normal(jax.random.key(3), (4, 2))
    for config in (RNConfig(variant="exclusive-potential", hidden=8, info=True), RNConfig(variant="linear-info")):
        env = RewardNetEnv(task, config)
        weights = env.init(jax.random.key(1))
        path = tmp_path / f"{config.variant}.safetensors"
        save_proxy(path, env, weights, {}, generation=0, score=0.0)
        loaded = synthenv.load(path)
        assert loaded.config == config and loaded.config.reads_info
        assert loaded.metadata["architecture"]["info"] == config.info
        np.testing.assert_array_equal(np.asarray(loaded.env.potential(loaded.weights, x, info)),
                                      np.asarray(env.potential(weights, x, info)))
