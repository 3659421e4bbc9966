"""The resolved configuration of one SE-learning run, with per-task defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from synthenv.agents.common import with_protocol
from synthenv.agents.ddqn import PRESETS, DDQNConfig, resolve
from synthenv.agents.registry import check_supports
from synthenv.errors import UsageError
from synthenv.meta.strategies import ESConfig
from synthenv.proxies.se import SEConfig
from synthenv.tasks.registry import get_spec

# Our defaults per task (see docs/defaults.md for how and why they differ from the paper).
TASK_DEFAULTS = {
    "CartPole-v0": dict(se=SEConfig(hidden=83, activation="leaky_relu"), preset="small"),
    "CartPole-v1": dict(se=SEConfig(hidden=83, activation="leaky_relu"), preset="small"),
    "Acrobot-v1": dict(se=SEConfig(hidden=167, activation="prelu"), preset="small"),
}


@dataclass(frozen=True)
class TrainSEConfig:
    """Everything that determines an SE-learning run (written to ``config.json``)."""

    env: str = "CartPole-v0"
    seed: int = 0
    generations: int = 200
    """Generation cap (the paper ran 200 iterations)."""
    stop_when_solved: bool = True
    """Stop once agents trained on the unperturbed SE reach the task's solved threshold."""
    solved_streak: int = 1
    """Generations in a row whose unperturbed score must reach the threshold to call the SE solved
    (paper: 1; more guards against a lucky draw of agents)."""
    es: ESConfig = field(default_factory=ESConfig)
    se: SEConfig = field(default_factory=SEConfig)
    preset: str = "small"
    agent: DDQNConfig = field(default_factory=DDQNConfig)
    """The DDQN config; its protocol fields (stop rule, step caps) apply to every inner agent."""
    inner_agents: tuple[str, ...] = ("ddqn",)
    """Algorithms the inner agents use, cycled one per generation (algorithm-invariant SEs)."""
    vary_hparams: bool = True
    """Train each agent with hyperparameters drawn from the paper's varied-HP distribution."""
    unperturbed_agents: int = 16
    """Agents trained on the unperturbed SE per generation (paper: one per member)."""
    agents_per_member: int = 1
    """Agents trained per perturbed candidate, their mean score is its fitness (paper: 1)."""
    eval_episodes: int = 10

    def validate(self) -> None:
        spec = get_spec(self.env)
        if spec.continuous:
            raise UsageError(f"SEs are implemented for discrete-action tasks only; {spec.id} is continuous")
        if not self.inner_agents:
            raise UsageError("inner_agents must name at least one agent")
        for name in self.inner_agents:
            check_supports(name, spec.continuous, spec.id)
        self.es.validate()
        self.se.validate()
        self.agent.validate()
        if self.generations < 1:
            raise UsageError(f"generations must be >= 1, got {self.generations}")
        if self.solved_streak < 1:
            raise UsageError(f"solved_streak must be >= 1, got {self.solved_streak}")
        if self.agents_per_member < 1:
            raise UsageError(f"agents_per_member must be >= 1, got {self.agents_per_member}")
        if self.unperturbed_agents < 1:
            raise UsageError(f"unperturbed_agents must be >= 1, got {self.unperturbed_agents}")
        if self.eval_episodes < 1:
            raise UsageError(f"eval_episodes must be >= 1, got {self.eval_episodes}")

    def agent_config(self, name: str):
        """The config of inner agent ``name``: ``agent`` for DDQN; another agent's ``small`` preset
        with the run's training protocol."""
        if name == "ddqn":
            return self.agent
        return with_protocol(check_supports(name, False, self.env).resolve("small"), asdict(self.agent))

    def to_dict(self) -> dict:
        """JSON-ready (tuples as lists)."""
        return {**asdict(self), "inner_agents": list(self.inner_agents)}

    @staticmethod
    def from_dict(d: dict) -> "TrainSEConfig":
        d = dict(d)
        d["inner_agents"] = tuple(d.get("inner_agents", ("ddqn",)))
        return TrainSEConfig(es=ESConfig(**d.pop("es")), se=SEConfig(**d.pop("se")),
                             agent=DDQNConfig(**d.pop("agent")), **d)


def make_config(env: str = "CartPole-v0", preset: str | None = None, es: dict | None = None,
                se: dict | None = None, agent: dict | None = None, **top) -> TrainSEConfig:
    """Resolve a config: task defaults, then the preset, then explicit overrides."""
    get_spec(env)
    defaults = TASK_DEFAULTS.get(env, {})
    preset = preset or defaults.get("preset", "small")
    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; known presets: {', '.join(PRESETS)}")
    es_cfg = replace(ESConfig(), **(es or {}))
    top.setdefault("unperturbed_agents", es_cfg.population)
    if "inner_agents" in top:
        top["inner_agents"] = tuple(top["inner_agents"])
    cfg = TrainSEConfig(env=env, preset=preset, es=es_cfg,
                        se=replace(defaults.get("se", SEConfig()), **(se or {})),
                        agent=resolve(preset, **(agent or {})), **top)
    cfg.validate()
    return cfg
