"""Reward networks: each variant's reward by hand (the "+ info" variants and linear-info on a small task
with an info vector), terminal and truncation handling, the real dynamics, vmap, model files, config
checks, and an agent training on an RN unchanged."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import synthenv
from synthenv.environment import TaskEnv, env_step
from synthenv.errors import UsageError
from synthenv.proxies.files import LoadedProxy, save_proxy
from synthenv.proxies.registry import PROXIES, get_kind, kind_of
from synthenv.proxies.rn import LINEAR_INFO, VARIANTS, RewardNetEnv, RNConfig, RNParams
from synthenv.tasks.real import make_task
from synthenv.tasks.registry import TaskSpec

ENV = "CartPole-v0"
GAMMA = 0.9  # not the default, so a wrong discount shows
TASK = make_task(ENV)
STATE_VARIANTS = [v for v in VARIANTS if v != LINEAR_INFO]  # the variants on the state alone


def rn(variant="additive-potential", terminal_potential_zero=True, task=TASK, **kw):
    env = RewardNetEnv(task, RNConfig(variant=variant, hidden=8, gamma=GAMMA,
                                      terminal_potential_zero=terminal_potential_zero, **kw))
    return env.bind(env.init(jax.random.key(3)))


def by_hand(env, obs, next_obs, real_reward, terminated):
    """The RN reward from the network's raw outputs (NumPy, float64)."""
    c = env.config
    out = lambda o: np.asarray(env.potential(env.weights, jnp.asarray(o)), np.float64)
    if c.variant.endswith("potential"):
        phi_next = out(next_obs)
        if c.terminal_potential_zero:
            phi_next = np.where(terminated, 0.0, phi_next)
        learned = GAMMA * phi_next - out(obs)
    else:
        learned = out(next_obs)
    return (real_reward if c.variant.startswith("additive") else 0.0) + learned


# ------------------------------------------------------------------------------------- rewards by hand


@pytest.mark.parametrize("terminal_potential_zero", [True, False])
@pytest.mark.parametrize("variant", STATE_VARIANTS)
def test_reward_by_hand_through_terminal_steps(variant, terminal_potential_zero):
    """Every variant both ways (for exclusive/additive the terminal setting must change nothing)."""
    env = rn(variant, terminal_potential_zero)
    step = jax.jit(env.step)
    obs, state = env.reset(jax.random.key(0))
    key, rows = jax.random.key(1), []
    for _ in range(30):  # always pushing right: CartPole terminates within ~10 steps, then resets
        key, k = jax.random.split(key)
        next_obs, next_state, reward, terminated, truncated, info = step(k, state, jnp.int32(1))
        assert not bool(info["bad"]) and not bool(truncated)
        np.testing.assert_array_equal(np.asarray(state.obs), np.asarray(obs))  # what Phi(s) reads
        rows.append((obs, info["final_observation"], info["real_reward"], terminated, reward))
        obs, state = next_obs, next_state
    obs, true_next, real, terminated, reward = (np.stack([np.asarray(r[i]) for r in rows]) for i in range(5))
    assert terminated.sum() >= 2
    np.testing.assert_allclose(reward, by_hand(env, obs, true_next, real.astype(np.float64), terminated),
                               rtol=1e-5, atol=1e-6)


def test_terminal_potential_zero_vs_the_papers():
    """On a terminal step the two settings differ by exactly gamma * Phi(s'); elsewhere they agree."""
    zero, paper = rn("exclusive-potential", True), rn("exclusive-potential", False)
    _, state = zero.reset(jax.random.key(0))
    key, seen_terminal = jax.random.key(1), False
    for _ in range(12):
        key, k = jax.random.split(key)
        out_z = zero.step(k, state, jnp.int32(1))
        out_p = paper.step(k, state, jnp.int32(1))
        terminated = bool(out_z[3])
        phi_next = float(zero.potential(zero.weights, out_z[5]["final_observation"]))
        phi = float(zero.potential(zero.weights, state.obs))
        assert float(out_z[2]) == pytest.approx(-phi if terminated else GAMMA * phi_next - phi, abs=1e-6)
        assert float(out_p[2]) == pytest.approx(GAMMA * phi_next - phi, abs=1e-6)
        if terminated:
            seen_terminal = True
            assert abs(float(out_p[2]) - float(out_z[2])) > 1e-4  # the setting matters here
        state = out_z[1]
    assert seen_terminal


