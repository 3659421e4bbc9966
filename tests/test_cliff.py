"""The cliff-walking tasks: CliffWalking-v1 step by step against Gymnasium's, Cliff-v0's own rules."""

from __future__ import annotations

import gymnasium
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synthenv.environment import describe
from synthenv.tasks import cliff
from synthenv.tasks.real import make_task
from synthenv.tasks.registry import get_spec

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
OPTIMAL = [UP] + [RIGHT] * 11 + [DOWN]  # the shortest safe path, 13 steps


def _run(task, actions, seed=0):
    """Step ``task`` through gymnax's ``step`` (auto-reset); per step: reward, terminated, truncated,
    the cell of the true next observation (before any reset) and the cell of the returned one."""
    key = jax.random.PRNGKey(seed)
    obs, state = task.reset(key)
    out = []
    for a in actions:
        key, k = jax.random.split(key)
        obs, state, reward, terminated, truncated, info = task.step(k, state, a, task.default_params)
        final = info["final_observation"]
        assert obs.shape == (48,) and obs.dtype == jnp.float32 and float(obs.sum()) == 1.0
        out.append((float(reward), bool(terminated), bool(truncated), int(jnp.argmax(final)),
                    int(jnp.argmax(obs))))
    return out


def _gym_run(actions):
    """Gymnasium's CliffWalking-v1 on the same actions, reset whenever it terminates."""
    env = gymnasium.make("CliffWalking-v1")
    s, _ = env.reset(seed=0)
    out = [s]
    for a in actions:
        s, r, term, trunc, _ = env.step(a)
        out.append((float(r), bool(term), bool(trunc), int(s)))
        if term:
            s, _ = env.reset()
    return out


def test_gymnasium_has_no_time_limit_and_no_slip_by_default():
    """Our cap of 200 is our own (Gymnasium's v1 is unbounded) and the dynamics are deterministic."""
    assert gymnasium.spec("CliffWalking-v1").max_episode_steps is None
    assert gymnasium.make("CliffWalking-v1").unwrapped.is_slippery is False


@pytest.mark.parametrize("actions", [
    [LEFT, DOWN, RIGHT] + [UP] * 5 + [DOWN] * 4 + OPTIMAL,  # walls, a fall, the optimal path
    # along the top row to the goal, then walls and two falls, then the optimal path
    [UP] * 5 + [RIGHT] * 13 + [DOWN] * 4 + [LEFT, DOWN, RIGHT, RIGHT] + OPTIMAL,
    list(np.random.default_rng(0).integers(0, 4, 150)),  # random actions (falls, walls, resets)
], ids=["fall-then-goal", "top-row-and-late-fall", "random"])
def test_cliffwalking_v1_agrees_with_gymnasium(actions):
    actions = [int(a) for a in actions]
    ours, theirs = _run(make_task("CliffWalking-v1"), actions), _gym_run(actions)
    assert theirs[0] == cliff.START
    for t, ((r, term, trunc, cell, _), (gr, gterm, gtrunc, gcell)) in enumerate(zip(ours, theirs[1:])):
        assert (r, term, trunc, cell) == (gr, gterm, gtrunc, gcell), f"step {t}"
    assert any(r == -100.0 for r, *_ in ours)  # every sequence falls at least once
    if len(actions) < 100:  # the hand-made ones also reach the goal
        assert ours[-1][1] and ours[-1][3] == cliff.GOAL


def test_cliffwalking_v1_fall_returns_to_start_and_goal_gives_minus_13():
    out = _run(make_task("CliffWalking-v1"), [RIGHT] + OPTIMAL)
    assert out[0] == (-100.0, False, False, cliff.START, cliff.START)
    assert sum(r for r, *_ in out[1:]) == -13.0 and out[-1][1] and out[-1][3] == cliff.GOAL


def test_cliff_v0_fall_is_terminal():
    out = _run(make_task("Cliff-v0"), [RIGHT, UP])
    reward, terminated, truncated, final_cell, obs_cell = out[0]
    assert (reward, terminated, truncated) == (-100.0, True, False)
    assert final_cell == cliff.START + 1  # the agent is in the cliff cell at the end of the episode
    assert obs_cell == cliff.START  # auto-reset
    assert out[1][:3] == (-1.0, False, False) and out[1][3] == cliff.START - 12  # a fresh episode


