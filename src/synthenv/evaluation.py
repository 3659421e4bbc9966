"""Greedy test episodes of a trained agent on the real task (the score the outer loop maximises)."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from synthenv.environment import env_step


def make_evaluate(task, policy: Callable, episodes: int):
    """Build ``evaluate(key, params, hp) -> (returns[episodes], real_steps)`` for ``task`` (a gymnax
    environment, stepped with its default params).

    Episodes run in parallel (vmap) and the loop stops as soon as every episode has ended.
    """
    env_params = task.default_params

    def evaluate(key, params, hp):
        def run(k):
            k_reset, k_run = jax.random.split(k)
            obs, state = task.reset(k_reset, env_params)

            def body(c):
                obs, state, ret, alive, steps, k = c
                k, k_step = jax.random.split(k)
                tr = env_step(task, k_step, state, policy(params, hp, obs), env_params)
                ret = ret + jnp.where(alive, tr.reward, 0.0)
                steps = steps + alive
                return tr.obs, tr.state, ret, alive & ~(tr.terminated | tr.truncated), steps, k

            c = (obs, state, jnp.float32(0), jnp.bool_(True), jnp.int32(0), k_run)
            _, _, ret, _, steps, _ = jax.lax.while_loop(lambda c: c[3], body, c)
            return ret, steps

        returns, steps = jax.vmap(run)(jax.random.split(key, episodes))
        return returns, jnp.sum(steps)

    return evaluate