@pytest.mark.parametrize("variant", ["exclusive-potential", "additive-potential"])
def test_truncation_does_not_zero_the_potential(variant):
    env = rn(variant, True)
    _, state = env.reset(jax.random.key(0))
    state = state.replace(task_state=state.task_state.replace(time=jnp.int32(env.spec.max_steps - 1)))
    _obs, _, reward, terminated, truncated, info = env.step(jax.random.key(1), state, jnp.int32(0))
    assert bool(truncated) and not bool(terminated)
    phi_next = float(env.potential(env.weights, info["final_observation"]))
    assert abs(phi_next) > 1e-4
    expected = by_hand(env, state.obs, info["final_observation"], float(info["real_reward"]), False)
    assert float(reward) == pytest.approx(float(expected), abs=1e-6)


def test_non_finite_output_is_bad_with_zero_reward():
    env = rn("additive")
    nan = jax.tree.map(lambda x: jnp.full_like(x, jnp.nan), env.weights)
    _, state = env.reset(jax.random.key(0))
    t = env_step(env, jax.random.key(1), state, jnp.int32(0), env.params_for(nan))
    assert bool(t.bad) and float(t.reward) == 0.0
    ok = env_step(env, jax.random.key(1), state, jnp.int32(0), env.default_params)
    assert not bool(ok.bad)
    np.testing.assert_array_equal(np.asarray(t.next_obs), np.asarray(ok.next_obs))  # real dynamics still


# ---------------------------------------------------------------------------- "+ info" and linear-info


@struct.dataclass
class InfoTaskState:
    obs: jax.Array
    time: jax.Array


@struct.dataclass
class InfoTaskParams:
    max_steps_in_episode: int = struct.field(pytree_node=False, default=6)


class InfoTask(TaskEnv):
    """A tiny continuous task with an info vector (``gain``, ``cost``; they sum to the reward): an
    action with ``a[0] > 0.9`` terminates, the cap is 6 steps."""

    def __init__(self):
        super().__init__(TaskSpec("Info-v0", "test/Info-v0", 6, 0.0, -100.0, 3, 0, 2, 1.0,
                                  info_keys=("gain", "cost")))

    @property
    def default_params(self):
        return InfoTaskParams()

    def reset_env(self, key, params):
        obs = jax.random.normal(key, (3,))
        return obs, InfoTaskState(obs, jnp.int32(0))

    def step_env(self, key, state, action, params):
        next_obs = 0.9 * state.obs + jnp.stack([action[0], action[1], action[0] * action[1]])
        gain, cost = next_obs[0] - state.obs[0], -0.1 * jnp.sum(action**2)
        info = {"gain": gain, "other": next_obs[2], "cost": cost}  # "other" is not in the info vector
        return next_obs, InfoTaskState(next_obs, state.time + 1), gain + cost, action[0] > 0.9, info

    def is_terminated(self, state, params):
        return jnp.bool_(False)


def network_by_hand(weights, x):
    """The RN's network in NumPy float64 from its weights: one PReLU layer, or linear-info's one layer."""
    net = jax.tree.map(lambda a: np.asarray(a, np.float64), weights)["reward_net"]
    x = np.asarray(x, np.float64)
    if "hidden_0" in net:
        h = x @ net["hidden_0"]["kernel"] + net["hidden_0"]["bias"]
        x = np.where(h >= 0, h, net["prelu_0"][0] * h)
    return float(x @ net["out"]["kernel"][:, 0] + net["out"]["bias"][0])


