"""The inner-agent contract, checked for every agent of the registry: it satisfies the protocol, learns
its real task within a small budget (against the same networks untrained), a member that stopped
stays frozen while the others run on, and a varied-HP population gives each member what it gets
trained alone (in a population of copies of itself)."""

from __future__ import annotations

from dataclasses import fields

import jax
import numpy as np
import pytest

from agent_checks import (assert_learns, assert_stopped_member_frozen, assert_stops_per_agent_and_frozen,
                          train_population)
from synthenv.agents import hparams
from synthenv.agents.protocol import InnerAgent
from synthenv.agents.registry import AGENTS, get_agent
from synthenv.errors import UsageError

# Per (agent, task): a small real-task budget, the population and the bar (trained at least, untrained
# below). CartPole-v0 returns lie in [0, 200], Pendulum-v1's in about [-1700, 0].
LEARNING = {
    ("ddqn", "CartPole-v0"): (dict(preset="cartpole", hidden=32, batch_size=32, lr=1e-3, max_steps=15000), 4, 2024,
                              150.0, 60.0),
    ("dueling_ddqn", "CartPole-v0"): (dict(hidden=32, max_steps=15000), 3, 2024, 150.0, 60.0),
    ("td3_discrete", "CartPole-v0"): (dict(max_steps=15000), 4, 1, 150.0, 60.0),
    ("sac", "CartPole-v0"): (dict(max_steps=8000), 3, 2024, 150.0, 60.0),  # all reach the cap: see FROZEN
    ("ppo", "CartPole-v0"): (dict(max_steps=30_000), 4, 1, 180.0, 30.0),
    ("td3", "Pendulum-v1"): (dict(max_steps=15000), 2, 1, -400.0, -900.0),
    ("sac", "Pendulum-v1"): (dict(max_steps=10000), 2, 2024, -400.0, -900.0),
    ("ppo", "Pendulum-v1"): (dict(preset="default", max_steps=40_000), 4, 1, -400.0, -900.0),
    # Cliff-v0 returns lie in [-149, 0] (optimum -12, threshold -20). Untrained, the all-zero table's
    # greedy walk (after the one-step budget's single update) loops (-50) or falls (-100).
    ("q_learning", "Cliff-v0"): (dict(max_steps=5000), 4, 1, -20.0, -40.0),
    ("sarsa", "Cliff-v0"): (dict(max_steps=5000), 4, 1, -20.0, -40.0),
}
FROZEN_ELSEWHERE = {("sac", "CartPole-v0")}
"""Populations whose members all run to the step cap (discrete SAC's training returns stay below the
threshold), so no member stops early; the agent's frozen check runs on its other task."""
# Varied-HP populations on the convergence rule, with a loose rule so that members stop apart.
VARIED = dict(proxy_max_steps=1000, stop_window=2, stop_tolerance=0.2)
VARIED_TASK = {"q_learning": "Cliff-v0", "sarsa": "Cliff-v0"}
"""The task of an agent's varied-HP population (default: CartPole-v0 if discrete, else Pendulum-v1):
the tabular agents need one-hot observations."""


def _config(agent, overrides: dict):
    overrides = dict(overrides)
    return agent.resolve(overrides.pop("preset", "small"), **overrides)


@pytest.mark.parametrize("name", list(AGENTS))
def test_satisfies_the_protocol(name):
    agent = get_agent(name)
    assert isinstance(agent, InnerAgent)
    assert agent.DISCRETE or agent.CONTINUOUS
    assert "small" in agent.PRESETS
    for preset, config in agent.PRESETS.items():
        assert isinstance(config, agent.Config), preset
        config.validate()
        assert agent.resolve(preset) == config
    for preset in agent.REAL_TASK_PRESETS.values():
        assert preset in agent.PRESETS
    # The hyperparameter space: every varied field has a rule and a base value in the config.
    config_fields = {f.name for f in fields(agent.Config)}
    for f in agent.HParams._fields:
        assert f in hparams.RULES and f in config_fields, f
    with pytest.raises(UsageError, match="unknown .*preset 'nope'"):
        agent.resolve("nope")


def test_every_agent_has_a_learning_and_a_frozen_check():
    assert {a for a, _ in LEARNING} == set(AGENTS)
    assert {a for a, t in LEARNING if (a, t) not in FROZEN_ELSEWHERE} == set(AGENTS)


@pytest.fixture(scope="module", params=list(LEARNING), ids=[f"{a}-{t}" for a, t in LEARNING])
def population(request):
    name, task_id = request.param
    overrides, n, seed, _, _ = LEARNING[request.param]
    agent = get_agent(name)
    return request.param, train_population(agent, _config(agent, overrides), task_id, n=n, seed=seed)


def test_learns_its_real_task(population):
    key, pop = population
    _, _, _, trained_at_least, untrained_below = LEARNING[key]
    assert_learns(pop, trained_at_least=trained_at_least, untrained_below=untrained_below)


def test_stopped_member_stays_frozen(population):
    key, pop = population
    if key in FROZEN_ELSEWHERE:
        assert np.all(pop.result.steps == pop.config.max_steps)
        return
    assert_stops_per_agent_and_frozen(pop)


@pytest.mark.parametrize("name", list(AGENTS))
def test_varied_population_equals_members_trained_alone(name):
    agent = get_agent(name)
    task_id = VARIED_TASK.get(name, "CartPole-v0" if agent.DISCRETE else "Pendulum-v1")
    config = agent.resolve("small", **VARIED)
    pop = train_population(agent, config, task_id, n=3, seed=5, vary=True, stop_rule="converged")
    res = pop.result
    varied = "hidden" if "hidden" in agent.HParams._fields else agent.HParams._fields[0]
    assert len(set(np.asarray(getattr(pop.hps, varied)).tolist())) > 1, pop.hps  # the HPs really vary
    assert np.all(res.steps <= config.proxy_max_steps) and not np.any(res.diverged)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(res.params))
    for i in range(3):
        if int(res.steps[i]) < int(res.steps.max()):
            assert_stopped_member_frozen(pop, i)  # reruns member i among copies of itself
        else:  # the slowest member: alone among copies it runs exactly as long
            copies = jax.tree.map(lambda x: np.stack([x[i]] * 3), (pop.keys, pop.hps))
            alone = jax.device_get(pop.run(*copies))
            for a, b in zip(jax.tree.leaves(alone), jax.tree.leaves(res)):
                np.testing.assert_array_equal(a[i], b[i])
