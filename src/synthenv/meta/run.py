"""Learn an SE: the generation loop with its run directory, progress display and resume.

Run directory (every file written atomically after every generation):
``config.json`` (the resolved config), ``metrics.jsonl`` (one line per generation),
``se.safetensors`` (the best SE so far by unperturbed score, which is the solved one if the run
solved) and ``state.safetensors`` (the ES state and counters; written last, it is the commit point).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from synthenv.agents.registry import get_agent, split_entry
from synthenv.errors import UsageError
from synthenv.io import model_files
from synthenv.io.atomic import write_json_atomic, write_text_atomic
from synthenv.meta.config import TrainSEConfig
from synthenv.meta.generation import make_confirmation, make_generation, make_member
from synthenv.meta.strategies import make_strategy
from synthenv.proxies.files import save_se
from synthenv.proxies.se import SyntheticEnv
from synthenv.tasks.registry import make_task

CONFIG_FILE, METRICS_FILE, SE_FILE, STATE_FILE = "config.json", "metrics.jsonl", "se.safetensors", "state.safetensors"
STATE_KIND = "es_run_state"


class SELearner:
    """The compiled pieces of one run: initial ES state, the compiled generation steps and per inner
    agent one confirmation of the solved test.

    With ``inner_mix`` "cycle", generation ``g`` trains ``config.inner_agents[g % n]`` only (one
    compiled step per agent); with "together", every generation trains all of them (one step).
    """

    def __init__(self, config: TrainSEConfig, n_devices: int | None = None, from_file: bool = True):
        """``from_file=False``: a resumed run whose saved ES state replaces the initial one, so the
        ``init_se`` file is neither needed nor read."""
        config.validate(check_files=from_file)
        self.config = config
        self.task = make_task(config.env)
        self.se = SyntheticEnv(self.task, config.se)
        root = jax.random.key(config.seed)
        self.init_key, self.gen_key = jax.random.split(root)
        flat0, self.unravel = ravel_pytree(self.se.init(self.init_key))
        if config.init_se is not None and from_file:
            flat0 = ravel_pytree(config.initial_se().params)[0]
        self.strategy = make_strategy(config.es, flat0.size)
        members, samplers = zip(*(self._member(name) for name in config.inner_agents))
        n = len(members)
        self.groups = [[j] for j in range(n)] if config.inner_mix == "cycle" else [list(range(n))]
        self.steps = tuple(make_generation(self.strategy, [members[j] for j in group], [samplers[j] for j in group],
                                           config.unperturbed_agents, n_devices, config.agents_per_member)
                           for group in self.groups)
        self.confirms = tuple(make_confirmation(m, s, config.confirm_agents, n_devices) if config.confirm_agents
                              else None for m, s in zip(members, samplers))
        self.init_state = self.strategy.init(self.init_key, flat0)

    def _member(self, name: str):
        c = self.config
        agent, agent_config = get_agent(split_entry(name)[0]), c.agent_config(name)
        shapes = agent.max_shapes(agent_config, c.vary_hparams)
        member = make_member(agent, self.se, self.task, self.unravel, agent_config, shapes, c.eval_episodes)
        return member, lambda k: agent.sample_hparams(k, agent_config, c.vary_hparams)

    def generation(self, es_state, generation: int):
        """Run generation number ``generation``: ``(es_state, evaluated_mean, stats)``."""
        return self.steps[generation % len(self.steps)](es_state, self.key_for(generation))

    def agents_of(self, generation: int) -> list[int]:
        """The inner agents (indices into ``config.inner_agents``) generation ``generation`` trains."""
        return self.groups[generation % len(self.groups)]

    def confirm(self, flat_se, generation: int, slot: int) -> tuple[float, int]:
        """Mean score of ``confirm_agents`` fresh agents of inner agent number ``slot`` trained on
        ``flat_se`` and the real-env steps their tests took (compiled on first use: most runs need it a
        few times at most)."""
        key = jax.random.fold_in(self.key_for(generation), 1 if slot == self.agents_of(generation)[0] else 2 + slot)
        score, real_steps = self.confirms[slot](flat_se, key)
        return score.item(), int(real_steps)

    def key_for(self, generation: int) -> jax.Array:
        return jax.random.fold_in(self.gen_key, generation)

    def compile(self) -> float:
        """Compile the generation steps; returns seconds."""
        t = time.perf_counter()
        self.steps = tuple(s.lower(self.init_state, self.key_for(0)).compile() for s in self.steps)
        return time.perf_counter() - t


def _state_tensors(es_state, best_se) -> dict[str, np.ndarray]:
    leaves = jax.tree_util.tree_flatten_with_path(es_state)[0]
    out = {f"es{jax.tree_util.keystr(path)}": np.asarray(leaf) for path, leaf in leaves}
    out["best_se"] = np.asarray(best_se)
    return out


def _restore_state(template, tensors: dict, path: Path):
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    restored = []
    for p, leaf in leaves:
        name = f"es{jax.tree_util.keystr(p)}"
        if name not in tensors or tensors[name].shape != np.shape(leaf):
            raise UsageError(f"{path} does not match this run's ES state ({name}); was the run made by "
                             "another synthenv version?")
        restored.append(jnp.asarray(tensors[name], dtype=jnp.asarray(leaf).dtype))
    return jax.tree_util.tree_unflatten(treedef, restored)


def check_out_dir(out: Path, resume: bool) -> None:
    """Refuse to overwrite another run; refuse to resume nothing."""
    has_run = (out / CONFIG_FILE).exists()
    if resume and not has_run:
        raise UsageError(f"nothing to resume in {out} (no {CONFIG_FILE})")
    if not resume and has_run:
        raise UsageError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if not resume and out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty; choose another --out")


def load_run_config(out: Path) -> TrainSEConfig:
    try:
        return TrainSEConfig.from_dict(json.loads((out / CONFIG_FILE).read_text()))
    except (json.JSONDecodeError, TypeError, KeyError) as e:
        raise UsageError(f"{out / CONFIG_FILE} is not a valid synthenv run config ({e})") from None


def _confirm(learner: SELearner, flat_se, generation: int, trained: dict[str, float]) -> tuple[dict[str, float], int]:
    """A second, independent sample of agents of every inner algorithm on this very SE: per algorithm,
    the mean over its fresh agents pooled with this generation's unperturbed ones (if it trained any);
    and the real-env steps the fresh agents' tests took."""
    c, by_agent, steps = learner.config, {}, 0
    for slot, name in enumerate(c.inner_agents):
        score, real_steps = learner.confirm(flat_se, generation, slot)
        steps += real_steps
        if name in trained:
            n_old, n_new = c.unperturbed_agents, c.confirm_agents
            score = (n_old * trained[name] + n_new * score) / (n_old + n_new)
        by_agent[name] = score
    return by_agent, steps