@pytest.mark.parametrize("variant", VARIANTS)
def test_info_reward_by_hand_through_terminal_and_truncated_steps(variant):
    """Each variant "+ info" (and linear-info): the network reads concat(s', info of this step) for
    N(s') and Phi(s'), concat(s, info of the step into s) for Phi(s), zeros after a reset."""
    linear = variant == LINEAR_INFO
    env = RewardNetEnv(InfoTask(), RNConfig(variant=variant, hidden=8, gamma=GAMMA, info=not linear))
    weights = env.init(jax.random.key(3))
    if linear:  # starts at w = 1, b = 0; other weights so that the reward is not the real one
        assert np.array_equal(weights["reward_net"]["out"]["kernel"], np.ones((2, 1)))
        assert np.array_equal(weights["reward_net"]["out"]["bias"], np.zeros(1))
        weights = {"reward_net": {"out": {"kernel": jnp.array([[0.7], [-1.3]]), "bias": jnp.array([0.2])}}}
    env = env.bind(weights)
    c = env.config
    out = lambda o, i: network_by_hand(weights, i if linear else np.concatenate([o, i]))  # noqa: E731
    step = jax.jit(env.step)
    obs, state = env.reset(jax.random.key(0))
    info_prev, ends = np.zeros(2), []
    for t in range(12):  # terminates at t = 2; the next episode is cut by the cap at t = 8
        action = jnp.array([1.0 if t == 2 else 0.3, -0.5])
        next_obs, next_state, reward, terminated, truncated, info = step(jax.random.key(10 + t), state, action)
        np.testing.assert_array_equal(np.asarray(state.info), info_prev)  # what Phi(s) reads
        true_next, info_next = np.asarray(info["final_observation"]), np.array([info["gain"], info["cost"]])
        real = float(info["gain"]) + float(info["cost"])
        assert float(info["real_reward"]) == pytest.approx(real, abs=1e-6)
        if c.potential:
            phi_next = 0.0 if bool(terminated) else out(true_next, info_next)
            learned = GAMMA * phi_next - out(np.asarray(obs), info_prev)
        else:
            learned = out(true_next, info_next)
        assert float(reward) == pytest.approx((real if c.additive else 0.0) + learned, abs=1e-5)
        assert not bool(info["bad"])
        if bool(terminated) or bool(truncated):
            ends.append((t, bool(terminated)))
            info_prev = np.zeros(2)
        else:
            info_prev = info_next
        obs, state = next_obs, next_state
    assert ends == [(2, True), (8, False)]


@pytest.mark.parametrize("config", [RNConfig(info=True), RNConfig(variant=LINEAR_INFO)])
def test_info_inputs_need_a_task_with_an_info_vector(config):
    from synthenv.meta.rn_config import make_rn_config

    message = ("RN info inputs need a task with an info vector; CartPole-v0 has none "
               "(tasks with one: HalfCheetah-v5)")
    with pytest.raises(UsageError) as e:
        RewardNetEnv(TASK, config)
    assert str(e.value) == message
    with pytest.raises(UsageError) as e:
        make_rn_config("CartPole-v0", rn={"variant": config.variant, "info": config.info})
    assert str(e.value) == message
    assert config.label == ("additive-potential + info" if config.info else "linear-info")


# ----------------------------------------------------------------------------------- dynamics and vmap


def test_dynamics_are_the_real_tasks():
    env = rn("exclusive")
    n = 300  # more than one episode: auto-resets included

    def rollout(e, params):
        def body(state, xs):
            k, a = xs
            obs, state, reward, terminated, truncated, info = e.step(k, state, a, params)
            return state, (obs, reward, terminated, truncated, info.get("real_reward", reward))

        _, state = e.reset(jax.random.key(5), params)
        keys = jax.random.split(jax.random.key(6), n)
        actions = jax.random.randint(jax.random.key(7), (n,), 0, 2)
        return jax.lax.scan(body, state, (keys, actions))[1]

    obs, _, term, trunc, real = jax.jit(lambda: rollout(env, env.default_params))()
    t_obs, t_reward, t_term, t_trunc, _ = jax.jit(lambda: rollout(TASK, TASK.default_params))()
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(t_obs))
    np.testing.assert_array_equal(np.asarray(term), np.asarray(t_term))
    np.testing.assert_array_equal(np.asarray(trunc), np.asarray(t_trunc))
    np.testing.assert_array_equal(np.asarray(real), np.asarray(t_reward))
    assert int(np.sum(np.asarray(term))) >= 2


def test_jit_vmap_over_256_envs():
    env = rn("additive-potential")
    n = 256
    obs, states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.key(0), n))
    actions = jax.random.randint(jax.random.key(1), (n,), 0, 2)
    step = jax.jit(jax.vmap(env.step))
    keys = jax.random.split(jax.random.key(2), n)
    next_obs, _, reward, terminated, truncated, info = step(keys, states, actions)
    assert next_obs.shape == (n, 4) and reward.shape == terminated.shape == truncated.shape == (n,)
    expected = by_hand(env, obs, info["final_observation"], np.asarray(info["real_reward"], np.float64),
                       np.asarray(terminated))
    np.testing.assert_allclose(np.asarray(reward), expected, rtol=1e-5, atol=1e-6)
    assert not bool(jnp.any(info["bad"]))


def test_vmap_over_a_population_of_weights():
    env = rn("exclusive")
    weights = jax.vmap(env.init)(jax.random.split(jax.random.key(0), 4))
    _, state = env.reset(jax.random.key(1))

    def one(w):
        return env.step(jax.random.key(2), state, jnp.int32(0), env.params_for(w))[2]

    rewards = jax.jit(jax.vmap(one))(weights)
    assert rewards.shape == (4,) and len(set(np.asarray(rewards).tolist())) == 4


