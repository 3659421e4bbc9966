"""Proxy model files (save, load with every check) and the loaded proxy users get from ``synthenv.load``.

A loaded proxy leaves synthenv through adapters: ``as_gymnax()`` (a gymnax environment with the
weights bound, also registered with ``gymnax.register``), ``as_gymnasium()`` and
``as_gymnasium_vector(n)`` (NumPy, no JAX needed by the user).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from synthenv.errors import UsageError
from synthenv.io import model_files
from synthenv.proxies.protocol import ProxyEnv, ProxyKind
from synthenv.proxies.registry import get_kind, kind_of
from synthenv.tasks.real import make_task
from synthenv.tasks.registry import get_spec


def save_proxy(path: str | Path, env: ProxyEnv, weights: Any, training_config: dict, generation: int,
               score: float) -> None:
    """Write ``weights`` of the proxy ``env`` as a model file (atomically)."""
    spec = env.spec
    tensors = {k: np.asarray(v) for k, v in traverse_util.flatten_dict(weights, sep="/").items()}
    action_space = ({"shape": [spec.action_dim], "low": -spec.action_high, "high": spec.action_high}
                    if spec.continuous else {"n": spec.n_actions})
    model_files.save(path, tensors, {
        "kind": kind_of(env).file_kind,
        "env_id": spec.id,
        "observation_space": {"shape": [spec.obs_dim], "dtype": "float32"},
        "action_space": action_space,
        "architecture": asdict(env.config),
        "training_config": training_config,
        "generation": generation,
        "score": score,
    })


SE_KIND = "synthetic_env"
BANDIT_KIND = "synthetic_bandit"
_GYMNAX_IDS: dict[str, str] = {}  # gymnax id -> the model file registered under it


@dataclass(frozen=True)
class LoadedProxy:
    """A learned proxy from a model file: its kind, its environment (weights bound) and metadata."""

    kind: ProxyKind
    env: ProxyEnv
    metadata: dict
    path: Path

    @property
    def env_id(self) -> str:
        return self.env.spec.id

    @property
    def config(self):
        """The architecture (``SEConfig``, ``RNConfig``)."""
        return self.env.config

    @property
    def weights(self) -> Any:
        return self.env.weights

    params = weights  # the name earlier versions used

    @property
    def training_config(self) -> dict:
        return self.metadata.get("training_config") or {}

    @property
    def gymnax_id(self) -> str:
        """The id ``as_gymnax()`` registers this file under: ``synthenv/<file stem>`` (a short hash of
        the path is appended when another file with the same stem was registered first)."""
        base = f"synthenv/{self.path.stem}"
        owner = _GYMNAX_IDS.get(base)
        if owner is None or owner == str(self.path.resolve()):
            return base
        return f"{base}-{hashlib.sha1(str(self.path.resolve()).encode()).hexdigest()[:8]}"

    def as_gymnax(self) -> ProxyEnv:
        """A gymnax 1.x ``Environment`` with the learned weights as ``default_params``: ``reset(key)``,
        ``step(key, state, action)``, ``jit``/``vmap``, gymnax's wrappers. Also registered, so that
        ``gymnax.make(proxy.gymnax_id)`` builds it."""
        import gymnax

        gid, env = self.gymnax_id, self.env
        if gid not in gymnax.registered_envs:
            gymnax.register(gid, lambda **kwargs: env)
            _GYMNAX_IDS[gid] = str(self.path.resolve())
        return env

    def _check_synthetic(self, adapter: str) -> None:
        if self.kind.file_kind not in (SE_KIND, BANDIT_KIND):
            raise UsageError(f"{adapter}() is available for synthetic environments and bandits; {self.path} "
                             f"holds a {self.kind.name.upper()} (use as_gymnax())")

    def as_gymnasium(self, render_mode: str | None = None):
        """A ``gymnasium.Env`` stepping the SE (or synthetic bandit) with NumPy (seeded through
        ``reset(seed=...)``)."""
        self._check_synthetic("as_gymnasium")
        if self.kind.file_kind == BANDIT_KIND:
            from synthenv.adapters.gymnasium_bandit import make_gymnasium_bandit

            return make_gymnasium_bandit(self.env.spec, self.config, _numpy(self.weights))
        from synthenv.adapters.gymnasium_env import make_gymnasium_env

        return make_gymnasium_env(self.env.spec, self.config, _numpy(self.weights), render_mode=render_mode)

    def as_gymnasium_vector(self, num_envs: int):
        """A ``gymnasium.vector.VectorEnv`` of ``num_envs`` copies: an SE's stepped in one NumPy batch,
        a synthetic bandit's as Gymnasium's ``SyncVectorEnv``."""
        self._check_synthetic("as_gymnasium_vector")
        if num_envs < 1:
            raise UsageError(f"num_envs must be >= 1, got {num_envs}")
        if self.kind.file_kind == BANDIT_KIND:
            import gymnasium

            return gymnasium.vector.SyncVectorEnv([self.as_gymnasium for _ in range(num_envs)])
        from synthenv.adapters.gymnasium_env import make_gymnasium_vector_env

        return make_gymnasium_vector_env(self.env.spec, self.config, _numpy(self.weights), num_envs)

    def as_gymnasium_wrapper(self, env):
        """A reward network's learned reward on ``env``, a ``gymnasium.Env`` of the RN's task (its
        dynamics are the real task's, so the RN wraps the user's env rather than replacing it):
        observations pass through, the reward is the RN's (NumPy), the env's is in
        ``info["real_reward"]``."""
        from synthenv.adapters.reward_wrapper import make_reward_wrapper

        if self.kind.file_kind != "reward_network":
            raise UsageError(f"as_gymnasium_wrapper() is available for reward networks; {self.path} holds a "
                             f"{self.kind.name.upper()} (use as_gymnasium())")
        return make_reward_wrapper(env, self.env.spec, self.config, _numpy(self.weights))

    def __repr__(self) -> str:
        m = self.metadata
        return (f"LoadedProxy(kind={self.kind.name!r}, env_id={self.env_id!r}, generation={m.get('generation')}, "
                f"score={m.get('score')})")


def _numpy(tree):
    return jax.tree.map(np.asarray, tree)


def load_proxy(path: str | Path, env_id: str | None = None, kind: str | None = None) -> LoadedProxy:
    """Read a model file with every check (one-line ``UsageError`` each): a valid synthenv file of a
    known proxy kind (``kind``, when given), learned for ``env_id`` (when given), whose tensors match
    the architecture in its metadata."""
    path = Path(path)
    tensors, meta = model_files.load(path, kind=kind, env_id=env_id)
    proxy_kind = get_kind(meta.get("kind"))
    try:
        spec = get_spec(meta["env_id"])
        config = proxy_kind.config_type(**meta["architecture"])
    except (KeyError, TypeError) as e:
        raise UsageError(f"{path} has incomplete {proxy_kind.name.upper()} metadata ({e})") from None
    env = proxy_kind.env_type(make_task(spec.id), config)
    template = traverse_util.flatten_dict(env.init(jax.random.key(0)), sep="/")
    if set(template) != set(tensors):
        raise UsageError(f"{path}: tensor names do not match the {proxy_kind.name.upper()} architecture in its metadata")
    for name, t in template.items():
        if tuple(t.shape) != tuple(tensors[name].shape):
            raise UsageError(f"{path}: tensor {name} has shape {tuple(tensors[name].shape)}, "
                             f"expected {tuple(t.shape)}")
    weights = traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in tensors.items()}, sep="/")
    return LoadedProxy(proxy_kind, env.bind(weights), meta, path)



def load_se(path: str | Path, env_id: str | None = None) -> LoadedProxy:
    """``load_proxy`` that also checks the file holds a synthetic environment."""
    return load_proxy(path, env_id, kind=SE_KIND)


def load_synthetic(path: str | Path, env_id: str | None = None) -> LoadedProxy:
    """``load_proxy`` that also checks the file holds a proxy agents train on alone: an SE or a
    synthetic bandit (not a reward network, whose agents need the real dynamics)."""
    loaded = load_proxy(path, env_id)
    if loaded.kind.real_dynamics:
        raise UsageError(f"{path} holds a {loaded.kind.file_kind!r}, not a {SE_KIND!r} or {BANDIT_KIND!r}")
    return loaded
