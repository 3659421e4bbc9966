"""Every environment kind agents train on (real tasks, SEs) through the same checks of the gymnax 1.x
protocol: spaces, shapes and dtypes, truncation is not termination, ``jit(vmap)`` over 1,024 envs,
and the same key gives the same trajectory."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import environment, spaces
from jax.flatten_util import ravel_pytree

import synthenv
from synthenv.environment import describe, env_step
from synthenv.proxies.se import SEConfig, SyntheticEnv
from synthenv.tasks.real import make_task

MODEL = Path(__file__).resolve().parents[1] / "models" / "cartpole-v0-invariant.safetensors"
N_ENVS, N_STEPS = 1024, 300


def _random_se(task_id: str):
    se = SyntheticEnv(make_task(task_id), SEConfig(hidden=8))
    return se.bind(se.init(jax.random.key(3)))


ENVS = {
    "real CartPole-v0": lambda: make_task("CartPole-v0"),
    "real Acrobot-v1": lambda: make_task("Acrobot-v1"),
    "real Pendulum-v1": lambda: make_task("Pendulum-v1"),
    "random SE Acrobot-v1": lambda: _random_se("Acrobot-v1"),
    "shipped SE CartPole-v0": lambda: synthenv.load(MODEL).as_gymnax(),
}


def _random_action(key, env, params):
    space = env.action_space(params)
    if isinstance(space, spaces.Discrete):
        return jax.random.randint(key, (), 0, space.n, jnp.int32)
    return jax.random.uniform(key, space.shape, jnp.float32, space.low, space.high)


def _rollout(env, params, key):
    """``N_ENVS`` envs for ``N_STEPS`` random steps under ``jit(vmap)``, with a step counter per env."""

    def one(key):
        k_reset, k_run = jax.random.split(key)
        obs, state = env.reset(k_reset, params)

        def body(c, k):
            obs, state, t = c
            k_act, k_step = jax.random.split(k)
            out = env.step(k_step, state, _random_action(k_act, env, params), params)
            n_obs, n_state, reward, terminated, truncated, info = out
            t = t + 1
            ended = terminated | truncated
            return (n_obs, n_state, jnp.where(ended, 0, t)), (n_obs, reward, terminated, truncated, t,
                                                               info["final_observation"])

        _, out = jax.lax.scan(body, (obs, state, jnp.int32(0)), jax.random.split(k_run, N_STEPS))
        return obs, out

    return jax.jit(jax.vmap(one))(jax.random.split(key, N_ENVS))


@pytest.fixture(scope="module", params=list(ENVS))
def case(request):
    env = ENVS[request.param]()
    params = env.default_params
    return request.param, env, params, jax.device_get(_rollout(env, params, jax.random.key(0)))


def test_is_a_gymnax_environment_with_task_spaces(case):
    _, env, params, _ = case
    assert isinstance(env, environment.Environment)
    info = describe(env, params)
    obs_space, act_space = env.observation_space(params), env.action_space(params)
    assert obs_space.shape == (env.spec.obs_dim,) and obs_space.dtype == jnp.float32
    assert info.obs_dim == env.spec.obs_dim and info.continuous == env.spec.continuous
    if env.spec.continuous:
        assert isinstance(act_space, spaces.Box) and act_space.shape == (env.spec.action_dim,)
    else:
        assert isinstance(act_space, spaces.Discrete) and act_space.n == env.spec.n_actions
    assert params.max_steps_in_episode == env.spec.max_steps


def test_gymnax_tuples_shapes_and_dtypes(case):
    _, env, _, (first_obs, (obs, reward, terminated, truncated, t, final_obs)) = case
    d = env.spec.obs_dim
    assert first_obs.shape == (N_ENVS, d) and first_obs.dtype == np.float32
    assert obs.shape == (N_ENVS, N_STEPS, d) and obs.dtype == np.float32
    assert final_obs.shape == obs.shape and final_obs.dtype == np.float32
    assert reward.shape == (N_ENVS, N_STEPS) and reward.dtype == np.float32
    assert terminated.dtype == np.bool_ and truncated.dtype == np.bool_
    assert np.all(np.isfinite(obs)) and np.all(np.isfinite(reward))


def test_episodes_end_by_termination_or_exactly_at_the_cap(case):
    _, env, _, (_, (_, _, terminated, truncated, t, _)) = case
    cap = env.spec.max_steps
    assert t.max() <= cap  # no episode runs past the step cap
    # Truncated exactly when the episode reaches the cap, and never earlier.
    np.testing.assert_array_equal(truncated, t == cap)
    # Truncation is not termination: an episode cut at the cap is (almost always) not terminated.
    if truncated.any():
        assert np.mean(terminated[truncated]) < 0.5
    if N_STEPS >= cap:
        assert truncated.any() or terminated.any()


def test_auto_reset_starts_from_the_task_reset_distribution(case):
    name, env, _, (first_obs, (obs, _, terminated, truncated, _, final_obs)) = case
    ended = terminated | truncated
    # After an episode end the next observation is a fresh first state; before it, it is the step's own.
    np.testing.assert_array_equal(obs[~ended], final_obs[~ended])
    if ended.any() and name.endswith("CartPole-v0"):
        assert np.all(np.abs(obs[ended]) <= 0.05 + 1e-6)  # CartPole starts in [-0.05, 0.05]^4
    if name.endswith("CartPole-v0"):
        assert np.all(np.abs(first_obs) <= 0.05 + 1e-6)


def test_same_key_same_trajectory(case):
    _, env, params, out = case
    again = jax.device_get(_rollout(env, params, jax.random.key(0)))
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)
    other = jax.device_get(_rollout(env, params, jax.random.key(1)))
    assert not np.array_equal(out[0], other[0])


def test_env_step_reads_proxy_signals(case):
    name, env, params, _ = case
    obs, state = env.reset(jax.random.key(5), params)
    tr = env_step(env, jax.random.key(6), state, _random_action(jax.random.key(7), env, params), params)
    assert tr.next_obs.shape == obs.shape and tr.td_done.dtype == jnp.float32 and tr.bad.dtype == jnp.bool_
    assert float(tr.td_done) == float(bool(tr.terminated))  # the thresholded done (raw_done_in_td off)
    assert not bool(tr.bad)


def test_a_negative_done_bias_starts_from_long_episodes():
    """``done_bias_init`` shifts only the done head's bias of a fresh SE, so its episodes end less
    often: over 64 random SEs and 400 random steps each, fewer episodes with -1 than with flax's 0."""
    task = make_task("CartPole-v0")

    def episodes(config, key):
        se = SyntheticEnv(task, config)
        k_init, k_run = jax.random.split(key)
        params = se.params_for(se.init(k_init))
        obs, state = se.reset(k_run, params)

        def body(carry, k):
            state, n = carry
            k_act, k_step = jax.random.split(k)
            _, state, _, term, trunc, _ = se.step(k_step, state, jax.random.randint(k_act, (), 0, 2), params)
            return (state, n + (term | trunc)), None

        return jax.lax.scan(body, (state, 0), jax.random.split(k_run, 400))[0][1]

    keys = jax.random.split(jax.random.key(0), 64)
    plain = SyntheticEnv(task, SEConfig()).init(keys[0])
    biased = SyntheticEnv(task, SEConfig(done_bias_init=-1.0)).init(keys[0])
    flat = lambda w: ravel_pytree(w)[0]  # noqa: E731
    differ = flat(plain) != flat(biased)
    assert int(differ.sum()) == 1 and float(flat(biased)[differ][0]) == float(flat(plain)[differ][0]) - 1.0
    n_plain = jax.jit(jax.vmap(lambda k: episodes(SEConfig(), k)))(keys)
    n_biased = jax.jit(jax.vmap(lambda k: episodes(SEConfig(done_bias_init=-1.0), k)))(keys)
    assert int(n_biased.sum()) < int(n_plain.sum())
    assert float(jnp.mean(n_biased <= 2)) > float(jnp.mean(n_plain <= 2))


def test_an_se_step_cap_of_its_own_truncates_in_jax_and_in_gymnasium():
    """``SEConfig.max_steps`` replaces the task's cap (CartPole-v1: 500) in the gymnax SE and in the
    Gymnasium adapter alike; a done bias of -50 keeps the done output below 0.5, so only the cap ends."""
    from synthenv.adapters.gymnasium_env import make_gymnasium_env

    task = make_task("CartPole-v1")
    config = SEConfig(hidden=8, max_steps=7, done_bias_init=-50.0)
    se = SyntheticEnv(task, config)
    weights = se.init(jax.random.key(1))
    params = se.params_for(weights)
    obs, state = se.reset(jax.random.key(2), params)
    flags = []
    for t in range(8):
        obs, state, _, term, trunc, _ = se.step(jax.random.key(3 + t), state, 0, params)
        flags.append((bool(term), bool(trunc)))
    assert flags[:6] == [(False, False)] * 6 and flags[6] == (False, True)
    env = make_gymnasium_env(task.spec, config, weights)
    env.reset(seed=0)
    flags = [env.step(1)[2:4] for _ in range(7)]
    assert flags[:6] == [(False, False)] * 6 and flags[6] == (False, True)
