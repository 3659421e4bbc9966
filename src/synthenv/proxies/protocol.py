"""The proxy protocol: what a kind of learned proxy (an SE today, reward networks next) provides.

A proxy kind is a gymnax environment class for a real task whose params carry the proxy's weights,
plus the facts the ES, model files, ``synthenv.load`` and the CLI need: its model-file kind, its
architecture config (validated) and how to build, initialise and bind it. Adding a kind is one
module with a :class:`ProxyEnv` class and one entry in ``synthenv.proxies.registry``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import jax

from synthenv.tasks.registry import TaskSpec


@runtime_checkable
class ProxyEnv(Protocol):
    """A gymnax ``Environment`` for ``spec``'s task whose params carry proxy weights."""

    spec: TaskSpec
    config: Any  # the architecture (a frozen dataclass)
    weights: Any  # the bound weights (``default_params``), or None

    def init(self, key: jax.Array) -> Any:
        """Fresh weights."""

    def params_for(self, weights: Any) -> Any:
        """The env params that make the proxy step with ``weights`` (traceable, vmappable)."""

    def bind(self, weights: Any) -> "ProxyEnv":
        """The same proxy with ``weights`` as its default params."""


@dataclass(frozen=True)
class ProxyKind:
    """One kind of proxy, as the registry lists it."""

    name: str
    """Short name (``se``)."""
    file_kind: str
    """The ``kind`` written into model files (``synthetic_env``)."""
    config_type: type
    """The architecture dataclass; ``config_type(**metadata["architecture"])`` rebuilds it."""
    env_type: type
    """The :class:`ProxyEnv` class; ``env_type(real_task, config)`` is the unbound proxy env and
    raises ``UsageError`` for an unsupported task or an invalid config."""
    summary: str = ""
    stop_rule: str = "converged"
    """How agents trained on it stop (``synthenv.agents.common.make_stop_test``): an SE, the paper's
    convergence test; a synthetic bandit, a fixed budget; an RN, its tests on the real task."""
    real_dynamics: bool = False
    """Agents on it step the real task's dynamics (an RN): their training steps are real-env steps,
    and they train to the real task's threshold rather than to a fixed budget on the proxy."""
    fresh_steps: dict[str, int] = field(default_factory=dict)
    """Steps a fresh agent of each named algorithm trains on a learned proxy of this kind by default
    (``evaluate``), where that is more than the agent's own ``proxy_max_steps``: the inner loop trains
    agents as briefly as a generation can afford; a learned proxy's users can afford more."""

    def wrap(self, task, config, weights) -> ProxyEnv:
        """The proxy env for ``task`` with ``weights`` bound (a ready-to-step gymnax environment)."""
        return self.env_type(task, config).bind(weights)
