"""Checks every agent's tests share: train a vmapped population on a real task, score it against the
same networks untrained, and check that a member that stopped stays frozen while the others run on."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from synthenv.evaluation import make_evaluate
from synthenv.tasks.real import RealTask as Task, make_task


@dataclass
class Population:
    agent: ModuleType
    config: Any
    task: Task
    keys: jax.Array
    hps: Any
    run: Callable  # jitted (keys, hps) -> TrainResult of the population
    result: Any  # TrainResult with a leading population axis (on the host)
    train: Any  # the agent's TrainLoop the population ran


def train_population(agent: ModuleType, config, task_id: str, n: int, seed: int, vary: bool = False,
                     stop_rule: str = "threshold") -> Population:
    """``n`` agents trained in one jitted vmap on the real task (threshold: the task's solved mark)."""
    task = make_task(task_id)
    shapes = agent.max_shapes(config, vary)
    train = agent.make_train(config, task, shapes, stop_rule=stop_rule,
                             threshold=task.spec.solved_threshold)
    k_hp, k_train = jax.random.split(jax.random.PRNGKey(seed))
    hps = jax.vmap(lambda k: agent.sample_hparams(k, config, vary))(jax.random.split(k_hp, n))
    keys = jax.random.split(k_train, n)
    run = jax.jit(jax.vmap(lambda k, hp: train(k, None, hp)))
    return Population(agent, config, task, keys, hps, run, jax.device_get(run(keys, hps)), train)


def untrained(pop: Population) -> Any:
    """The population's networks as initialised: the training state the same keys start from, read
    out before any step (no second training program to compile)."""
    train = pop.train
    return jax.jit(jax.vmap(lambda k, hp: train.result(train.init(k, None, hp)).params))(pop.keys, pop.hps)


def mean_returns(pop: Population, params, episodes: int = 10, seed: int = 77) -> np.ndarray:
    """Per-agent mean return of ``episodes`` deterministic test episodes on the real task."""
    evaluate = make_evaluate(pop.task, pop.agent.make_policy(pop.config), episodes)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(pop.keys))
    returns, _ = jax.jit(jax.vmap(evaluate))(keys, params, pop.hps)
    return np.asarray(returns).mean(axis=1)


def assert_stopped_member_frozen(pop: Population, i: int) -> None:
    """Member ``i`` stopped while others ran on; rerun the population with every member a copy of ``i``
    (so the loop ends when ``i`` stops) and member ``i`` must end bitwise where it ended: frozen.

    (Trained alone, without vmap, a continuous agent drifts apart: batched matmuls round differently.)
    """
    n = len(pop.keys)
    assert int(pop.result.steps[i]) < int(pop.result.steps.max()), pop.result.steps
    copies = jax.tree.map(lambda x: jnp.stack([x[i]] * n), (pop.keys, pop.hps))
    alone = jax.device_get(pop.run(*copies))
    for a, b in zip(jax.tree.leaves(alone), jax.tree.leaves(pop.result)):
        np.testing.assert_array_equal(a[i], b[i])


def assert_learns(pop: Population, trained_at_least: float, untrained_below: float) -> tuple:
    """No divergence, steps within the cap, and the trained agents' mean test return clears
    ``trained_at_least`` while the same networks untrained stay below ``untrained_below``."""
    res = pop.result
    trained = mean_returns(pop, res.params)
    before = mean_returns(pop, untrained(pop))
    print(f"trained {trained} untrained {before} steps {res.steps} episodes {res.episodes}")
    assert not np.any(res.diverged)
    assert np.all(res.steps <= pop.config.max_steps)
    assert before.mean() < untrained_below, before
    assert trained.mean() >= trained_at_least, (trained, res.steps)
    return trained, before


def assert_stops_per_agent_and_frozen(pop: Population) -> None:
    steps = pop.result.steps
    assert len(set(steps.tolist())) > 1, steps
    assert_stopped_member_frozen(pop, int(np.argmin(steps)))


def assert_varied_population_runs(agent: ModuleType, config, task_id: str, n: int = 3, seed: int = 5) -> None:
    """Members with varied HPs (the paper's sampler) train side by side on the convergence rule and
    stop on their own, each within the proxy step cap, without diverging."""
    pop = train_population(agent, config, task_id, n=n, seed=seed, vary=True, stop_rule="converged")
    res = pop.result
    assert len(set(np.asarray(pop.hps.hidden).tolist())) > 1, pop.hps
    assert len(set(res.steps.tolist())) > 1, res.steps
    assert np.all(res.steps <= config.proxy_max_steps), res.steps
    assert not np.any(res.diverged)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(res.params))
