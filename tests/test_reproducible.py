"""Runs are reproducible: same seed, same bytes; a resumed run (also after a kill mid-write) ends identical."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file

import synthenv
from synthenv.meta.config import make_config
from synthenv.meta.run import train_se

# Columns that must match between runs (everything but timing).
TIMING = {"wall_seconds"}


@pytest.fixture(scope="module", autouse=True)
def persistent_compile_cache(tmp_path_factory):
    """Every run here compiles the same program (the seed and generation cap are not baked in); a
    module-local persistent cache turns all compiles after the first into a cache load."""
    from jax._src import compilation_cache

    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")
    old = {n: getattr(jax.config, n) for n in names}
    compilation_cache.reset_cache()
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("jax_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    yield
    for n, v in old.items():
        jax.config.update(n, v)
    compilation_cache.reset_cache()


@pytest.fixture(scope="module")
def config():
    return make_config(env="CartPole-v0", es={"population": 2}, se={"hidden": 8}, agent={"proxy_max_steps": 200},
                       generations=3, unperturbed_agents=2)


@pytest.fixture(scope="module")
def run_a(tmp_path_factory, config) -> Path:
    """The reference: 3 generations uninterrupted."""
    out = tmp_path_factory.mktemp("a") / "run"
    summary = train_se(config, out)
    assert summary["generations_done"] == 3
    return out


def metrics(out: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING}
            for line in (out / "metrics.jsonl").read_text().splitlines()]


def metadata(path: Path) -> dict:
    with safe_open(str(path), "np") as f:
        return json.loads(f.metadata()["synthenv"])


def assert_same_tensors(p: Path, q: Path) -> None:
    a, b = load_file(str(p)), load_file(str(q))
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def assert_same_run(a: Path, b: Path) -> None:
    """Bit-identical SE file, ES state tensors and metrics (but timing)."""
    assert (b / "se.safetensors").read_bytes() == (a / "se.safetensors").read_bytes()
    assert_same_tensors(a / "state.safetensors", b / "state.safetensors")
    meta_a, meta_b = metadata(a / "state.safetensors"), metadata(b / "state.safetensors")
    for m in (meta_a, meta_b):
        m["totals"].pop("wall_seconds")
    assert meta_a == meta_b
    assert metrics(b) == metrics(a)
    assert not list(b.glob("*.tmp")) and not list(b.glob(".*.tmp"))


def test_reference_run(run_a, config):
    rows = metrics(run_a)
    assert [r["generation"] for r in rows] == [0, 1, 2]
    se = synthenv.load(run_a / "se.safetensors")
    best = max(rows, key=lambda r: r["score_unperturbed"])
    assert se.metadata["score"] == pytest.approx(best["score_unperturbed"])
    assert se.metadata["training_config"] == config.to_dict()
    state = metadata(run_a / "state.safetensors")
    assert state["generations_done"] == 3
    assert state["totals"]["real_env_steps"] == rows[-1]["real_env_steps"]


def test_same_seed_same_bytes(tmp_path, run_a, config):
    out = tmp_path / "run"
    train_se(config, out)
    assert_same_run(run_a, out)


def test_different_seed_different_se(tmp_path, run_a, config):
    out = tmp_path / "run"
    train_se(dataclasses.replace(config, seed=1), out)
    assert (out / "se.safetensors").read_bytes() != (run_a / "se.safetensors").read_bytes()
    a, b = load_file(str(run_a / "se.safetensors")), load_file(str(out / "se.safetensors"))
    assert set(a) == set(b)
    assert any(not np.array_equal(a[k], b[k]) for k in a)


def test_resume_ends_identical(tmp_path, run_a, config):
    out = tmp_path / "run"
    train_se(dataclasses.replace(config, generations=1), out)
    assert [r["generation"] for r in metrics(out)] == [0]
    summary = train_se(config, out, resume=True)
    assert summary["generations_done"] == 3
    assert_same_run(run_a, out)


def test_a_restart_starts_the_es_from_a_fresh_se_and_resumes_identical(tmp_path, config):
    """``restart_after=2``: generation 2 is the ES step from attempt 1's fresh random SE (not from
    the mean generations 0-1 reached); the run's best SE is kept over attempts; a run resumed at the
    restart ends byte-identical to one that ran through."""
    from synthenv.meta.learner import Learner

    cfg = dataclasses.replace(config, restart_after=2, stop_when_solved=False)
    learner = Learner(cfg)
    state = learner.initial_state()
    for _ in range(2):
        state = learner.advance(state).state
    best_before = state.best
    after = learner.advance(state).state
    expected = learner.generation(learner.restart_state(1), 2)[0]
    assert (after.attempt, state.attempt) == (1, 0)
    assert np.array_equal(learner.strategy.mean(after.es_state), learner.strategy.mean(expected))
    assert not np.allclose(learner.strategy.mean(learner.restart_state(1)), learner.strategy.mean(state.es_state))
    assert after.best.score >= best_before.score

    a, b = tmp_path / "a", tmp_path / "b"
    train_se(cfg, a)
    assert [r["attempt"] for r in metrics(a)] == [0, 0, 1]
    train_se(dataclasses.replace(cfg, generations=2), b)
    train_se(cfg, b, resume=True)
    assert_same_run(a, b)


def test_resume_after_a_kill_between_metrics_and_state(tmp_path, run_a, config):
    """The process died after writing generation 1's metrics line but before committing the state."""
    out = tmp_path / "run"
    train_se(dataclasses.replace(config, generations=1), out)
    bogus = {"generation": 1, "fitness_mean": -1.0, "fitness_max": -1.0, "score_unperturbed": 999.0,
             "real_env_steps": 1, "wall_seconds": 0.0}
    with open(out / "metrics.jsonl", "a") as f:
        f.write(json.dumps(bogus) + "\n")
    train_se(config, out, resume=True)
    rows = metrics(out)
    assert [r["generation"] for r in rows] == [0, 1, 2]
    assert all(r["score_unperturbed"] != 999.0 for r in rows)
    assert_same_run(run_a, out)


def test_resume_after_a_kill_before_the_first_commit(tmp_path, run_a, config):
    """The process died after generation 0 wrote its SE and metrics but before its state commit."""
    out = tmp_path / "run"
    train_se(dataclasses.replace(config, generations=1), out)
    (out / "state.safetensors").unlink()
    train_se(config, out, resume=True)
    assert_same_run(run_a, out)


def test_resume_after_a_kill_mid_write(tmp_path, run_a, config):
    """A SIGKILL while the state was being written leaves a half temporary file; resume removes it."""
    out = tmp_path / "run"
    train_se(dataclasses.replace(config, generations=1), out)
    (out / ".state.safetensors.x1y2z3.tmp").write_bytes(b"half a file")
    train_se(config, out, resume=True)
    assert_same_run(run_a, out)
    assert not list(out.glob(".*.tmp"))


def test_resume_of_a_finished_run_does_nothing(tmp_path, run_a, config):
    out = tmp_path / "run"
    train_se(config, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    summary = train_se(config, out, resume=True)
    assert summary["generations_done"] == 3
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
