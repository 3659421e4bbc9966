"""The resolved configuration of one reward-network learning run, with per-task defaults.

The outer loop is the SE's (``synthenv.meta.learner``); what differs is the proxy (an RN of
``rn``'s architecture wrapping the real task), the inner training (a fixed budget of
``max_episodes`` episodes on the real dynamics with one real test episode after each) and the
score (``objective``, ``synthenv.meta.objectives``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from synthenv.agents.registry import check_entry, split_entry
from synthenv.errors import UsageError, require_counts
from synthenv.meta.config import SHAPE_STRATA, check_outer_loop
from synthenv.meta.objectives import OBJECTIVES
from synthenv.meta.strategies import ESConfig
from synthenv.proxies.rn import RNConfig
from synthenv.tasks.registry import get_spec

# The paper's RN sizes and inner agents per task (its table of RN experiments); other tasks take the
# agent by action space and CartPole's RN.
RN_TASK_DEFAULTS = {
    "Cliff-v0": dict(rn=RNConfig(hidden=32, activation="prelu"), inner_agents=("q_learning",)),
    "CliffWalking-v1": dict(rn=RNConfig(hidden=32, activation="prelu"), inner_agents=("q_learning",)),
    "CartPole-v0": dict(rn=RNConfig(hidden=64, activation="prelu"), inner_agents=("ddqn",)),
    "MountainCarContinuous-v0": dict(rn=RNConfig(hidden=128, activation="tanh"), inner_agents=("td3",)),
}
RN_ES_DEFAULTS = dict(strategy="nes", population=16, sigma=0.1, lr=0.5, score_transform=3, mirrored=True)
"""Rank-based utilities (transform 3): the objectives' scales differ by task and objective."""


@dataclass(frozen=True)
class TrainRNConfig:
    """Everything that determines an RN-learning run (written to ``config.json``)."""

    env: str = "CartPole-v0"
    seed: int = 0
    generations: int = 50
    objective: str = "auc"
    """``auc``, ``threshold`` or ``final`` (``synthenv.meta.objectives``)."""
    rn: RNConfig = field(default_factory=RNConfig)
    es: ESConfig = field(default_factory=lambda: ESConfig(**RN_ES_DEFAULTS))
    inner_agents: tuple[str, ...] = ("ddqn",)
    """Algorithms the inner agents use, each ``NAME`` or ``NAME:PRESET`` (default preset: ``small``)."""
    inner_mix: str = "cycle"
    max_episodes: int = 100
    """Training episodes per inner agent (each followed by one real test episode)."""
    window: int = 10
    """d: the threshold and final objectives use the mean of the last d test returns."""
    threshold: float | None = None
    """The threshold objective's return; None: the task's solved threshold."""
    vary_hparams: bool = False
    """Train the inner agents with the paper's varied hyperparameters (default: the preset's)."""
    unperturbed_agents: int = 16
    agents_per_member: int = 1
    common_draws: str = "pairs"
    shape_strata: tuple[str, ...] = SHAPE_STRATA
    """With varied HPs: the shape strata of each algorithm's agents (``TrainSEConfig.shape_strata``)."""
    target_score: float | None = None
    """An objective value at which the run stops (None: run every generation)."""
    stop_when_solved: bool = True
    confirm_agents: int = 0
    """Fresh agents that must confirm ``target_score`` on the same RN (0: the unperturbed agents' score)."""

    kind = "rn"
    proxy_file = "rn.safetensors"

    def validate(self, check_files: bool = True) -> None:
        spec = get_spec(self.env)
        if self.objective not in OBJECTIVES:
            raise UsageError(f"unknown objective {self.objective!r}; choose one of {', '.join(OBJECTIVES)}")
        check_outer_loop(self, spec)
        self.rn.validate()
        self.rn.check_task(spec)
        require_counts(self, ("generations", "max_episodes", "window", "unperturbed_agents", "agents_per_member"))
        if self.confirm_agents < 0:
            raise UsageError(f"confirm_agents must be >= 0, got {self.confirm_agents}")
        if self.threshold is not None and not spec.min_return <= self.threshold < float("inf"):
            raise UsageError(f"threshold must be a finite return >= {spec.min_return} for {spec.id}, "
                             f"got {self.threshold}")
        for entry in self.inner_agents:
            self.agent_config(entry).validate()

    def solved_score(self) -> float:
        return float("inf") if self.target_score is None else self.target_score

    fitness_horizon = None  # RNs are scored on their objective's curve, at the task's own horizon
    restart_after = 0  # an RN run does not restart its ES

    def trigger_score(self) -> float:
        return self.solved_score()

    def objective_threshold(self) -> float:
        return get_spec(self.env).solved_threshold if self.threshold is None else self.threshold

    def agent_config(self, entry: str):
        """The config of inner agent ``entry``: its preset (default ``small``) with this run's episode
        budget and window."""
        preset = split_entry(entry)[1]
        module = check_entry(entry, get_spec(self.env).continuous, self.env)
        return module.resolve(preset or "small", max_episodes=self.max_episodes, stop_window=self.window)

    def proxy_env(self, task):
        """The (unbound) RN of ``rn``'s architecture for ``task``."""
        from synthenv.proxies.rn import RewardNetEnv

        return RewardNetEnv(task, self.rn)

    def initial_weights(self):
        """Weights to start from (None: a fresh RN)."""
        return None

    def make_member(self, agent, proxy, task, unravel, agent_config, shapes):
        from synthenv.meta.generation import make_rn_member

        return make_rn_member(agent, proxy, task, unravel, agent_config, shapes, self.objective,
                              self.objective_threshold(), self.max_episodes, self.window)

    def to_dict(self) -> dict:
        return {"kind": self.kind, **asdict(self), "inner_agents": list(self.inner_agents),
                "shape_strata": list(self.shape_strata)}

    @staticmethod
    def from_dict(d: dict) -> "TrainRNConfig":
        d = dict(d)
        d.pop("kind", None)
        d["inner_agents"] = tuple(d.get("inner_agents", ("ddqn",)))
        d["shape_strata"] = tuple(d.get("shape_strata", ()))  # runs written before strata: one population
        return TrainRNConfig(es=ESConfig(**d.pop("es")), rn=RNConfig(**d.pop("rn")), **d)


def make_rn_config(env: str = "CartPole-v0", variant: str | None = None, es: dict | None = None,
                   rn: dict | None = None, **top) -> TrainRNConfig:
    """Resolve an RN config: the task's defaults, then explicit overrides (``variant`` is ``rn.variant``)."""
    spec = get_spec(env)
    defaults = RN_TASK_DEFAULTS.get(env, dict(rn=RNConfig(hidden=64, activation="prelu"),
                                              inner_agents=("td3",) if spec.continuous else ("ddqn",)))
    rn = {**(rn or {}), **({"variant": variant} if variant is not None else {})}
    top = {"inner_agents": defaults["inner_agents"], **top}
    top["inner_agents"] = tuple(top["inner_agents"])
    if "shape_strata" in top:
        top["shape_strata"] = tuple(top["shape_strata"])
    es_cfg = ESConfig(**{**RN_ES_DEFAULTS, **(es or {})})
    top.setdefault("unperturbed_agents", es_cfg.population)
    try:
        cfg = TrainRNConfig(env=env, es=es_cfg, rn=replace(defaults["rn"], **rn), **top)
    except TypeError as e:
        raise UsageError(f"invalid RN config: {e}") from None
    cfg.validate()
    return cfg
