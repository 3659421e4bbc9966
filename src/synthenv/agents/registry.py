"""Inner agents by name: every module listed satisfies ``synthenv.agents.protocol.InnerAgent``."""

from __future__ import annotations

import importlib

from synthenv.agents.protocol import InnerAgent
from synthenv.errors import UsageError

# name -> module under synthenv.agents
AGENTS: dict[str, str] = {
    "ddqn": "ddqn",
    "ppo": "ppo",
    "sac": "sac",
    "dueling_ddqn": "dueling_ddqn",
    "td3_discrete": "td3_discrete",
    "td3": "td3",
    "q_learning": "q_learning",
    "sarsa": "sarsa",
}


def get_agent(name: str) -> InnerAgent:
    """The agent module for ``name``; a one-line error for an unknown name."""
    try:
        module = AGENTS[name]
    except KeyError:
        raise UsageError(f"unknown agent {name!r}; known agents: {', '.join(AGENTS)}") from None
    return importlib.import_module(f"synthenv.agents.{module}")  # an InnerAgent: tests/test_agent_contract.py


def check_supports(name: str, continuous: bool, env_id: str) -> InnerAgent:
    """The agent module, after checking it can act in the task's action space."""
    agent = get_agent(name)
    if continuous and not agent.CONTINUOUS:
        raise UsageError(f"agent {name!r} needs discrete actions; {env_id} has continuous actions")
    if not continuous and not agent.DISCRETE:
        raise UsageError(f"agent {name!r} needs continuous actions; {env_id} has discrete actions")
    return agent


def split_entry(entry: str) -> tuple[str, str | None]:
    """``"sac:tiny"`` -> ``("sac", "tiny")``; ``"sac"`` -> ``("sac", None)`` (an inner-agent entry)."""
    name, _, preset = entry.partition(":")
    return name, preset or None


def check_entry(entry: str, continuous: bool, env_id: str) -> InnerAgent:
    """The agent module of an inner-agent entry ``NAME[:PRESET]``, after checking both exist."""
    name, preset = split_entry(entry)
    agent = check_supports(name, continuous, env_id)
    if preset is not None and preset not in agent.PRESETS:
        raise UsageError(f"unknown preset {preset!r} for agent {name!r}; known presets: {', '.join(agent.PRESETS)}")
    return agent
