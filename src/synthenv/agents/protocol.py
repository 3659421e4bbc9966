"""The inner-agent contract: what every agent module in ``synthenv.agents.registry`` provides.

The generation step, ``evaluate`` and the experiments use agents only through this protocol, so any
module that satisfies it (checked by ``tests/test_agent_contract.py`` for every registered agent)
trains on every environment of the environment protocol (``synthenv.environment``).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Protocol, runtime_checkable

import jax

from synthenv.agents.common import StopConfig, TrainLoop, TrainResult

Train = Callable[[jax.Array, Any, NamedTuple], TrainResult]
"""``train(key, env_params, hparams) -> TrainResult``: pure, usable under ``vmap``."""
Policy = Callable[[Any, NamedTuple, jax.Array], jax.Array]
"""``policy(trained_params, hparams, obs) -> action``: greedy / deterministic."""


@runtime_checkable
class InnerAgent(Protocol):
    """An RL algorithm as the outer loop trains it: config, presets, hyperparameter space, training."""

    Config: type[StopConfig]
    """A frozen dataclass (subclass of ``StopConfig``) with ``validate()``."""
    PRESETS: Mapping[str, StopConfig]
    """Named configs; ``small`` is the default for work on proxies."""
    REAL_TASK_PRESETS: Mapping[str, str]
    """The preset ``evaluate --env`` trains with on a real task, by task id or ``"discrete"`` /
    ``"continuous"`` (``small`` where absent): each solves its task for a new user."""
    HParams: type[NamedTuple]
    """The per-agent values that may differ inside one vmapped population: the hyperparameter space,
    each field drawn by the rule of ``synthenv.agents.hparams``."""
    DISCRETE: bool
    CONTINUOUS: bool
    """The action spaces the agent supports."""

    def resolve(self, preset: str, **overrides) -> StopConfig:
        """``PRESETS[preset]`` with overrides; a one-line ``UsageError`` for an unknown preset."""

    def max_shapes(self, config: StopConfig, vary: bool, stratum: dict | None = None) -> Any:
        """The static maximum shapes a (varied-HP) population is allocated at (that of one shape
        stratum, ``synthenv.agents.hparams.strata``)."""

    def sample_hparams(self, key: jax.Array, config: StopConfig, vary: bool, stratum: dict | None = None) -> NamedTuple:
        """The config's values, or (``vary``) a draw of the paper's varied-HP distribution (within
        one shape stratum)."""

    def make_train(self, config: StopConfig, env, shapes: Any, stop_rule: str = "converged",
                   threshold: float = 0.0) -> TrainLoop:
        """A pure ``train`` on ``env`` (any gymnax environment) as a ``TrainLoop`` (callable as
        ``Train``; its pieces let test episodes run between training episodes); ``stop_rule``
        "converged" (on an SE), "budget" (on a synthetic bandit: exactly ``proxy_max_steps``),
        "threshold" (on the real task, with the task's ``threshold``) or "none" (the caps only)."""

    def make_policy(self, config: StopConfig) -> Policy:
        """The trained agent's greedy action."""
