"""Save and load SEs as model files, and the user-facing loaded SE (``synthenv.load``)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from synthenv.errors import UsageError
from synthenv.io import model_files
from synthenv.proxies.se import SEConfig, SEState, SyntheticEnv
from synthenv.training_env import Transition
from synthenv.tasks.registry import get_spec, make_task

KIND = "synthetic_env"


def save_se(path: str | Path, se: SyntheticEnv, params: Any, training_config: dict, generation: int,
            score: float) -> None:
    spec = se.task.spec
    tensors = {k: np.asarray(v) for k, v in traverse_util.flatten_dict(params, sep="/").items()}
    model_files.save(path, tensors, {
        "kind": KIND,
        "env_id": spec.id,
        "observation_space": {"shape": [spec.obs_dim], "dtype": "float32"},
        "action_space": {"n": spec.n_actions},
        "architecture": asdict(se.config),
        "training_config": training_config,
        "generation": generation,
        "score": score,
    })


class LoadedSE:
    """A learned SE ready to step: gymnax-style ``reset(key)`` and ``step(key, state, action)``."""

    def __init__(self, env: SyntheticEnv, params: Any, metadata: dict):
        self.env = env
        self.params = params
        self.metadata = metadata

    @property
    def env_id(self) -> str:
        return self.env.task.spec.id

    def reset(self, key: jax.Array) -> tuple[jax.Array, SEState]:
        return self.env.reset(key, self.params)

    def step(self, key: jax.Array, state: SEState, action) -> Transition:
        return self.env.step(key, state, jnp.asarray(action, jnp.int32), self.params)

    def __repr__(self) -> str:
        m = self.metadata
        return f"LoadedSE(env_id={self.env_id!r}, generation={m.get('generation')}, score={m.get('score')})"


def load_se(path: str | Path, env_id: str | None = None) -> LoadedSE:
    tensors, meta = model_files.load(path, kind=KIND, env_id=env_id)
    try:
        spec = get_spec(meta["env_id"])
        config = SEConfig(**meta["architecture"])
    except (KeyError, TypeError) as e:
        raise UsageError(f"{path} has incomplete SE metadata ({e})") from None
    se = SyntheticEnv(make_task(spec.id), config)
    template = traverse_util.flatten_dict(se.init(jax.random.key(0)), sep="/")
    if set(template) != set(tensors):
        raise UsageError(f"{path}: tensor names do not match the SE architecture in its metadata")
    for name, t in template.items():
        if tuple(t.shape) != tuple(tensors[name].shape):
            raise UsageError(f"{path}: tensor {name} has shape {tuple(tensors[name].shape)}, "
                             f"expected {tuple(t.shape)}")
    params = traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in tensors.items()}, sep="/")
    return LoadedSE(se, params, meta)
