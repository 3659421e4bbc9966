"""The Gymnasium adapters of a learned SE (``synthenv.adapters.gymnasium_env``): the Gymnasium API,
the NumPy forward against the JAX ``SENetwork``, the step semantics (bad steps, the step cap), seeding,
the vector env's next-step autoreset, and the real task's first observations."""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import synthenv
from synthenv.adapters.gymnasium_env import (BatchForward, NumpySE, SEGymnasiumEnv, SEVectorEnv,
                                             make_gymnasium_env, make_gymnasium_vector_env)
from synthenv.proxies.se import SEConfig, SENetwork
from synthenv.tasks.registry import get_spec

MODEL = Path(__file__).resolve().parents[1] / "models" / "cartpole-v0-invariant.safetensors"


def shipped_se():
    """``(spec, config, params)`` of the shipped CartPole-v0 SE."""
    loaded = synthenv.load(MODEL)
    return loaded.env.spec, loaded.config, loaded.weights


def numpy_params(params):
    return jax.tree_util.tree_map(lambda v: np.array(v, np.float32), params)


def random_se(env_id, config, seed=0, scale=1.0):
    """A freshly initialised SE (flax default init), its weights scaled by ``scale``."""
    spec = get_spec(env_id)
    net = SENetwork(spec.obs_dim, spec.n_actions, config)
    params = net.init(jax.random.key(seed), jnp.zeros((spec.obs_dim,)), jnp.int32(0))["params"]
    return spec, config, jax.tree_util.tree_map(lambda v: np.asarray(v) * scale, params)


def jax_rollout(spec, config, params, obs0, actions):
    """The SE stepped in JAX from ``obs0`` (batched), the adapter's semantics: per step next obs,
    reward, terminated, truncated, raw done value."""
    net = SENetwork(spec.obs_dim, spec.n_actions, config)

    def step(carry, action):
        obs, t = carry
        next_obs, reward, done = net.apply({"params": params}, obs, action)
        bad = ~(jnp.all(jnp.isfinite(next_obs), -1) & jnp.isfinite(reward) & jnp.isfinite(done))
        next_obs = jnp.where(bad[..., None], 0.0, next_obs)
        reward = jnp.where(bad, 0.0, reward)
        t = t + 1
        return (next_obs, t), (next_obs, reward, (done > 0.5) | bad, t >= spec.max_steps, done)

    t0 = jnp.zeros(obs0.shape[:-1], jnp.int32)
    _, out = jax.jit(lambda o, a: jax.lax.scan(step, (o, t0), a))(jnp.asarray(obs0), jnp.asarray(actions))
    return [np.asarray(x) for x in out]


def no_done(params):
    """The SE with a done net that never fires and a constant next state (never diverges)."""
    p = copy.deepcopy(numpy_params(params))
    p["done_net"]["out"]["bias"][:] = -1e6
    p["state_net"]["out"]["kernel"][:] = 0.0
    return p


def test_check_env_passes_with_only_the_unbounded_box_warnings():
    env = make_gymnasium_env(*shipped_se())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    others = [str(w.message) for w in caught if "infinity" not in str(w.message)]
    assert others == []
    assert isinstance(env, gymnasium.Env) and isinstance(env, SEGymnasiumEnv)
    assert env.observation_space == gymnasium.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    assert env.action_space == gymnasium.spaces.Discrete(2)


def test_step_types_and_info():
    env = make_gymnasium_env(*shipped_se())
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (4,) and info == {}
    obs, reward, terminated, truncated, info = env.step(np.int64(1))
    assert obs.dtype == np.float32 and type(reward) is float
    assert type(terminated) is bool and type(truncated) is bool
    assert set(info) == {"done_value", "bad"} and info["bad"] is False
    assert terminated == (info["done_value"] > 0.5)
    with pytest.raises(ValueError):
        env.step(2)
    assert env.spec is not None and isinstance(gymnasium.make(env.spec).unwrapped, SEGymnasiumEnv)
    ansi = make_gymnasium_env(*shipped_se(), render_mode="ansi")
    ansi.reset(seed=0)
    assert ansi.render().startswith("t=0 obs=")


