"""Checks every agent's tests share: train a vmapped population on a real task, score it against the
same networks untrained, and compare a member with the same agent trained alone (frozen after stop)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, Callable

import jax
import numpy as np

from synthenv.evaluation import make_evaluate
from synthenv.tasks.registry import Task, make_task
from synthenv.training_env import RealEnv


@dataclass
class Population:
    agent: ModuleType
    config: Any
    task: Task
    train: Callable
    keys: jax.Array
    hps: Any
    result: Any  # TrainResult with a leading population axis (on the host)


def train_population(agent: ModuleType, config, task_id: str, n: int, seed: int, vary: bool = False,
                     stop_rule: str = "threshold") -> Population:
    """``n`` agents trained in one jitted vmap on the real task (threshold: the task's solved mark)."""
    task = make_task(task_id)
    shapes = agent.max_shapes(config, vary)
    train = agent.make_train(config, RealEnv(task), shapes, stop_rule=stop_rule,
                             threshold=task.spec.solved_threshold)
    k_hp, k_train = jax.random.split(jax.random.PRNGKey(seed))
    hps = jax.vmap(lambda k: agent.sample_hparams(k, config, vary))(jax.random.split(k_hp, n))
    keys = jax.random.split(k_train, n)
    result = jax.jit(jax.vmap(lambda k, hp: train(k, None, hp)))(keys, hps)
    return Population(agent, config, task, train, keys, hps, jax.device_get(result))


def untrained(pop: Population) -> Any:
    """The population's networks as initialised: the same keys with a one-step budget (learning only
    starts after ``init_episodes`` >= 1 episodes, so nothing is updated)."""
    assert pop.config.init_episodes >= 1
    config = replace(pop.config, max_steps=1, chunk_steps=1)
    shapes = pop.agent.max_shapes(config, False)
    train = pop.agent.make_train(config, RealEnv(pop.task), shapes, stop_rule="threshold")
    result = jax.jit(jax.vmap(lambda k, hp: train(k, None, hp)))(pop.keys, pop.hps)
    assert np.all(np.asarray(result.steps) == 1)
    return result.params


def mean_returns(pop: Population, params, episodes: int = 10, seed: int = 77) -> np.ndarray:
    """Per-agent mean return of ``episodes`` deterministic test episodes on the real task."""
    evaluate = make_evaluate(pop.task, pop.agent.make_policy(pop.config), episodes)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(pop.keys))
    returns, _ = jax.jit(jax.vmap(evaluate))(keys, params, pop.hps)
    return np.asarray(returns).mean(axis=1)


def assert_member_equals_alone(pop: Population, i: int) -> None:
    """Member ``i`` of the vmapped population ends exactly where it ends trained alone: the population
    ran on after it stopped, so this shows its state stayed frozen."""
    hp = jax.tree.map(lambda x: x[i], pop.hps)
    alone = jax.device_get(jax.jit(lambda k: pop.train(k, None, hp))(pop.keys[i]))
    res = pop.result
    assert (int(alone.steps), int(alone.episodes)) == (int(res.steps[i]), int(res.episodes[i]))
    assert bool(alone.diverged) == bool(res.diverged[i])
    assert float(alone.last_return) == float(res.last_return[i])
    for a, b in zip(jax.tree.leaves(alone.params), jax.tree.leaves(res.params)):
        # Batched matmuls are not bitwise equal to unbatched ones; the trajectory (steps, episodes) is.
        np.testing.assert_allclose(a, b[i], rtol=1e-3, atol=1e-3)