def test_cliff_v0_optimal_path_returns_minus_12():
    """12 steps of -1 and the goal step rewarded 0: the paper's optimum -12."""
    out = _run(make_task("Cliff-v0"), OPTIMAL)
    assert [r for r, *_ in out] == [-1.0] * 12 + [0.0]
    assert [term for _, term, *_ in out] == [False] * 12 + [True]
    assert out[-1][3] == cliff.GOAL and out[-1][4] == cliff.START


def test_cliff_v0_step_cap_truncates_at_50_and_min_return():
    task = make_task("Cliff-v0")
    assert task.default_params.max_steps_in_episode == 50
    out = _run(task, [LEFT] * 51)  # stays on the start cell
    assert [trunc for _, _, trunc, *_ in out[:50]] == [False] * 49 + [True]
    assert not any(term for _, term, *_ in out)
    assert sum(r for r, *_ in out[:50]) == -50.0 and not out[50][2]  # the cap restarts the count
    worst = _run(task, [LEFT] * 49 + [RIGHT])  # 49 steps of -1, then the cliff at the last step
    assert sum(r for r, *_ in worst) == get_spec("Cliff-v0").min_return == -149.0
    assert worst[-1][1] and worst[-1][2]


def test_cliffwalking_v1_min_return():
    task = make_task("CliffWalking-v1")
    assert task.default_params.max_steps_in_episode == 200

    def body(carry, key):
        state, total = carry
        _, state, reward, _, truncated, _ = task.step(key, state, RIGHT, task.default_params)
        return (state, total + reward), truncated

    _, state = task.reset(jax.random.PRNGKey(0))
    (_, total), truncated = jax.lax.scan(body, (state, 0.0), jax.random.split(jax.random.PRNGKey(1), 200))
    assert float(total) == get_spec("CliffWalking-v1").min_return == -20000.0
    assert bool(truncated[-1]) and not bool(truncated[:-1].any())


@pytest.mark.parametrize("task_id", ["Cliff-v0", "CliffWalking-v1"])
def test_jit_vmap_1024_envs(task_id):
    task, n, steps = make_task(task_id), 1024, 60
    params = task.default_params

    @jax.jit
    def rollout(key):
        k_reset, k_act, k_step = jax.random.split(key, 3)
        obs, state = jax.vmap(task.reset, in_axes=(0, None))(jax.random.split(k_reset, n), params)
        actions = jax.random.randint(k_act, (steps, n), 0, 4)

        def body(carry, xs):
            state, = carry
            a, k = xs
            obs, state, r, term, trunc, _ = jax.vmap(task.step, in_axes=(0, 0, 0, None))(
                jax.random.split(k, n), state, a, params)
            return (state,), (obs, r, term, trunc)

        _, ys = jax.lax.scan(body, (state,), (actions, jax.random.split(k_step, steps)))
        return obs, ys

    obs0, (obs, rewards, term, trunc) = rollout(jax.random.PRNGKey(0))
    assert obs0.shape == (n, 48) and obs.shape == (steps, n, 48)
    assert bool((obs.sum(-1) == 1.0).all()) and bool((jnp.argmax(obs0, -1) == cliff.START).all())
    allowed = [-1.0, -100.0] + ([0.0] if task_id == "Cliff-v0" else [])
    assert set(np.unique(np.asarray(rewards)).tolist()) <= set(allowed)
    assert bool(term.any()) and bool(trunc.any()) == (task_id == "Cliff-v0")  # 60 steps > 50, < 200


def test_make_task_and_gymnax_make():
    task = make_task("Cliff-v0")
    assert describe(task) == (48, 4, 0, 0.0) and task.spec.max_steps == 50
    env, params = gymnax.make("synthenv/Cliff-v0")
    assert isinstance(env, cliff.CliffWalking) and params.max_steps_in_episode == 50
    assert describe(env, params) == (48, 4, 0, 0.0)
    env1, params1 = gymnax.make("synthenv/CliffWalking-v1")
    assert env1.variant == "CliffWalking-v1" and params1.max_steps_in_episode == 200
    cliff.register()  # registering again is a no-op
    assert gymnax.registered_envs.count("synthenv/Cliff-v0") == 1
    with pytest.raises(ValueError):
        cliff.CliffWalking("Cliff-v9")
