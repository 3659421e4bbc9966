"""Learn a proxy (an SE or an RN) into a run directory: the file layer over ``synthenv.meta.learner``,
with resume.

Run directory (every file written atomically after every generation):
``config.json`` (the resolved config; an RN run's has ``"kind": "rn"``), ``metrics.jsonl`` (one line
per generation), ``se.safetensors`` or ``rn.safetensors`` (the best proxy so far by score, which is
the solved one if the run solved) and ``state.safetensors`` (the run state; written last, it is the
commit point).
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from synthenv import distributed
from synthenv.errors import UsageError
from synthenv.io import model_files
from synthenv.io.atomic import remove_stale_temporaries, write_json_atomic, write_text_atomic
from synthenv.meta.config import TrainSEConfig
from synthenv.meta.rn_config import TrainRNConfig
from synthenv.meta.learner import Best, Learner, RunState
from synthenv.proxies.files import save_proxy

CONFIG_FILE, METRICS_FILE, SE_FILE, STATE_FILE = "config.json", "metrics.jsonl", "se.safetensors", "state.safetensors"
STATE_KIND = "es_run_state"


def state_tensors(state: RunState) -> tuple[dict[str, np.ndarray], dict]:
    """The run state as tensors (the ES state's leaves, named by pytree path, and the best proxy
    vector) and metadata (the counters)."""
    leaves = jax.tree_util.tree_flatten_with_path(state.es_state)[0]
    tensors = {f"es{jax.tree_util.keystr(path)}": np.asarray(leaf) for path, leaf in leaves}
    tensors["best_se"] = np.asarray(state.best_flat)
    return tensors, {
        "kind": STATE_KIND, "generations_done": state.generations_done, "best": asdict(state.best),
        "totals": {"real_env_steps": state.real_env_steps, "wall_seconds": state.wall_seconds},
        "solved": state.solved, "latest_scores": state.latest_scores, "attempt": state.attempt,
        "attempt_best": state.attempt_best, "attempt_started": state.attempt_started,
        "attempt_failed_checks": state.attempt_failed_checks}


def save_state(path: Path, state: RunState) -> None:
    """The run state as a safetensors file (``state_tensors``)."""
    model_files.save(path, *state_tensors(state))


def load_state(path: Path, template: RunState) -> RunState:
    """A saved run state, checked leaf by leaf against ``template`` (this run's initial state)."""
    return restore_state(*model_files.load(path, kind=STATE_KIND), template, path)


def restore_state(tensors: dict[str, np.ndarray], meta: dict, template: RunState, source) -> RunState:
    """The run state of ``state_tensors``, checked leaf by leaf against ``template``; ``source`` names
    where it came from in errors."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template.es_state)
    restored = []
    for p, leaf in leaves:
        name = f"es{jax.tree_util.keystr(p)}"
        if name not in tensors or tensors[name].shape != np.shape(leaf):
            raise UsageError(f"{source} does not match this run's ES state ({name}); was the run made by "
                             "another synthenv version?")
        restored.append(jnp.asarray(tensors[name], dtype=jnp.asarray(leaf).dtype))
    best = meta["best"]
    return RunState(es_state=jax.tree_util.tree_unflatten(treedef, restored),
                    best_flat=jnp.asarray(tensors["best_se"]), generations_done=meta["generations_done"],
                    best=Best(best["score"], best["generation"], best.get("confirmed", False)),
                    real_env_steps=meta["totals"]["real_env_steps"], wall_seconds=meta["totals"]["wall_seconds"],
                    solved=meta["solved"], latest_scores=meta.get("latest_scores", {}),
                    attempt=meta.get("attempt", 0), attempt_best=meta.get("attempt_best", -float("inf")),
                    attempt_started=meta.get("attempt_started", 0),
                    attempt_failed_checks=meta.get("attempt_failed_checks", 0))


def check_out_dir(out: Path, resume: bool) -> None:
    """Refuse to overwrite another run; refuse to resume nothing."""
    has_run = (out / CONFIG_FILE).exists()
    if resume and not has_run:
        raise UsageError(f"nothing to resume in {out} (no {CONFIG_FILE})")
    if not resume and has_run:
        raise UsageError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if not resume and out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty; choose another --out")


def load_run_config(out: Path) -> TrainSEConfig | TrainRNConfig:
    """The config of the run in ``out`` (an SE's, or an RN's where it says ``"kind": "rn"``)."""
    try:
        d = json.loads((out / CONFIG_FILE).read_text())
        return TrainRNConfig.from_dict(d) if d.get("kind") == "rn" else TrainSEConfig.from_dict(d)
    except (json.JSONDecodeError, TypeError, KeyError) as e:
        raise UsageError(f"{out / CONFIG_FILE} is not a valid synthenv run config ({e})") from None


def _check_run_dir(config: TrainSEConfig | TrainRNConfig, out: Path, resume: bool) -> bool:
    """Refuse a wrong ``out`` or a resume with another config; whether there is a saved state to
    continue (none if the run was interrupted before generation 0 ended)."""
    check_out_dir(out, resume)
    if resume and replace(load_run_config(out), generations=config.generations) != config:
        raise UsageError(f"{out} holds a run with another config; resume it with that config "
                         "(only the generation cap may change)")
    return resume and (out / STATE_FILE).exists()


def train_proxy(config: TrainSEConfig | TrainRNConfig, out: str | Path, resume: bool = False,
                n_devices: int | None = None, on_event: Callable[[str, dict], None] | None = None) -> dict:
    """Learn the proxy of ``config`` (an SE or an RN) into ``out``; returns a summary. ``on_event(kind, data)`` drives progress output:
    kinds "compiled", "generation", "done".

    With several processes (``synthenv.distributed``) every process calls it alike and computes the
    same run; process 0 alone reads and writes ``out`` (the others need no access to it), and the
    others start from the state it read (or, with ``init_se``, from its initial state).
    """
    out, writer = Path(out), distributed.is_writer()
    saved_state = distributed.from_writer(lambda: _check_run_dir(config, out, resume))
    emit = on_event or (lambda kind, data: None)
    learner = Learner(config, n_devices, from_file=writer and not saved_state)

    initial, metrics = learner.initial_state(), []

    def save_best(state: RunState) -> None:
        save_proxy(out / config.proxy_file, learner.proxy, learner.weights(state.best_flat), config.to_dict(),
                   state.best.generation, state.best.score)

    state = distributed.from_writer(lambda: load_state(out / STATE_FILE, initial) if saved_state else initial,
                                    pack=state_tensors,
                                    unpack=lambda t, m: restore_state(t, m, initial, "process 0's run state"))
    if writer and resume:
        remove_stale_temporaries(out)
        lines = (out / METRICS_FILE).read_text().splitlines() if (out / METRICS_FILE).exists() else []
        metrics = [m for m in map(json.loads, lines) if m["generation"] < state.generations_done]
        # The generation cap may have changed: the proxy file states the config the run goes on with,
        # as an uninterrupted run with that cap would (config.json below, too).
        if saved_state and state.best.generation >= 0:
            save_best(state)
    elif writer:
        out.mkdir(parents=True, exist_ok=True)
    if writer:
        write_json_atomic(out / CONFIG_FILE, config.to_dict())

    compile_s = learner.compile()
    emit("compiled", {"compile_seconds": compile_s, "generations_done": state.generations_done})
    while not learner.finished(state):
        state, record, improved = learner.advance(state)
        if writer:
            if improved:
                save_best(state)
            metrics.append(record.to_json())
            write_text_atomic(out / METRICS_FILE, "".join(json.dumps(m) + "\n" for m in metrics))
            save_state(out / STATE_FILE, state)
        emit("generation", {**record.to_json(), "generations_done": state.generations_done,
                            "generations": config.generations, "total_wall_seconds": state.wall_seconds})
    summary = {"out": str(out), "generations_done": state.generations_done, "solved": state.solved,
               "best_score": state.best.score, "best_generation": state.best.generation,
               "real_env_steps": state.real_env_steps, "wall_seconds": state.wall_seconds,
               "compile_seconds": compile_s}
    emit("done", summary)
    return summary


train_se = train_rn = train_proxy
"""``train_se(TrainSEConfig, out)``, ``train_rn(TrainRNConfig, out)``: the same run directory layer."""
