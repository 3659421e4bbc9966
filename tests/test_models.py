"""The SE shipped in ``models/``: a CartPole-v0 SE learned with DDQN, PPO and SAC together
(``models/README.md``). Fresh agents of each algorithm, trained only on it with their presets'
hyperparameters, must solve the real task."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthenv.experiments.evaluate import evaluate_agents

MODEL = Path(__file__).resolve().parents[1] / "models" / "cartpole-v0-invariant.safetensors"


@pytest.mark.parametrize("agent", ["ddqn", "ppo", "sac"])
def test_shipped_se_trains_each_algorithm(agent):
    result = evaluate_agents(proxy=MODEL, env="CartPole-v0", agent=agent, agents=6, episodes=5, seed=0)
    assert result["preset"] == ("small" if agent == "ddqn" else "tiny")  # the SE's own inner presets
    assert result["mean_return"] >= 195.0, result["returns_per_agent"]
    assert max(result["train_steps"]) <= 4000  # the SE's step caps: 2,000 (DDQN, SAC), 4,000 (PPO tiny)
