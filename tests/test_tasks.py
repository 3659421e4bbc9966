"""The registry's tasks against Gymnasium's reference implementations, step by step."""

from __future__ import annotations

import warnings

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synthenv.errors import UsageError
from synthenv.tasks.real import make_task

N_STEPS = 100
# Gymnasium integrates in float64 (CartPole's Euler step, Acrobot's RK4 step), gymnax in float32;
# over 100 steps the observations still agree to float32 tolerance (measured: even to 1e-5).
CARTPOLE_TOL = dict(rtol=1e-4, atol=1e-4)
ACROBOT_TOL = dict(rtol=1e-4, atol=1e-4)


def _gym_env(task_id: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CartPole-v0 deprecation warning
        env = gymnasium.make(task_id)
    env.reset(seed=0)
    return env


def _underlying_state(task_id: str, s) -> np.ndarray:
    if task_id.startswith("CartPole"):
        fields = (s.x, s.x_dot, s.theta, s.theta_dot)
    else:  # gymnasium's Acrobot state is [theta1, theta2, dtheta1, dtheta2]
        fields = (s.joint_angle1, s.joint_angle2, s.velocity_1, s.velocity_2)
    return np.array([float(f) for f in fields], dtype=np.float64)


def _compare(task_id: str, seed: int, actions: np.ndarray, tol: dict, start=None) -> int:
    """Step our task and Gymnasium's env in lockstep; returns the number of steps taken.

    ``start`` (optional) maps the initial env state to a hand-made one.
    """
    task = make_task(task_id)
    params = task.default_params

    @jax.jit
    def step(key, state, action):  # no auto-reset: compare the transition itself
        obs, state, reward, terminated, _ = task.step_env(key, state, action, params)
        return obs, state, reward, terminated, task.is_truncated(state, params)

    key = jax.random.PRNGKey(seed)
    key, k_reset = jax.random.split(key)
    obs, state = task.reset(k_reset)
    if start is not None:
        state = start(state)

    env = _gym_env(task_id)
    env.unwrapped.state = _underlying_state(task_id, state)
    if task_id.startswith("CartPole"):
        np.testing.assert_allclose(np.asarray(obs), env.unwrapped.state.astype(np.float32), rtol=0, atol=0)

    for i, a in enumerate(actions):
        key, k_step = jax.random.split(key)
        obs, state, reward, terminated, truncated = step(k_step, state, jnp.int32(a))
        g_obs, g_reward, g_terminated, g_truncated, _ = env.step(int(a))
        assert float(reward) == g_reward, f"{task_id} seed {seed} step {i + 1}: reward"
        assert bool(terminated) == g_terminated, f"{task_id} seed {seed} step {i + 1}: terminated"
        assert not bool(truncated)  # far below the step cap
        np.testing.assert_allclose(np.asarray(obs), g_obs, **tol,
                                   err_msg=f"{task_id} seed {seed} step {i + 1}: obs")
        assert int(state.time) == i + 1
        if g_terminated:
            return i + 1
    return len(actions)


@pytest.mark.parametrize("task_id", ["CartPole-v0", "CartPole-v1"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cartpole_matches_gymnasium_random_actions(task_id, seed):
    actions = np.random.default_rng(seed).integers(0, 2, N_STEPS)
    _compare(task_id, seed, actions, CARTPOLE_TOL)


@pytest.mark.parametrize("task_id", ["CartPole-v0", "CartPole-v1"])
@pytest.mark.parametrize("seed", [3, 4])
def test_cartpole_alternating_actions_matches_gymnasium(task_id, seed):
    # Alternating pushes keep the pole up a while: a long comparison without termination.
    actions = np.arange(N_STEPS) % 2
    _compare(task_id, seed, actions, CARTPOLE_TOL)


@pytest.mark.parametrize("task_id", ["CartPole-v0", "CartPole-v1"])
@pytest.mark.parametrize("seed,action", [(0, 1), (5, 0), (6, 1)])
def test_cartpole_pole_falls_on_same_step(task_id, seed, action):
    # Always pushing one way makes the pole fall within ~10 steps: termination must be reported on
    # exactly the same step as Gymnasium (_compare checks every step and stops at termination).
    actions = np.full(N_STEPS, action)
    n = _compare(task_id, seed, actions, CARTPOLE_TOL)
    assert n < 30, "the constant policy should have terminated the episode"


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_acrobot_matches_gymnasium(seed):
    actions = np.random.default_rng(100 + seed).integers(0, 3, N_STEPS)
    _compare("Acrobot-v1", seed, actions, ACROBOT_TOL)


def test_acrobot_constant_torque_matches_gymnasium():
    for seed, a in [(7, 0), (8, 2)]:
        _compare("Acrobot-v1", seed, np.full(N_STEPS, a), ACROBOT_TOL)


@pytest.mark.parametrize("action", [0, 1, 2])
def test_acrobot_swing_up_terminates_on_same_step(action):
    # From rest Acrobot does not reach the goal height in 100 random steps, so start it swinging
    # upward fast: the tip crosses the line within a few steps, and both must terminate (reward 0)
    # on the same step.
    def swinging(s):
        return s.replace(joint_angle1=jnp.float32(1.2), joint_angle2=jnp.float32(0.3),
                         velocity_1=jnp.float32(4.0), velocity_2=jnp.float32(1.0))

    n = _compare("Acrobot-v1", 0, np.full(N_STEPS, action), ACROBOT_TOL, start=swinging)
    assert n < 20, "the swinging start should have reached the goal height"


@pytest.mark.parametrize("task_id", ["CartPole-v0", "CartPole-v1", "Acrobot-v1"])
def test_truncated_exactly_at_max_steps(task_id):
    task = make_task(task_id)
    max_steps = task.spec.max_steps
    key = jax.random.PRNGKey(0)
    _, state = task.reset(key)  # a fresh start state: one more step cannot terminate
    action = jnp.int32(1)

    # One step short of the cap: neither truncated nor terminated.
    early = state.replace(time=jnp.int32(max_steps - 2))
    _, s1, _, terminated, truncated, _ = task.step(key, early, action)
    assert int(s1.time) == max_steps - 1
    assert not bool(terminated) and not bool(truncated)

    # The step that reaches the cap is truncated (and auto-resets), and truncation is not termination.
    last = state.replace(time=jnp.int32(max_steps - 1))
    _, s2, reward, terminated, truncated, info = task.step(key, last, action)
    assert int(s2.time) == 0 and int(info["final_observation"].shape[0]) == task.spec.obs_dim
    assert bool(truncated)
    assert not bool(terminated)
    assert float(reward) == (1.0 if task_id.startswith("CartPole") else -1.0)


def test_a_shorter_horizon_truncates_there_and_leaves_the_task_alone():
    """``with_horizon(task, 20)``: a balancing controller's test episode ends truncated after exactly
    20 steps (return 20), while on the task itself it runs to 500."""
    from synthenv.evaluation import make_evaluate
    from synthenv.tasks.real import with_horizon

    task = make_task("CartPole-v1")
    policy = lambda params, hp, obs: (obs[2] + 0.5 * obs[3] > 0).astype(jnp.int32)  # noqa: E731
    short = with_horizon(task, 20)
    returns, steps = make_evaluate(short, policy, 3)(jax.random.key(0), None, None)
    assert np.asarray(returns).tolist() == [20.0] * 3 and int(steps) == 60
    returns, _ = make_evaluate(task, policy, 3)(jax.random.key(0), None, None)
    assert np.asarray(returns).tolist() == [500.0] * 3
    assert task.default_params.max_steps_in_episode == 500


def test_task_specs():
    assert make_task("CartPole-v0").spec.max_steps == 200
    assert make_task("CartPole-v1").spec.max_steps == 500
    assert make_task("Acrobot-v1").spec.max_steps == 500
    for task_id in ["CartPole-v0", "CartPole-v1", "Acrobot-v1"]:
        task = make_task(task_id)
        env = _gym_env(task_id)
        assert task.spec.obs_dim == env.observation_space.shape[0]
        assert task.spec.n_actions == env.action_space.n
        assert task.spec.max_steps == env.spec.max_episode_steps


def test_unknown_id_raises_usage_error():
    with pytest.raises(UsageError, match="Pendulum-v9"):
        make_task("Pendulum-v9")
