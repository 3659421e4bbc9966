"""The paper's score transforms 0-7, checked against hand-computed weights."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from synthenv.meta.score_transforms import TRANSFORMS, ranks_best_first, transform

SCORES = jnp.array([1.0, 0.0, 5.0])


def t(scores, kind, unperturbed_mean=0.0):
    return np.asarray(transform(jnp.asarray(scores, jnp.float32), kind, jnp.float32(unperturbed_mean)))


def shuffled_16():
    """16 distinct scores in a scrambled order, and each one's rank (1 = best)."""
    rng = np.random.default_rng(0)
    scores = rng.permutation(np.linspace(-3.0, 12.0, 16)).astype(np.float32)
    rank = np.empty(16, int)
    rank[np.argsort(-scores)] = np.arange(1, 17)
    return scores, rank


def test_all_ids_listed():
    assert sorted(TRANSFORMS) == list(range(8))
    with pytest.raises(ValueError):
        t(SCORES, 8)


def test_ranks_best_first():
    np.testing.assert_array_equal(np.asarray(ranks_best_first(SCORES)), [2, 3, 1])
    # Ties are broken by position.
    np.testing.assert_array_equal(np.asarray(ranks_best_first(jnp.array([2.0, 2.0, 1.0]))), [1, 2, 3])


def test_transform_0_linear():
    np.testing.assert_allclose(t(SCORES, 0), [0.2, 0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(t([-2.0, 2.0, 0.0, 1.0], 0), [0.0, 1.0, 0.5, 0.75], atol=1e-6)


def test_transform_1_rank():
    np.testing.assert_allclose(t(SCORES, 1), [0.5, 0.0, 1.0], atol=1e-6)
    scores, rank = shuffled_16()
    np.testing.assert_allclose(t(scores, 1), (16 - rank) / 15, atol=1e-6)


def test_transform_3_table_n16():
    # u(rank) = max(0, log(9) - log(rank)), normalised (sum then max): by rank 1..8 the paper's table,
    # ranks 9..16 get 0.
    expected_by_rank = [1.0, 0.685, 0.500, 0.369, 0.268, 0.185, 0.114, 0.054] + [0.0] * 8
    scores, rank = shuffled_16()
    w = t(scores, 3)
    np.testing.assert_allclose(w, np.array(expected_by_rank)[rank - 1], atol=1e-3)
    assert w[np.argmax(scores)] == pytest.approx(1.0)
    assert np.all(w >= 0)


def test_transform_3_small():
    # n=3: u = max(0, log(2.5) - log(rank)) = [log 2.5, log 1.25, 0] by rank.
    u = np.array([np.log(1.25), 0.0, np.log(2.5)])
    np.testing.assert_allclose(t(SCORES, 3), u / u.max(), atol=1e-6)


def test_transform_2_zero_mean_best_one():
    scores, rank = shuffled_16()
    w = t(scores, 2)
    assert np.mean(w) == pytest.approx(0.0, abs=1e-6)
    assert w.max() == pytest.approx(1.0)
    assert w[np.argmax(scores)] == pytest.approx(1.0)
    # By hand: (u/sum(u) - 1/n) / max.
    u = np.maximum(0.0, np.log(9.0) - np.log(rank))
    v = u / u.sum() - 1.0 / 16
    np.testing.assert_allclose(w, v / v.max(), atol=1e-5)
    # Monotone in rank; the bottom half (u = 0) share the same negative weight.
    assert np.all(np.diff(w[np.argsort(rank)]) <= 1e-7)
    assert np.all(w[rank > 8] < 0)


def test_transform_4_single_best():
    np.testing.assert_array_equal(t(SCORES, 4), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(t([3.0, -1.0, 2.0, 0.5], 4), [1.0, 0.0, 0.0, 0.0])


def test_transform_5_single_best_above_unperturbed():
    np.testing.assert_array_equal(t(SCORES, 5, 4.0), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(t(SCORES, 5, 5.0), [0.0, 0.0, 0.0])  # not strictly above
    np.testing.assert_array_equal(t(SCORES, 5, 6.0), [0.0, 0.0, 0.0])


def test_transform_6_excess_max_normalised():
    # unperturbed mean 0.5: excess [0.5, 0, 4.5] -> / 4.5
    np.testing.assert_allclose(t(SCORES, 6, 0.5), [0.5 / 4.5, 0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(t(SCORES, 6, -1.0), [2 / 6, 1 / 6, 1.0], atol=1e-6)
    np.testing.assert_array_equal(t(SCORES, 6, 5.0), [0.0, 0.0, 0.0])  # nobody above: no update
    np.testing.assert_array_equal(t(SCORES, 6, 9.0), [0.0, 0.0, 0.0])


def test_transform_7_excess_sum_normalised():
    np.testing.assert_allclose(t(SCORES, 7, 0.5), [0.1, 0.0, 0.9], atol=1e-6)
    np.testing.assert_allclose(t(SCORES, 7, -1.0), [2 / 9, 1 / 9, 6 / 9], atol=1e-6)
    assert t(SCORES, 7, 0.5).sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(t(SCORES, 7, 5.0), [0.0, 0.0, 0.0])


@pytest.mark.parametrize("kind", range(8))
def test_weights_finite_with_equal_scores(kind):
    # A flat population (e.g. every member diverged to the same worst score) must not give NaN.
    w = t([2.0, 2.0, 2.0, 2.0], kind, 1.0)
    assert np.all(np.isfinite(w))