def test_numpy_steps_match_the_jax_se_on_the_shipped_se():
    spec, config, params = shipped_se()
    env = make_gymnasium_env(spec, config, params)
    obs0, _ = env.reset(seed=3)
    actions = np.random.default_rng(0).integers(0, 2, 150)
    ref_obs, ref_r, ref_term, ref_trunc, ref_done = jax_rollout(spec, config, params, obs0, actions)
    for i, a in enumerate(actions):
        obs, r, term, trunc, info = env.step(a)
        np.testing.assert_allclose(obs, ref_obs[i], rtol=1e-5, atol=1e-5)
        assert math.isclose(r, float(ref_r[i]), rel_tol=1e-5, abs_tol=1e-5)
        assert math.isclose(info["done_value"], float(ref_done[i]), rel_tol=1e-5, abs_tol=1e-5)
        assert (term, trunc) == (bool(ref_term[i]), bool(ref_trunc[i]))


@pytest.mark.parametrize("env_id,config", [
    ("CartPole-v0", SEConfig(hidden=17, layers=1, activation="tanh")),
    ("CartPole-v0", SEConfig(hidden=9, layers=2, activation="relu")),
    ("Acrobot-v1", SEConfig(hidden=23, layers=1, activation="prelu")),
    ("Acrobot-v1", SEConfig(hidden=11, layers=3, activation="leaky_relu")),
    ("Acrobot-v1", SEConfig(hidden=7, layers=2, activation="prelu")),
])
def test_numpy_forward_matches_senetwork_for_each_architecture(env_id, config):
    spec, config, params = random_se(env_id, config, seed=1, scale=2.0)
    if config.activation == "prelu":  # a slope of its own per net and layer, not the 0.25 default
        for k, net in enumerate(("state_net", "reward_net", "done_net")):
            for j in range(config.layers):
                params[net][f"prelu_{j}"] = np.array([0.1 + 0.3 * k - 0.2 * j], np.float32)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(64, spec.obs_dim)).astype(np.float32)
    actions = rng.integers(0, spec.n_actions, 64)
    ref = SENetwork(spec.obs_dim, spec.n_actions, config).apply({"params": params}, obs, actions)
    ref = np.concatenate([np.asarray(ref[0]), np.asarray(ref[1])[:, None], np.asarray(ref[2])[:, None]], 1)
    se = NumpySE(spec.obs_dim, spec.n_actions, config, params)
    np.testing.assert_allclose(se.forward(obs, actions), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.stack([se.forward_one(o, a) for o, a in zip(obs, actions)]), ref,
                               rtol=1e-5, atol=1e-5)
    batch = BatchForward(se, 64)
    batch.obs[:] = obs
    np.testing.assert_allclose(batch.run(actions), ref, rtol=1e-5, atol=1e-5)
    assert se.forward(obs, actions).dtype == np.float32


def test_reset_seed_is_reproducible_and_seeds_differ():
    env = make_gymnasium_env(*shipped_se())
    first = [env.reset(seed=7)[0] for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])
    assert not np.array_equal(first[0], env.reset(seed=8)[0])
    # unseeded resets continue the seeded stream: the same sequence after the same seed
    env.reset(seed=7)
    a = [env.reset()[0] for _ in range(5)]
    env.reset(seed=7)
    b = [env.reset()[0] for _ in range(5)]
    np.testing.assert_array_equal(np.stack(a), np.stack(b))
    assert len({tuple(x) for x in a}) == 5
    other = make_gymnasium_env(*shipped_se())  # a second env with the same seed: the same episode
    np.testing.assert_array_equal(other.reset(seed=7)[0], first[0])


def test_truncation_exactly_at_the_task_cap():
    spec, config, params = shipped_se()
    env = make_gymnasium_env(spec, config, no_done(params))
    env.reset(seed=0)
    for t in range(1, 201):
        _, _, terminated, truncated, info = env.step(t % 2)
        assert not terminated and info["done_value"] < 0.5
        assert truncated == (t == 200), t
    assert spec.max_steps == 200


def test_non_finite_outputs_terminate_with_zero_obs_and_reward():
    spec, config, params = shipped_se()
    p = numpy_params(params)
    p["state_net"]["out"]["kernel"][:] = np.inf
    env = make_gymnasium_env(spec, config, p)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(0)
    assert terminated and not truncated and info["bad"]
    assert reward == 0.0 and obs.dtype == np.float32
    np.testing.assert_array_equal(obs, np.zeros(4, np.float32))
    venv = make_gymnasium_vector_env(spec, config, p, 3)
    venv.reset(seed=0)
    obs, reward, terminated, _, info = venv.step(np.array([0, 1, 0]))
    assert terminated.all() and info["bad"].all() and (reward == 0).all() and (obs == 0).all()
    # an inf in the first layer's row of the other action also makes the step bad, as one_hot @ K does
    p = numpy_params(params)
    p["reward_net"]["hidden_0"]["kernel"][1, 0] = np.inf
    env = make_gymnasium_env(spec, config, p)
    env.reset(seed=0)
    assert env.step(0)[4]["bad"]


