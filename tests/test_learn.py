"""``learn(config)``: the outer loop in memory, no files. The run-directory layer (``train_se``) is a
layer over the same stages: with the same config both give the same SE and the same metrics."""

from __future__ import annotations

import json

import jax
import numpy as np

import synthenv
from synthenv.meta.config import make_config
from synthenv.meta.learner import GenerationRecord, learn
from synthenv.meta.run import train_se

TINY = dict(es={"population": 2}, se={"hidden": 8}, agent={"proxy_max_steps": 150, "proxy_min_steps": 0},
            unperturbed_agents=2, generations=2, stop_when_solved=False, seed=3)


def test_learn_in_memory_equals_the_run_directory(tmp_path):
    config = make_config(**TINY)
    seen = []
    weights, records = learn(config, n_devices=1, on_generation=seen.append)
    assert [r.generation for r in records] == [0, 1] and seen == records
    assert all(isinstance(r, GenerationRecord) for r in records)
    assert records[1].real_env_steps == records[0].real_env_steps + records[1].real_env_steps_generation

    train_se(config, tmp_path / "run", n_devices=1)
    saved = synthenv.load(tmp_path / "run" / "se.safetensors")
    for a, b in zip(jax.tree.leaves(weights), jax.tree.leaves(saved.weights)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    for row, record in zip(rows, records):
        expected = {k: v for k, v in record.to_json().items() if k != "wall_seconds"}
        assert {k: row[k] for k in expected} == expected

    # A key replaces the one drawn from the seed.
    other, _ = learn(config, key=jax.random.key(11), n_devices=1)
    leaves = lambda w: np.concatenate([np.ravel(x) for x in jax.tree.leaves(w)])  # noqa: E731
    assert not np.array_equal(leaves(other), leaves(weights))
