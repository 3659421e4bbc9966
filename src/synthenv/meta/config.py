"""The resolved configuration of one SE-learning run, with per-task defaults."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from synthenv.agents.common import with_protocol
from synthenv.agents.ddqn import PRESETS, DDQNConfig, resolve
from synthenv.agents.hparams import SHAPE_FIELDS
from synthenv.agents.registry import check_entry, split_entry
from synthenv.errors import UsageError
from synthenv.meta.strategies import ESConfig
from synthenv.proxies.bandit import BanditConfig
from synthenv.proxies.registry import PROXIES
from synthenv.proxies.se import SEConfig
from synthenv.tasks.registry import get_spec

# Our defaults per task (see docs/defaults.md for how and why they differ from the paper).
# CartPole (docs/defaults.md): every inner agent trains exactly 1,000 steps on an SE (no convergence
# stop an SE could game); two agents score each candidate (one varied-HP agent's return is near
# bimodal); a mirrored pair moves the ES by its score difference; 128 fresh agents confirm a solve;
# the ES restarts from a fresh SE every 50 generations without one (runs that stall seldom recover);
# a fresh SE starts with a done bias of -1 (its episodes run to the cap: such starts solve more often).
_FIXED_BUDGET = dict(proxy_max_steps=1000, proxy_min_steps=1000)
_CARTPOLE = dict(se=SEConfig(hidden=83, activation="leaky_relu", done_bias_init=-1.0), preset="small",
                 es=dict(mirrored_update="difference"), agent=_FIXED_BUDGET,
                 top=dict(agents_per_member=2, confirm_agents=128, restart_after=50))
# CartPole-v1 and Acrobot-v1 learn a synthetic contextual bandit by default (docs/defaults.md): it
# solved every seed measured 2-6 times faster than the SE, and DDQN, PPO and SAC agents trained on a
# bandit learned with DDQN alone; the SE stays one option away (proxy_kind="se": these entries with
# proxy_kind dropped; the bandit's own settings are BANDIT_DEFAULTS below).
TASK_DEFAULTS = {
    # CartPole-v0: a target of 197 over the 144 unperturbed and confirming agents, above the threshold
    # 195, so that 16 fresh agents clear 190 too (their mean spreads by about +-14 near 195).
    "CartPole-v0": dict(_CARTPOLE, top=dict(_CARTPOLE["top"], target_score=197.0)),
    # CartPole-v1 (500 steps, threshold 475): CartPole's defaults, with the SE's episodes capped at
    # 200 steps (at 500, a 1,000-step budget is two episodes) and longer attempts (restart after 100,
    # up to 300 generations); candidates are scored on the real task's full 500 steps.
    "CartPole-v1": dict(_CARTPOLE, se=replace(_CARTPOLE["se"], max_steps=200),
                        top=dict(_CARTPOLE["top"], restart_after=100, generations=300, proxy_kind="bandit")),
    # The paper's tuned Acrobot NES, each mirrored pair moving the mean by its score difference; two
    # agents per candidate (Acrobot fitness is close to bimodal); a fixed budget of 1,000 steps; a
    # target above the threshold, confirmed by 64 fresh agents, so that fresh agents clear it too
    # (docs/defaults.md).
    "Acrobot-v1": dict(se=SEConfig(hidden=167, activation="prelu"), preset="small",
                       es=dict(sigma=0.0114, lr=0.727, score_transform=3, mirrored_update="difference"),
                       agent=_FIXED_BUDGET,
                       top=dict(agents_per_member=2, target_score=-90.0, confirm_agents=64, proxy_kind="bandit")),
}

# What changes in our defaults when the proxy is a synthetic bandit: DDQN trains 2,000 steps (with
# 1,000 one varied-HP draw in 16 to 30 did not learn on bandits whose other agents all did; 2,000
# removed most of those failures); CartPole-v1 restarts only a stalled attempt (after 40 generations
# still below 50: bandits whose reward prefers one action everywhere teach agents to fall after 9
# steps, and the ES can sit there for 50 generations; attempts that move solve after 35-100
# generations, and fixed restarts after 100 cut two attempts close to solving), and checks a solve with 32 fresh
# PPO and 32 fresh SAC agents as well (the bandit is learned with DDQN alone, which costs a tenth of
# learning it with all three; about one bandit in two taught one of them less well), restarting an attempt
# whose bandit failed that check three times (the ES does not steer a bandit that teaches DDQN alone
# towards one that teaches PPO and SAC: such an attempt failed it 8 times in 16 generations); on Acrobot the ES step of
# CartPole (the tuned SE's sigma 0.0114 is too small a step for the bandit's few weights).
_BANDIT_BUDGET = dict(agent=dict(proxy_max_steps=2000, proxy_min_steps=2000))
BANDIT_DEFAULTS = {
    "CartPole-v0": _BANDIT_BUDGET,
    "CartPole-v1": dict(_BANDIT_BUDGET, top=dict(restart_after=40, restart_below=50.0, confirm_also=("ppo", "sac"),
                                                 restart_after_failed_checks=3)),
    "Acrobot-v1": dict(_BANDIT_BUDGET, es=dict(sigma=0.05, lr=1.0)),
}

# The paper's protocol (Ferreira et al. 2022, the SE success curves): its BOHB-tuned NES and DDQN per
# task, fixed agent HPs, one agent per candidate, the single-sample solved test, no minimum of steps.
# Tasks the paper did not learn SEs for take CartPole-v0's settings.
_PAPER_CARTPOLE = dict(se=SEConfig(hidden=83, activation="leaky_relu"), preset="cartpole",
                       es=dict(strategy="nes", population=16, sigma=0.0124, lr=0.148, score_transform=3,
                               mirrored=True),
                       agent=dict(proxy_min_steps=0),
                       top=dict(vary_hparams=False, confirm_agents=0, agents_per_member=1,
                                common_draws="pairs", generations=200))
PAPER_DEFAULTS = {
    "CartPole-v0": _PAPER_CARTPOLE,
    "CartPole-v1": _PAPER_CARTPOLE,
    "Acrobot-v1": dict(_PAPER_CARTPOLE, se=SEConfig(hidden=167, activation="prelu"), preset="acrobot",
                       es=dict(_PAPER_CARTPOLE["es"], sigma=0.0114, lr=0.727)),
}
PROTOCOLS = {"synthenv": TASK_DEFAULTS, "paper": PAPER_DEFAULTS}
"""Named sets of per-task defaults: ours (``synthenv``) and the paper's (``paper``)."""

