"""The resolved configuration of one SE-learning run, with per-task defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from synthenv.agents.ddqn import PRESETS, DDQNConfig, resolve
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
    es: ESConfig = field(default_factory=ESConfig)
    se: SEConfig = field(default_factory=SEConfig)
    preset: str = "small"
    agent: DDQNConfig = field(default_factory=DDQNConfig)
    vary_hparams: bool = True
    """Train each agent with hyperparameters drawn from the paper's varied-HP distribution."""
    unperturbed_agents: int = 16
    """Agents trained on the unperturbed SE per generation (paper: one per member)."""
    eval_episodes: int = 10

    def validate(self) -> None:
        get_spec(self.env)
        self.es.validate()
        self.se.validate()
        self.agent.validate()
        if self.generations < 1:
            raise UsageError(f"generations must be >= 1, got {self.generations}")
        if self.unperturbed_agents < 1:
            raise UsageError(f"unperturbed_agents must be >= 1, got {self.unperturbed_agents}")
        if self.eval_episodes < 1:
            raise UsageError(f"eval_episodes must be >= 1, got {self.eval_episodes}")

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "TrainSEConfig":
        d = dict(d)
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
    cfg = TrainSEConfig(env=env, preset=preset, es=es_cfg,
                        se=replace(defaults.get("se", SEConfig()), **(se or {})),
                        agent=resolve(preset, **(agent or {})), **top)
    cfg.validate()
    return cfg