def test_vector_env_matches_single_env_and_jax():
    spec, config, params = shipped_se()
    n, steps = 16, 120
    venv = make_gymnasium_vector_env(spec, config, params, n)
    assert isinstance(venv, SEVectorEnv) and isinstance(venv, gymnasium.vector.VectorEnv)
    assert venv.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.NEXT_STEP
    assert venv.num_envs == n and venv.single_action_space == gymnasium.spaces.Discrete(2)
    assert venv.observation_space.shape == (n, 4) and venv.action_space.shape == (n,)
    obs0, _ = venv.reset(seed=5)
    assert obs0.shape == (n, 4) and obs0.dtype == np.float32 and len({tuple(o) for o in obs0}) == n
    actions = np.random.default_rng(1).integers(0, 2, (steps, n))
    out = [venv.step(a) for a in actions]
    vobs = np.stack([o[0] for o in out])
    ref_obs, ref_r, ref_term, _, _ = jax_rollout(spec, config, params, obs0, actions)
    assert not ref_term.any()  # no episode ends in these steps: no autoreset to account for
    np.testing.assert_allclose(vobs, ref_obs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.stack([o[1] for o in out]), ref_r, rtol=1e-5, atol=1e-5)
    # copy 0 starts where a single env seeded alike starts, and steps alike
    env = make_gymnasium_env(spec, config, params)
    np.testing.assert_array_equal(env.reset(seed=5)[0], obs0[0])
    single = np.stack([env.step(a)[0] for a in actions[:, 0]])
    np.testing.assert_allclose(single, vobs[:, 0], rtol=1e-5, atol=1e-5)


def test_vector_env_next_step_autoreset():
    spec, config, params = shipped_se()
    venv = make_gymnasium_vector_env(spec, config, no_done(params), 4)
    venv.reset(seed=0)
    for t in range(1, 201):
        obs, reward, terminated, truncated, info = venv.step(np.zeros(4, np.int64))
        assert not terminated.any() and truncated.all() == (t == 200) and not truncated.any() == (t != 200)
    obs, reward, terminated, truncated, info = venv.step(np.ones(4, np.int64))  # the reset step
    assert (reward == 0).all() and not terminated.any() and not truncated.any()
    assert not info["_done_value"].any() and np.abs(obs).max() <= 0.05
    obs, reward, terminated, truncated, info = venv.step(np.ones(4, np.int64))
    assert info["_done_value"].all() and not truncated.any()
    # reset_mask resets only the masked copies
    before = venv.step(np.zeros(4, np.int64))[0]
    after, _ = venv.reset(options={"reset_mask": np.array([True, False, False, False])})
    np.testing.assert_array_equal(after[1:], before[1:])
    assert not np.array_equal(after[0], before[0])


def test_first_observations_follow_the_real_tasks_reset_distribution():
    obs, _ = make_gymnasium_vector_env(*shipped_se(), 5000).reset(seed=0)  # more than one batch
    assert np.abs(obs).max() <= 0.05 and obs.min() < -0.049 and obs.max() > 0.049
    assert abs(obs.mean()) < 0.002 and len(np.unique(obs[:, 0])) > 4990
    obs, _ = make_gymnasium_vector_env(*random_se("Acrobot-v1", SEConfig(167, 1, "prelu")), 2000).reset(seed=0)
    assert obs.shape == (2000, 6)
    angles = np.arctan2(obs[:, [1, 3]], obs[:, [0, 2]])
    np.testing.assert_allclose(obs[:, [0, 2]] ** 2 + obs[:, [1, 3]] ** 2, 1.0, atol=1e-6)
    assert np.abs(angles).max() <= 0.1 + 1e-6 and np.abs(obs[:, 4:]).max() <= 0.1
    assert np.abs(angles).max() > 0.099


def test_loaded_proxy_adapters():
    """``synthenv.load(...).as_gymnasium()`` and ``.as_gymnasium_vector(n)`` are these adapters."""
    loaded = synthenv.load(MODEL)
    env = loaded.as_gymnasium()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4,) and obs.dtype == np.float32
    vec = loaded.as_gymnasium_vector(8)
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (8, 4) and vec.num_envs == 8