def test_continuous_action_task():
    env = rn("additive-potential", task=make_task("Pendulum-v1"))
    assert env.spec.continuous and env.action_space().shape == (1,)
    obs, state = env.reset(jax.random.key(0))
    _obs2, _, reward, terminated, _, info = env.step(jax.random.key(1), state, jnp.array([0.7]))
    expected = by_hand(env, obs, info["final_observation"], float(info["real_reward"]), bool(terminated))
    assert float(reward) == pytest.approx(float(expected), abs=1e-5)


# ------------------------------------------------------------------------------- protocol and files


def test_protocol_registry_and_unbound():
    env = rn()
    assert kind_of(env) is PROXIES["reward_network"] is get_kind("reward_network")
    assert kind_of(env).name == "rn" and kind_of(env).config_type is RNConfig
    assert isinstance(env.params_for(env.weights), RNParams)
    assert env.params_for(env.weights).max_steps_in_episode == 200
    assert env.observation_space().shape == (4,) and env.action_space().n == 2
    unbound = RewardNetEnv(TASK, RNConfig())
    with pytest.raises(ValueError, match="no weights bound"):
        _ = unbound.default_params


@pytest.mark.parametrize("task_id,action", [(ENV, jnp.int32(1)), ("Pendulum-v1", jnp.array([0.3]))])
def test_model_file_round_trip(tmp_path, task_id, action):
    env = rn("additive-potential", False, task=make_task(task_id))
    path = tmp_path / "rn.safetensors"
    save_proxy(path, env, env.weights, {"x": 1}, generation=2, score=1.5)
    loaded = synthenv.load(path)
    assert isinstance(loaded, LoadedProxy) and loaded.kind.name == "rn"
    assert loaded.config == env.config and loaded.env_id == task_id
    assert loaded.metadata["kind"] == "reward_network"
    g = loaded.as_gymnax()
    _, s1 = env.reset(jax.random.key(0))
    _, s2 = g.reset(jax.random.key(0))
    for i in range(5):
        k = jax.random.key(100 + i)
        o1, s1, r1, *_ = env.step(k, s1, action)
        o2, s2, r2, *_ = g.step(k, s2, action)
        assert float(r1) == float(r2)
        np.testing.assert_array_equal(np.asarray(o1), np.asarray(o2))


@pytest.mark.parametrize("bad", [{"variant": "potential"}, {"hidden": 0}, {"layers": 0}, {"hidden": 2.5},
                                 {"activation": "gelu"}, {"gamma": 1.5}, {"gamma": -0.1},
                                 {"terminal_potential_zero": "yes"}, {"info": "yes"}])
def test_invalid_config(bad):
    with pytest.raises(UsageError) as e:
        RewardNetEnv(TASK, RNConfig(**bad))
    assert "\n" not in str(e.value) and repr(next(iter(bad.values()))) in str(e.value)


def test_not_a_task():
    with pytest.raises(UsageError):
        RewardNetEnv(object(), RNConfig())


# ----------------------------------------------------------------------------------- an agent on an RN


def test_ddqn_trains_on_an_rn():
    from synthenv.agents import ddqn

    env = RewardNetEnv(TASK, RNConfig(variant="additive-potential", hidden=8))
    weights = env.init(jax.random.key(0))
    cfg = ddqn.resolve("small", max_steps=300, proxy_max_steps=300, proxy_min_steps=0)
    train = jax.jit(ddqn.make_train(cfg, env, ddqn.max_shapes(cfg, False), stop_rule="converged"))
    hp = ddqn.sample_hparams(jax.random.key(1), cfg, False)
    result = train(jax.random.key(2), env.params_for(weights), hp)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(result.params))
    assert 0 < int(result.steps) <= 300 + cfg.chunk_steps and not bool(result.diverged)


def test_gymnasium_adapters_name_the_kind(tmp_path):
    """The NumPy Gymnasium adapters step SEs; on an RN file they refuse with one line."""
    env = RewardNetEnv(make_task("CartPole-v0"), RNConfig(hidden=4))
    path = tmp_path / "rn.safetensors"
    save_proxy(path, env, env.init(jax.random.key(0)), {}, generation=0, score=0.0)
    loaded = synthenv.load(path)
    for adapter in (loaded.as_gymnasium, lambda: loaded.as_gymnasium_vector(2)):
        with pytest.raises(UsageError, match="holds a RN"):
            adapter()