INNER_MIXES = ("cycle", "together")
SHAPE_STRATA = ("layers", "hidden")
"""The default split of a varied population (docs/defaults.md): one stratum per layer count and
half of the hidden size's range; a masked population costs what its largest member does."""
PROXY_KINDS = {k.name: file_kind for file_kind, k in PROXIES.items() if not k.real_dynamics}
"""``TrainSEConfig.proxy_kind`` -> the model-file kind: the registry's proxies agents train on alone."""
COMMON_DRAWS = ("pairs", "population")


def check_outer_loop(config, spec) -> None:
    """The checks an SE and an RN run share: inner agents, how they mix, common draws, the ES."""
    if not config.inner_agents:
        raise UsageError("inner_agents must name at least one agent")
    for entry in config.inner_agents:
        check_entry(entry, spec.continuous, spec.id)
    check_once("inner_agents", config.inner_agents, "an agent")
    if config.inner_mix not in INNER_MIXES:
        raise UsageError(f"inner_mix must be one of {', '.join(INNER_MIXES)}, got {config.inner_mix!r}")
    if config.common_draws not in COMMON_DRAWS:
        raise UsageError(f"common_draws must be one of {', '.join(COMMON_DRAWS)}, got {config.common_draws!r}")
    check_shape_strata(config)
    config.es.validate()