def train_se(config: TrainSEConfig, out: str | Path, resume: bool = False, n_devices: int | None = None,
             on_event: Callable[[str, dict], None] | None = None) -> dict:
    """Learn an SE into ``out``; returns a summary. ``on_event(kind, data)`` drives progress output:
    kinds "compiled", "generation", "done"."""
    out = Path(out)
    check_out_dir(out, resume)
    if resume and replace(load_run_config(out), generations=config.generations) != config:
        raise UsageError(f"{out} holds a run with another config; resume it with that config "
                         "(only the generation cap may change)")
    emit = on_event or (lambda kind, data: None)
    saved_state = resume and (out / STATE_FILE).exists()  # none if interrupted before generation 0 ended
    learner = SELearner(config, n_devices, from_file=not saved_state)
    threshold = config.solved_score()

    es_state, done, metrics = learner.init_state, 0, []
    latest: dict[str, float] = {}  # the last score of each inner agent (confirmed where it was)
    best = {"score": -np.inf, "generation": -1}
    best_se = learner.strategy.mean(es_state)
    totals = {"real_env_steps": 0, "wall_seconds": 0.0}
    solved = False
    if resume:
        if saved_state:
            tensors, meta = model_files.load(out / STATE_FILE, kind=STATE_KIND)
            es_state = _restore_state(es_state, tensors, out / STATE_FILE)
            best_se = jnp.asarray(tensors["best_se"])
            done, best, totals, solved = meta["generations_done"], meta["best"], meta["totals"], meta["solved"]
            latest = meta.get("latest_scores", {})
        lines = (out / METRICS_FILE).read_text().splitlines() if (out / METRICS_FILE).exists() else []
        metrics = [m for m in map(json.loads, lines) if m["generation"] < done]
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / CONFIG_FILE, config.to_dict())

    compile_s = learner.compile()
    emit("compiled", {"compile_seconds": compile_s, "generations_done": done})
    while done < config.generations and not (solved and config.stop_when_solved):
        t = time.perf_counter()
        es_state, evaluated, stats = learner.generation(es_state, done)
        trained = {config.inner_agents[j]: float(x)
                   for j, x in zip(learner.agents_of(done), stats.unperturbed_by_agent)}
        stats = {k: v.item() for k, v in stats._asdict().items() if k != "unperturbed_by_agent"}
        unperturbed, real_steps = stats["score_unperturbed"], int(stats["real_env_steps"])
        latest.update(trained)
        by_agent = None
        if config.confirm_agents and unperturbed >= threshold:
            by_agent, confirm_steps = _confirm(learner, evaluated, done, trained)
            real_steps += confirm_steps
            latest.update(by_agent)
        confirmed = None if by_agent is None else min(by_agent.values())
        seconds = time.perf_counter() - t
        totals = {"real_env_steps": totals["real_env_steps"] + real_steps,
                  "wall_seconds": totals["wall_seconds"] + seconds}
        # The SE's score: the worst inner agent's latest score (once every agent has run); all of them
        # measured on this SE when it was confirmed, so "solved" is always one SE's verdict.
        score = min(latest.values()) if len(latest) == len(config.inner_agents) else -np.inf
        solved_now = ((confirmed is not None and confirmed >= threshold) if config.confirm_agents
                      else score >= threshold)
        solved = solved or solved_now
        # Confirmed scores (more agents, one SE) outrank unconfirmed ones for the saved SE.
        if np.isfinite(score) and (confirmed is not None, score) >= (best.get("confirmed", False), best["score"]):
            best, best_se = {"score": score, "generation": done, "confirmed": confirmed is not None}, evaluated
            save_se(out / SE_FILE, learner.se, learner.unravel(best_se), config.to_dict(), done, score)
        row = {"generation": done, "inner_agent": ",".join(trained), **stats, "unperturbed_by_agent": trained,
               "real_env_steps": totals["real_env_steps"],
               "real_env_steps_generation": real_steps, "score_confirmed": confirmed,
               "confirmed_by_agent": by_agent,
               "wall_seconds": seconds,
               "solved": solved_now}
        metrics.append(row)
        write_text_atomic(out / METRICS_FILE, "".join(json.dumps(m) + "\n" for m in metrics))
        done += 1
        model_files.save(out / STATE_FILE, _state_tensors(es_state, best_se), {
            "kind": STATE_KIND, "generations_done": done, "best": best, "totals": totals, "solved": solved,
            "latest_scores": latest})
        emit("generation", {**row, "generations_done": done, "generations": config.generations,
                            "total_wall_seconds": totals["wall_seconds"]})
    summary = {"out": str(out), "generations_done": done, "solved": solved, "best_score": best["score"],
               "best_generation": best["generation"], "real_env_steps": totals["real_env_steps"],
               "wall_seconds": totals["wall_seconds"], "compile_seconds": compile_s}
    emit("done", summary)
    return summary
