"""Greedy test episodes of a trained agent on the real task (the score the outer loop maximises)."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from synthenv.tasks.registry import Task


def make_evaluate(task: Task, policy: Callable, episodes: int):
    """Build ``evaluate(key, params, hp) -> (returns[episodes], real_steps)``.

    Episodes run in parallel (vmap) and the loop stops as soon as every episode has ended.
    """

    def evaluate(key, params, hp):
        def run(k):
            k_reset, k_run = jax.random.split(k)
            obs, state = task.reset(k_reset)

            def body(c):
                obs, state, ret, alive, steps, k = c
                k, k_step = jax.random.split(k)
                action = policy(params, hp, obs)
                obs, state, reward, terminated, truncated = task.step(k_step, state, action)
                ret = ret + jnp.where(alive, reward, 0.0)
                steps = steps + alive
                return obs, state, ret, alive & ~(terminated | truncated), steps, k

            c = (obs, state, jnp.float32(0), jnp.bool_(True), jnp.int32(0), k_run)
            _, _, ret, _, steps, _ = jax.lax.while_loop(lambda c: c[3], body, c)
            return ret, steps

        returns, steps = jax.vmap(run)(jax.random.split(key, episodes))
        return returns, jnp.sum(steps)

    return evaluate