def check_once(field: str, names: tuple[str, ...], what: str) -> None:
    """``names`` (the value of config ``field``) names no ``what`` twice."""
    if len(set(names)) < len(names):
        raise UsageError(f"{field} names {what} twice: {','.join(names)}")


def check_shape_strata(config) -> None:
    for name in config.shape_strata:
        if name not in SHAPE_FIELDS:
            raise UsageError(f"shape_strata: {name!r} is not a shape-setting field; choose from {', '.join(SHAPE_FIELDS)}")
    check_once("shape_strata", config.shape_strata, "a field")
    if config.shape_strata and config.vary_hparams and config.common_draws == "population":
        raise UsageError("common_draws 'population' scores every candidate with the same few agents, which shape "
                         "strata would hold in the same few strata every generation; use shape_strata=() with it")


@dataclass(frozen=True)
class TrainSEConfig:
    """Everything that determines an SE-learning run (written to ``config.json``)."""

    env: str = "CartPole-v0"
    seed: int = 0
    generations: int = 200
    """Generation cap (the paper ran 200 iterations)."""
    stop_when_solved: bool = True
    """Stop once agents trained on the unperturbed SE reach the task's solved threshold."""
    target_score: float | None = None
    """The score (mean real return of the unperturbed agents) at which the SE counts as solved;
    None: the task's solved threshold. A margin above the threshold buys fresh agents a margin too."""
    confirm_agents: int = 16
    """When the unperturbed agents reach the solved threshold, train this many more fresh agents on
    the same SE; it is solved only if the mean over both groups reaches the threshold (0: the paper's
    single test, which a lucky draw of agents passes)."""
    confirm_also: tuple[str, ...] = ()
    """Algorithms (``NAME`` or ``NAME:PRESET``) that do not train in the ES but must confirm a solve
    too: once the inner agents' confirmation passes, ``confirm_also_agents`` fresh varied-HP agents
    of each train on the same proxy, and it is solved only if each algorithm's mean reaches the
    solved score (a proxy learned with one algorithm, checked for others at a fraction of the cost)."""
    confirm_also_agents: int = 32
    es: ESConfig = field(default_factory=ESConfig)
    proxy_kind: str = "se"
    """What the ES learns: ``se``, a synthetic environment (``se``'s architecture), or ``bandit``, a
    synthetic contextual bandit (one-step episodes, ``bandit``'s architecture; ``synthenv.proxies.bandit``)."""
    se: SEConfig = field(default_factory=SEConfig)
    bandit: BanditConfig = field(default_factory=BanditConfig)
    preset: str = "small"
    agent: DDQNConfig = field(default_factory=DDQNConfig)
    """The DDQN config; its protocol fields (stop rule, step caps) apply to every inner agent."""
    inner_agents: tuple[str, ...] = ("ddqn",)
    """Algorithms the inner agents use (algorithm-invariant SEs); each ``NAME`` or ``NAME:PRESET``
    (default preset: ``small``; for ``ddqn``, ``agent``)."""
    inner_mix: str = "cycle"
    """How several inner algorithms share the generations: ``cycle``, one algorithm per generation in
    turn; ``together``, every generation trains each candidate with every algorithm (fitness: the
    mean), so each ES step is taken for all of them."""
    init_se: str | None = None
    """Start the ES from this SE file's weights (same task and architecture) instead of a random SE,
    e.g. to make an SE learned with DDQN algorithm-invariant."""
    vary_hparams: bool = True
    """Train each agent with hyperparameters drawn from the paper's varied-HP distribution."""
    unperturbed_agents: int = 16
    """Agents trained on the unperturbed SE per generation (paper: one per member)."""
    agents_per_member: int = 1
    """Agents trained per perturbed candidate, their mean score is its fitness (paper: 1)."""
    common_draws: str = "pairs"
    """Common random numbers: ``pairs``, the two signs of a mirrored pair train agents with the same HPs
    and seeds; ``population``, every candidate of a generation trains the same agents."""
    shape_strata: tuple[str, ...] = SHAPE_STRATA
    """With varied HPs: the shape-setting fields whose ranges split each algorithm's agents into
    strata (``synthenv.agents.hparams.strata``), each allocated at its own maximum shapes; ``()``: one
    population at the maximum of every range."""
    eval_episodes: int = 10
    fitness_horizon: int | None = None
    """Cut the real test episodes that score the candidates and the unperturbed agents at this many
    steps (None: the task's cap): the ES learns on the shorter horizon, and a solve is confirmed on the
    full one by the confirming agents alone (needs ``confirm_agents`` and ``fitness_target``)."""
    fitness_target: float | None = None
    """With ``fitness_horizon``: the unperturbed score (at that horizon) that calls the confirmation."""
    restart_after: int = 0
    """Restart the ES from a fresh random SE every this many generations without a solve (0: never);
    the best SE of every attempt competes for the run's SE. Runs from ``init_se`` do not restart."""
    restart_below: float | None = None
    """With ``restart_after``: restart only an attempt whose unperturbed agents never scored this
    much (a stalled start); None: restart every attempt that has not solved."""
    restart_after_failed_checks: int = 0
    """Restart an attempt once this many of its ``confirm_also`` checks failed (the inner agents
    confirmed a solve, another algorithm fell short): a proxy that one algorithm learns from and
    another does not rarely turns into one they both do (0: never)."""

    kind = "se"
    proxy_file = "se.safetensors"

    def validate(self, check_files: bool = True) -> None:
        """Raise ``UsageError`` naming the first invalid value; ``check_files``: also that the
        ``init_se`` file exists (a resumed run no longer needs it)."""
        spec = get_spec(self.env)
        if spec.continuous:
            raise UsageError(f"SEs are implemented for discrete-action tasks only; {spec.id} is continuous")
        check_outer_loop(self, spec)
        if self.proxy_kind not in PROXY_KINDS:
            raise UsageError(f"unknown proxy_kind {self.proxy_kind!r}; choose one of {', '.join(PROXY_KINDS)}")
        self.architecture.validate()
        if check_files and self.init_se is not None and not Path(self.init_se).is_file():
            raise UsageError(f"init_se: no SE file at {self.init_se}")
        self.agent.validate()
        if self.generations < 1:
            raise UsageError(f"generations must be >= 1, got {self.generations}")
        if self.target_score is not None and not spec.min_return <= self.target_score < float("inf"):
            raise UsageError(f"target_score must be a finite return >= {spec.min_return} for {spec.id}, "
                             f"got {self.target_score}")
        if self.confirm_agents < 0:
            raise UsageError(f"confirm_agents must be >= 0, got {self.confirm_agents}")
        if self.confirm_also:
            if not self.confirm_agents:
                raise UsageError("confirm_also needs confirm_agents > 0: it checks a confirmed solve")
            if self.confirm_also_agents < 1:
                raise UsageError(f"confirm_also_agents must be >= 1, got {self.confirm_also_agents}")
            names = [split_entry(e)[0] for e in self.confirm_also]
            for entry in self.confirm_also:
                check_entry(entry, False, self.env)
            inner = {split_entry(e)[0] for e in self.inner_agents}
            if len(set(names)) < len(names) or inner & set(names):
                raise UsageError(f"confirm_also names an algorithm twice or one of the inner agents: "
                                 f"{', '.join(self.confirm_also)}")
        if self.agents_per_member < 1:
            raise UsageError(f"agents_per_member must be >= 1, got {self.agents_per_member}")
        if self.unperturbed_agents < 1:
            raise UsageError(f"unperturbed_agents must be >= 1, got {self.unperturbed_agents}")
        if self.eval_episodes < 1:
            raise UsageError(f"eval_episodes must be >= 1, got {self.eval_episodes}")
        if self.fitness_horizon is not None:
            if not 1 <= self.fitness_horizon < spec.max_steps:
                raise UsageError(f"fitness_horizon must be between 1 and {spec.max_steps - 1} (the task's cap "
                                 f"{spec.max_steps} is the default), got {self.fitness_horizon}")
            if self.fitness_target is None or not math.isfinite(self.fitness_target):
                raise UsageError("fitness_horizon needs fitness_target, the unperturbed score at that horizon "
                                 "that calls the confirmation")
            if not self.confirm_agents:
                raise UsageError("fitness_horizon needs confirm_agents > 0: the solve is confirmed on the full horizon")
        elif self.fitness_target is not None:
            raise UsageError("fitness_target applies only with fitness_horizon")
        if self.restart_after < 0:
            raise UsageError(f"restart_after must be >= 0 (0: never restart), got {self.restart_after}")
        if self.restart_below is not None and not math.isfinite(self.restart_below):
            raise UsageError(f"restart_below must be a finite score (or None), got {self.restart_below}")
        if self.restart_after_failed_checks < 0:
            raise UsageError(f"restart_after_failed_checks must be >= 0 (0: never), got "
                             f"{self.restart_after_failed_checks}")
        if self.restart_after_failed_checks and not self.confirm_also:
            raise UsageError("restart_after_failed_checks counts failed confirm_also checks; it needs confirm_also")
        if (self.restart_after or self.restart_after_failed_checks) and self.init_se is not None:
            raise UsageError("restarts (restart_after, restart_after_failed_checks) start from a fresh random SE; "
                             "they do not combine with init_se")

    def initial_se(self, loaded=None):
        """The SE file ``init_se`` as a ``LoadedProxy`` (``loaded``: the file already read), checked
        against this run's task and architecture (after ``validate``, which checks that it exists)."""
        from synthenv.proxies.files import load_proxy

        loaded = loaded or load_proxy(self.init_se, env_id=self.env)
        if loaded.kind.file_kind != PROXY_KINDS[self.proxy_kind]:
            raise UsageError(f"{self.init_se} holds a {loaded.kind.file_kind!r}, not a {PROXY_KINDS[self.proxy_kind]!r}")
        if loaded.config != self.architecture:
            raise UsageError(f"init_se: {self.init_se} has the architecture {asdict(loaded.config)}, "
                             f"this run {asdict(self.architecture)}")
        return loaded

    @property
    def architecture(self) -> SEConfig | BanditConfig:
        """The architecture of the proxy this run learns (``se`` or ``bandit``, by ``proxy_kind``)."""
        return self.bandit if self.proxy_kind == "bandit" else self.se

    def proxy_env(self, task):
        """The (unbound) proxy environment this run learns, for ``task``: an SE of ``se``'s
        architecture, or a synthetic bandit of ``bandit``'s."""
        return PROXIES[PROXY_KINDS[self.proxy_kind]].env_type(task, self.architecture)

    def initial_weights(self):
        """The ``init_se`` file's weights to start from (None: a fresh SE)."""
        return None if self.init_se is None else self.initial_se().weights

    def make_member(self, agent, proxy, task, unravel, agent_config, shapes):
        """One population member: an agent trained on the SE, scored on the real task."""
        from synthenv.meta.generation import make_member

        return make_member(agent, proxy, task, unravel, agent_config, shapes, self.eval_episodes)

    def solved_score(self) -> float:
        return get_spec(self.env).solved_threshold if self.target_score is None else self.target_score

    def trigger_score(self) -> float:
        """The unperturbed score that calls the confirmation (the solved score, or at a shorter
        ``fitness_horizon`` its ``fitness_target``)."""
        return self.solved_score() if self.fitness_horizon is None else self.fitness_target

    def agent_config(self, entry: str):
        """The config of inner agent ``entry`` (``NAME[:PRESET]``): ``agent`` for plain DDQN; else the
        named preset (default ``small``) with the run's training protocol."""
        name, preset = split_entry(entry)
        if name == "ddqn" and preset is None:
            return self.agent
        module = check_entry(entry, False, self.env)
        return with_protocol(module.resolve(preset or "small"), asdict(self.agent))

    def to_dict(self) -> dict:
        """JSON-ready (tuples as lists)."""
        return {**asdict(self), "inner_agents": list(self.inner_agents), "confirm_also": list(self.confirm_also),
                "shape_strata": list(self.shape_strata)}

    @staticmethod
    def from_dict(d: dict) -> "TrainSEConfig":
        d = dict(d)
        d["inner_agents"] = tuple(d.get("inner_agents", ("ddqn",)))
        d["confirm_also"] = tuple(d.get("confirm_also", ()))
        d["shape_strata"] = tuple(d.get("shape_strata", ()))  # runs written before strata: one population
        d.pop("solved_streak", None)  # written by runs before confirm_agents replaced it
        return TrainSEConfig(es=ESConfig(**d.pop("es")), se=SEConfig(**d.pop("se")),
                             bandit=BanditConfig(**d.pop("bandit", {})),
                             agent=DDQNConfig(**d.pop("agent")), **d)


