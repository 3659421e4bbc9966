"""Shape strata of a varied-HP population: each stratum draws its shape fields from one part of their
range, the strata together draw what the unstratified rule draws, and the stratified runner gives
every agent the HPs, seed and result of its own draw."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synthenv.agents import ddqn, ppo, q_learning
from synthenv.agents.hparams import HParams, strata
from synthenv.errors import UsageError
from synthenv.meta.config import TrainSEConfig, make_config
from synthenv.meta.generation import make_generation
from synthenv.meta.population import Stratum, make_stratified_runner
from synthenv.meta.strategies import ESConfig, PaperNES

SMALL = ddqn.PRESETS["small"]  # hidden 16 (varied 5-48), 1 layer (varied 1-2), batch 32 (varied 11-96)


def test_strata_are_every_combination_of_parts_in_complementary_pairs():
    cells = strata(HParams, SMALL, True, ("layers", "hidden"))
    assert cells == [{"layers": 0, "hidden": 0}, {"layers": 1, "hidden": 1},
                     {"layers": 1, "hidden": 0}, {"layers": 0, "hidden": 1}]
    assert [ddqn.max_shapes(SMALL, True, c) for c in cells] == [
        ddqn.Shapes(16, 1, 96), ddqn.Shapes(48, 2, 96), ddqn.Shapes(16, 2, 96), ddqn.Shapes(48, 1, 96)]
    eight = strata(HParams, SMALL, True, ("layers", "hidden", "batch_size"))
    for a, b in zip(eight[::2], eight[1::2]):  # each pair differs in every field
        assert all(a[f] != b[f] for f in a)
    assert len(eight) == 8 and len({tuple(c.values()) for c in eight}) == 8
    assert len(strata(ppo.HParams, ppo.PRESETS["small"], True, ("layers", "hidden", "batch_size"))) == 4
    assert strata(HParams, SMALL, False, ("layers", "hidden")) == [None]  # fixed HPs: one population
    # A small population splits only as far as each stratum keeps MIN_STRATUM_AGENTS (8) agents.
    assert len(strata(HParams, SMALL, True, ("layers", "hidden"), agents=80)) == 4
    assert strata(HParams, SMALL, True, ("layers", "hidden"), agents=31) == [{"layers": 0}, {"layers": 1}]
    assert strata(HParams, SMALL, True, ("layers", "hidden"), agents=15) == [None]
    assert strata(q_learning.HParams, next(iter(q_learning.PRESETS.values())), True, ("layers", "hidden")) == [None]


def test_strata_draw_the_unstratified_distribution_within_their_shapes():
    """8,000 agents, agent i in stratum i % 8 with key i, against the same keys unstratified: every
    draw fits its stratum's shapes, the layer counts split exactly in half, each size's share below
    its base is one half (as for the log-uniform rule), the quantiles agree, and the learning rate,
    which no stratum splits, is the very same draw."""
    fields = ("layers", "hidden", "batch_size")
    cells = strata(HParams, SMALL, True, fields)
    n = 8000
    keys = jax.random.split(jax.random.key(0), n)
    plain = jax.vmap(lambda k: ddqn.sample_hparams(k, SMALL, True))(keys)
    per_cell = [jax.vmap(lambda k, c=c: ddqn.sample_hparams(k, SMALL, True, c))(keys[i::len(cells)])
                for i, c in enumerate(cells)]
    for cell, hp in zip(cells, per_cell):
        shapes = ddqn.max_shapes(SMALL, True, cell)
        assert int(hp.hidden.max()) <= shapes.hidden and int(hp.batch_size.max()) <= shapes.batch_size
        assert np.all(np.asarray(hp.layers) == shapes.layers)
    stratified = jax.tree.map(lambda *xs: np.stack(xs, axis=1).reshape(-1), *per_cell)  # back in key order
    np.testing.assert_array_equal(stratified.lr, np.asarray(plain.lr))
    assert np.mean(stratified.layers == 2) == 0.5 and abs(np.mean(np.asarray(plain.layers) == 2) - 0.5) < 0.02
    for field, base in (("hidden", SMALL.hidden), ("batch_size", SMALL.batch_size)):
        ours, theirs = np.asarray(getattr(stratified, field)), np.asarray(getattr(plain, field))
        assert abs(np.mean(ours < base) - np.mean(theirs < base)) < 0.03
        qs = [0.1, 0.25, 0.5, 0.75, 0.9]
        assert np.allclose(np.quantile(ours, qs), np.quantile(theirs, qs), rtol=0.1, atol=1)
        assert ours.min() >= theirs.min() - 1 and ours.max() <= theirs.max() + 1


class HP(NamedTuple):
    x: jax.Array


def stand_in_strata(n):
    """Stratum s scores ``100 s + hp.x + key``: the score says which stratum ran the agent and
    which draw it used."""
    def member_of(s):
        def member(flat, hp, key):
            return 100.0 * s + hp.x + jax.random.uniform(key) + 0 * flat[0]
        return member
    return [Stratum(member_of(s), lambda k: HP(jax.random.uniform(k))) for s in range(n)]


def test_the_stratified_runner_gives_each_agent_its_draw_in_its_stratum():
    n_strata, draws = 3, np.array([4, 0, 0, 7, 2, 5, 1, 4])
    run = jax.jit(lambda f, hk, ak: make_stratified_runner(stand_in_strata(n_strata), 2)(f, hk, ak, draws))
    hp_keys, agent_keys = jax.random.split(jax.random.key(1), 8), jax.random.split(jax.random.key(2), 8)
    got = np.asarray(run(jnp.zeros((len(draws), 3)), hp_keys, agent_keys))
    x = np.asarray(jax.vmap(jax.random.uniform)(hp_keys)) + np.asarray(jax.vmap(jax.random.uniform)(agent_keys))
    np.testing.assert_allclose(got, 100.0 * (draws % n_strata) + x[draws], rtol=1e-6)


def test_a_generation_spreads_candidates_and_unperturbed_agents_evenly_over_strata():
    """Four strata, eight mirrored pairs with two agents each, 32 unperturbed agents: the unperturbed
    score is the mean stratum (1.5 x 100 exactly), and the two signs of a pair land in the same strata."""
    class SignGap(PaperNES):
        def tell(self, key, state, cands, scores, unperturbed_mean, eps):
            n = self.c.population
            return state, jnp.abs(scores[:n] - scores[n:])

    def member_of(s):
        def member(flat, hp, key):
            return 100.0 * s + hp.x, jnp.int32(1), jnp.int32(1), jnp.bool_(False), jnp.int32(1)
        return member

    algorithm = [Stratum(member_of(s), lambda k: HP(jax.random.uniform(k) * 0)) for s in range(4)]
    strategy = SignGap(ESConfig(population=8, sigma=0.1, mirrored=True), 5)
    gen = make_generation(strategy, [algorithm], 32, n_devices=2, agents_per_member=2)
    stats = gen(strategy.init(jax.random.key(0), jnp.zeros(5)), jax.random.key(1))[2]
    assert float(stats.score_unperturbed) == pytest.approx(150.0)
    assert float(stats.fitness_max) == 0.0


def test_shape_strata_are_validated_and_old_run_files_keep_one_population():
    with pytest.raises(UsageError, match="shape_strata: 'depth' is not a shape-setting field"):
        make_config(env="CartPole-v0", shape_strata=("depth",))
    with pytest.raises(UsageError, match="names a field twice"):
        make_config(env="CartPole-v0", shape_strata=("layers", "layers"))
    with pytest.raises(UsageError, match="common_draws 'population'"):
        make_config(env="CartPole-v0", common_draws="population")
    assert make_config(env="CartPole-v0", common_draws="population", shape_strata=()).shape_strata == ()
    config = make_config(env="CartPole-v0")
    assert config.shape_strata == ("layers", "hidden")
    assert TrainSEConfig.from_dict(config.to_dict()) == config
    old = config.to_dict()
    del old["shape_strata"]  # a run directory written before shape strata existed resumes as it ran
    assert TrainSEConfig.from_dict(old).shape_strata == ()
