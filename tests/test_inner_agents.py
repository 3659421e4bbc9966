"""Algorithm-invariant SE learning: ``inner_agents`` cycles algorithms per generation, and the SE's
score is the worst algorithm's latest unperturbed score."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

import synthenv
from synthenv.agents import ppo
from synthenv.errors import UsageError
from synthenv.meta.config import TrainSEConfig, make_config
from synthenv.meta.run import train_se


@pytest.fixture
def cheap_ppo(monkeypatch):
    """PPO's small preset with a step cap a test can afford."""
    monkeypatch.setitem(ppo.PRESETS, "small", replace(ppo.PRESETS["small"], proxy_max_steps=256, rollout_steps=64))


def test_cycles_agents_and_scores_by_the_worst(tmp_path, cheap_ppo):
    config = make_config(env="CartPole-v0", es={"population": 2}, se={"hidden": 8},
                         agent={"proxy_max_steps": 150, "proxy_min_steps": 0}, unperturbed_agents=2,
                         generations=2, stop_when_solved=False, inner_agents=["ddqn", "ppo"])
    assert config.inner_agents == ("ddqn", "ppo")
    ppo_config = config.agent_config("ppo")
    assert ppo_config.proxy_max_steps == 256  # PPO keeps its own step budget ...
    assert ppo_config.proxy_min_steps == 0 and ppo_config.stop_window == config.agent.stop_window  # ... and the run's protocol
    out = tmp_path / "run"
    train_se(config, out)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["inner_agent"] for r in rows] == ["ddqn", "ppo"]
    assert rows[1]["train_steps_max"] <= 256 + 64 and rows[0]["train_steps_max"] <= 150
    # Generation 0 has no PPO score yet, so no SE score; generation 1's is min(ddqn's, ppo's).
    se = synthenv.load(out / "se.safetensors")
    assert se.metadata["generation"] == 1
    assert se.metadata["score"] == pytest.approx(min(rows[0]["score_unperturbed"], rows[1]["score_unperturbed"]))
    assert TrainSEConfig.from_dict(json.loads((out / "config.json").read_text())) == config


def test_rejects_unknown_or_continuous_only_agents():
    with pytest.raises(UsageError, match="unknown agent 'nope'"):
        make_config(env="CartPole-v0", inner_agents=["ddqn", "nope"])
    with pytest.raises(UsageError, match="at least one"):
        make_config(env="CartPole-v0", inner_agents=[])


def test_inner_agent_presets():
    """``NAME:PRESET`` picks an inner agent's preset; evaluate then defaults to it on that SE."""
    from synthenv.agents import sac
    from synthenv.experiments.evaluate import agent_config

    config = make_config(env="CartPole-v0", inner_agents=["ddqn", "sac:standard", "ppo"])
    assert config.agent_config("sac:standard").hidden == sac.PRESETS["standard"].hidden
    assert config.agent_config("sac:standard").proxy_min_steps == config.agent.proxy_min_steps
    assert config.agent_config("ppo") == config.agent_config("ppo:small")
    assert config.agent_config("ddqn") == config.agent

    trained_with = config.to_dict()
    assert agent_config(sac, "sac", None, "CartPole-v0", trained_with)[1] == "standard"
    assert agent_config(sac, "sac", "small", "CartPole-v0", trained_with)[1] == "small"
    with pytest.raises(UsageError, match="unknown preset 'huge' for agent 'sac'; known presets: small, tiny, standard"):
        make_config(env="CartPole-v0", inner_agents=["ddqn", "sac:huge"])
