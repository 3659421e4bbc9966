"""ICM: the curiosity bonus is the forward model's error, it shrinks on what the agent has seen, and it
reaches every agent through the environment."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synthenv.agents.icm import ICMConfig, ICMEnv
from synthenv.errors import UsageError
from synthenv.tasks.real import make_task


def random_walk(env, steps, key, continuous=False):
    def run(key):
        _, s = env.reset(key)

        def body(s, k):
            k_act, k_env = jax.random.split(k)
            if continuous:
                a = jax.random.uniform(k_act, (1,), minval=-1.0, maxval=1.0)
            else:
                a = jax.random.randint(k_act, (), 0, env.spec.n_actions)
            _, s2, r, term, trunc, info = env.step(k_env, s, a)
            return s2, (r, info["real_reward"], info["curiosity"], s.obs, a, info["final_observation"], s.weights)

        return jax.lax.scan(body, s, jax.random.split(key, steps))[1]

    return jax.jit(run)(key)


@pytest.mark.parametrize("task_id, continuous", [("CartPole-v0", False), ("MountainCarContinuous-v0", True)])
def test_the_bonus_is_the_forward_error_and_shrinks_with_experience(task_id, continuous):
    env = ICMEnv(make_task(task_id), ICMConfig(eta=0.5))
    r, real, bonus, obs, action, next_obs, weights = random_walk(env, 3000, jax.random.key(0), continuous)
    np.testing.assert_allclose(np.asarray(r - real), np.asarray(bonus), atol=1e-5)
    assert float(jnp.min(bonus)) >= 0
    assert float(jnp.mean(bonus[-300:])) < 0.5 * float(jnp.mean(bonus[:300]))
    # By hand at one step: eta * 0.5 * ||forward(phi(s), a) - phi(s')||^2 with the weights before the step.
    i = 1234
    w = jax.tree.map(lambda x: x[i], weights)
    _, forward = env.losses(w, obs[i], action[i], next_obs[i])
    assert float(bonus[i]) == pytest.approx(0.5 * float(forward), rel=1e-5)


def test_an_agent_trains_on_the_icm_env_unchanged():
    from synthenv.agents.registry import get_agent

    task, agent = make_task("CartPole-v0"), get_agent("ddqn")
    config = agent.resolve("small", max_episodes=30)
    train = agent.make_train(config, ICMEnv(task), agent.max_shapes(config, False), stop_rule="none")
    result = jax.jit(train)(jax.random.key(0), task.default_params, agent.sample_hparams(jax.random.key(1), config, False))
    assert int(result.episodes) == 30 and not bool(result.diverged)
    # The replay holds the curious reward: above the real 1 per step where the bonus is large.
    assert float(jnp.max(result.replay.reward[: int(result.replay.size)])) > 1.0


def test_bad_icm_settings():
    with pytest.raises(UsageError, match="beta"):
        ICMEnv(make_task("CartPole-v0"), ICMConfig(beta=2.0))