def make_config(env: str = "CartPole-v0", preset: str | None = None, es: dict | None = None,
                se: dict | None = None, agent: dict | None = None, protocol: str = "synthenv",
                bandit: dict | None = None, **top) -> TrainSEConfig:
    """Resolve a config: the task defaults of ``protocol`` (``PROTOCOLS``), then the preset, then
    explicit overrides."""
    get_spec(env)
    if protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    defaults = PROTOCOLS[protocol].get(env, {})
    initial = None
    if top.get("init_se") is not None and Path(top["init_se"]).is_file():
        from synthenv.proxies.files import load_proxy

        initial = load_proxy(top["init_se"], env_id=env)
        if top.get("proxy_kind") is None:  # a run from a file learns the file's kind
            top["proxy_kind"] = next((k for k, v in PROXY_KINDS.items() if v == initial.kind.file_kind), "se")
    kind = top.get("proxy_kind") or defaults.get("top", {}).get("proxy_kind", "se")
    if protocol == "synthenv" and kind == "bandit":
        extra = BANDIT_DEFAULTS.get(env, {})
        defaults = {**defaults, **{k: ({**defaults.get(k, {}), **v} if isinstance(v, dict) else v)
                                   for k, v in extra.items()}}
    preset = preset or defaults.get("preset", "small")
    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; known presets: {', '.join(PRESETS)}")
    es_cfg = replace(ESConfig(), **{**defaults.get("es", {}), **(es or {})})
    if "mirrored_update" not in (es or {}) and not (es_cfg.strategy == "nes" and es_cfg.mirrored):
        es_cfg = replace(es_cfg, mirrored_update="best_sign")  # a task default that does not apply here
    default_top = dict(defaults.get("top", {}))
    if top.get("init_se") is not None:
        default_top.pop("restart_after", None)  # a task default that does not apply to a run from a file
    top = {**default_top, **top}
    top.setdefault("unperturbed_agents", es_cfg.population)
    for key in ("inner_agents", "confirm_also", "shape_strata"):
        if key in top:
            top[key] = tuple(top[key])
    # A run from a file takes the file's architecture (``initial_se`` below checks its kind).
    own = initial.config if initial is not None else None
    se_base = own if isinstance(own, SEConfig) else defaults.get("se", SEConfig())
    bandit_base = own if isinstance(own, BanditConfig) else BanditConfig()
    cfg = TrainSEConfig(env=env, preset=preset, es=es_cfg,
                        se=replace(se_base, **(se or {})), bandit=replace(bandit_base, **(bandit or {})),
                        agent=resolve(preset, **{**defaults.get("agent", {}), **(agent or {})}), **top)
    cfg.validate()
    if initial is not None:
        cfg.initial_se(initial)  # --se-* overrides must agree with the file
    return cfg
