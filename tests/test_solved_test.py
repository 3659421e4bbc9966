"""The "solved" test of a run: a generation whose unperturbed agents reach the threshold is confirmed by
fresh agents on the same SE, and the run stops only if the mean over both groups reaches it.

The generation step and the confirmation are scripted (no RL), so the bookkeeping is checked exactly.
"""

from __future__ import annotations

import json

import jax.numpy as jnp
import pytest

from synthenv.meta import run
from synthenv.meta.config import make_config
from synthenv.meta.generation import GenerationStats


def scripted(monkeypatch, unperturbed: list[float], confirmations: list[float]):
    calls = {"confirm": []}

    def generation(self, es_state, g):
        stats = GenerationStats(*(jnp.float32(x) for x in (0.0, 0.0, unperturbed[g], 100, 0, 0, 0, 0)))
        return es_state, self.strategy.mean(es_state) + g, stats

    def confirm(self, flat, g):
        calls["confirm"].append(g)
        return confirmations[len(calls["confirm"]) - 1], 50

    monkeypatch.setattr(run.SELearner, "compile", lambda self: 0.0)
    monkeypatch.setattr(run.SELearner, "generation", generation)
    monkeypatch.setattr(run.SELearner, "confirm", confirm)
    return calls


@pytest.mark.parametrize("confirm_agents", [16, 48])
def test_a_lucky_draw_is_not_solved(tmp_path, monkeypatch, confirm_agents):
    # CartPole-v0: threshold 195. Generation 1 passes with its own agents but not with the fresh ones
    # ((16 * 196 + n * 180) / (16 + n) < 195); generation 3 passes both.
    calls = scripted(monkeypatch, [150, 196, 120, 200, 200], [180, 199])
    config = make_config(se={"hidden": 8}, generations=5, unperturbed_agents=16, confirm_agents=confirm_agents)
    summary = run.train_se(config, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]

    assert calls["confirm"] == [1, 3]
    assert [r["score_confirmed"] for r in rows] == [
        None, pytest.approx((16 * 196 + confirm_agents * 180) / (16 + confirm_agents)), None,
        pytest.approx((16 * 200 + confirm_agents * 199) / (16 + confirm_agents))]
    assert [r["solved"] for r in rows] == [False, False, False, True]
    assert summary["solved"] and summary["generations_done"] == 4
    assert summary["best_generation"] == 3
    assert rows[1]["real_env_steps_generation"] == 150  # the confirmation's real-env steps count too


def test_confirmation_off_is_the_papers_single_test(tmp_path, monkeypatch):
    calls = scripted(monkeypatch, [150, 196, 120], [])
    config = make_config(se={"hidden": 8}, generations=3, confirm_agents=0)
    summary = run.train_se(config, tmp_path / "run")
    assert calls["confirm"] == []
    assert summary["solved"] and summary["generations_done"] == 2


def test_target_score_moves_the_bar(tmp_path, monkeypatch):
    """With a target above the threshold, a confirmed 196 is not enough; the confirmation is asked for
    only once the unperturbed agents reach the target."""
    calls = scripted(monkeypatch, [196, 199, 199], [196, 199])
    config = make_config(se={"hidden": 8}, generations=3, target_score=198.0)
    summary = run.train_se(config, tmp_path / "run")
    assert calls["confirm"] == [1, 2]
    assert summary["solved"] and summary["generations_done"] == 3


def test_acrobot_defaults():
    """Acrobot-v1's defaults: the paper's tuned NES, two agents per candidate, a target of -90."""
    config = make_config(env="Acrobot-v1")
    assert (config.es.sigma, config.es.lr, config.es.score_transform) == (0.0114, 0.727, 3)
    assert config.agents_per_member == 2 and config.solved_score() == -90.0
    overridden = make_config(env="Acrobot-v1", es={"sigma": 0.05}, agents_per_member=1)
    assert overridden.es.sigma == 0.05 and overridden.es.lr == 0.727 and overridden.agents_per_member == 1
    assert make_config(env="CartPole-v0").solved_score() == 195.0
