"""The generation step's bookkeeping, with stand-in members (no RL): each candidate's fitness is the
mean over its ``agents_per_member`` agents, and the two signs of a mirrored pair share HPs and seeds."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synthenv.meta.generation import make_generation
from synthenv.meta.population import Stratum
from synthenv.meta.strategies import ESConfig, PaperNES

DIMS, UNPERTURBED = 5, 2


class HP(NamedTuple):
    x: jax.Array


def sample(key):
    return HP(jax.random.uniform(key))


def stats_of(score_fn, strategy, k):
    def member(flat, hp, key):
        return score_fn(flat, hp, key), jnp.int32(1), jnp.int32(1), jnp.bool_(False), jnp.int32(1)

    gen = make_generation(strategy, [[Stratum(member, sample)]], UNPERTURBED, n_devices=1, agents_per_member=k)
    state = strategy.init(jax.random.key(0), jnp.full((DIMS,), 0.5))
    return gen(state, jax.random.key(1))[2], state


@pytest.mark.parametrize("k", [1, 3])
def test_fitness_belongs_to_its_candidate(k):
    """Score = sum of the SE's weights: every agent of a candidate scores the same, so the fitness the
    strategy sees must be exactly each candidate's own sum (no mix-up by the repeat / reshape)."""
    strategy = PaperNES(ESConfig(population=4, sigma=0.1, mirrored=False), DIMS)
    stats, state = stats_of(lambda flat, hp, key: jnp.sum(flat), strategy, k)
    cands, _, _ = strategy.ask(jax.random.split(jax.random.key(1), 4)[0], state)
    sums = np.asarray(jnp.sum(cands, axis=1))
    assert float(stats.fitness_mean) == pytest.approx(sums.mean(), rel=1e-6)
    assert float(stats.fitness_max) == pytest.approx(sums.max(), rel=1e-6)
    assert float(stats.score_unperturbed) == pytest.approx(0.5 * DIMS, rel=1e-6)


class SignGap(PaperNES):
    """Reports |F+ − F−| per member as its score, to see whether the two signs were treated alike."""

    def tell(self, key, state, cands, scores, unperturbed_mean, eps):
        n = self.c.population
        return state, jnp.abs(scores[:n] - scores[n:])


@pytest.mark.parametrize("k", [1, 3])
def test_mirrored_signs_share_hparams_and_seeds(k):
    strategy = SignGap(ESConfig(population=4, sigma=0.1, mirrored=True), DIMS)
    stats, _ = stats_of(lambda flat, hp, key: hp.x + jax.random.uniform(key), strategy, k)
    assert float(stats.fitness_max) < 1e-6  # equal up to float rounding of the mean


class Spread(PaperNES):
    """Reports max - min over all candidates' scores as every member's score."""

    def tell(self, key, state, cands, scores, unperturbed_mean, eps):
        return state, jnp.full((self.c.population,), jnp.max(scores) - jnp.min(scores))


@pytest.mark.parametrize("mirrored", [False, True])
def test_population_common_draws_give_every_candidate_the_same_agents(mirrored):
    """A score of only the agent's HPs and seed: with ``common_draws="population"`` every candidate
    scores the same (they train the same agents); with "pairs" candidates of different pairs differ."""
    strategy = Spread(ESConfig(population=4, sigma=0.1, mirrored=mirrored), DIMS)

    def member(flat, hp, key):
        return hp.x + jax.random.uniform(key), jnp.int32(1), jnp.int32(1), jnp.bool_(False), jnp.int32(1)

    spread = {}
    for draws in ("pairs", "population"):
        gen = make_generation(strategy, [[Stratum(member, sample)]], UNPERTURBED, n_devices=1, agents_per_member=2,
                              common_draws=draws)
        state = strategy.init(jax.random.key(0), jnp.zeros(DIMS))
        spread[draws] = float(gen(state, jax.random.key(1))[2].fitness_max)
    assert spread["population"] < 1e-6 < 0.01 < spread["pairs"]


def test_agents_of_one_candidate_differ():
    """With k agents per candidate the fitness is a mean of k different draws, so it varies less."""
    strategy = PaperNES(ESConfig(population=64, sigma=0.1, mirrored=False), DIMS)
    spread = {}
    for k in (1, 4):
        def member(flat, hp, key):
            return hp.x, jnp.int32(1), jnp.int32(1), jnp.bool_(False), jnp.int32(1)

        gen = make_generation(strategy, [[Stratum(member, sample)]], UNPERTURBED, n_devices=1, agents_per_member=k)
        state = strategy.init(jax.random.key(0), jnp.zeros(DIMS))
        # The fitness max of 64 candidates: a mean of 4 uniforms rarely comes close to 1.
        spread[k] = float(gen(state, jax.random.key(1))[2].fitness_max)
    assert spread[1] > 0.9 and spread[4] < spread[1]


def test_algorithms_together_score_every_candidate_with_each():
    """Two stand-in algorithms scoring ``sum(flat)`` and ``10 + sum(flat)``: a candidate's fitness is the
    mean over both, the SE's unperturbed score the lower algorithm's, both reported."""
    strategy = PaperNES(ESConfig(population=4, sigma=0.1, mirrored=False), DIMS)

    def member_of(offset):
        def member(flat, hp, key):
            return offset + jnp.sum(flat), jnp.int32(1), jnp.int32(1), jnp.bool_(False), jnp.int32(1)
        return member

    gen = make_generation(strategy, [[Stratum(member_of(0.0), sample)], [Stratum(member_of(10.0), sample)]],
                          UNPERTURBED, n_devices=1)
    state = strategy.init(jax.random.key(0), jnp.full((DIMS,), 0.5))
    stats = gen(state, jax.random.key(1))[2]
    cands, _, _ = strategy.ask(jax.random.split(jax.random.key(1), 4)[0], state)
    sums = np.asarray(jnp.sum(cands, axis=1))
    assert float(stats.fitness_mean) == pytest.approx(sums.mean() + 5.0, rel=1e-6)
    assert np.allclose(np.asarray(stats.unperturbed_by_agent), [0.5 * DIMS, 10 + 0.5 * DIMS])
    assert float(stats.score_unperturbed) == pytest.approx(0.5 * DIMS)
    assert int(stats.real_env_steps) == 2 * (4 + UNPERTURBED)


def test_confirmation_is_the_mean_over_fresh_agents():
    """The confirmation trains ``n`` agents with their own HP draws and seeds on one SE: with a stand-in
    member scoring ``sum(flat) + hp.x`` its result is exactly that mean over the draws it made."""
    from synthenv.meta.generation import make_confirmation

    def member(flat, hp, key):
        return jnp.sum(flat) + hp.x, jnp.int32(1), jnp.int32(1), jnp.bool_(False), jnp.int32(7)

    confirm = make_confirmation([Stratum(member, sample)], 6, n_devices=2)
    flat, key = jnp.full((DIMS,), 0.5), jax.random.key(3)
    score, real_steps = confirm(flat, key)
    draws = jax.vmap(sample)(jax.random.split(jax.random.split(key)[0], 6)).x
    assert float(score) == pytest.approx(0.5 * DIMS + float(jnp.mean(draws)), rel=1e-6)
    assert int(real_steps) == 6 * 7
    assert len(set(np.asarray(draws).round(6))) == 6  # six different agents, not one repeated
