"""A learned synthetic contextual bandit as a Gymnasium environment, in NumPy (no JAX for its user).

Its semantics are :class:`synthenv.proxies.bandit.SyntheticBandit`'s: ``reset`` draws a latent
``z ~ N(0, I)`` from the env's ``np_random`` and returns the generator's state for it; ``step(action)``
returns that state again with the learned reward of the action and ``terminated=True`` (every episode
is one step; ``truncated`` is always False). A non-finite state or reward makes the step *bad*: the
reward becomes 0 and ``info["bad"]`` is True. Float32 arithmetic, as the JAX forward pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium
import numpy as np
from gymnasium import spaces

from synthenv.adapters.gymnasium_env import _activate, _quiet

if TYPE_CHECKING:
    from synthenv.proxies.bandit import BanditConfig
    from synthenv.tasks.registry import TaskSpec


def _mlp(params: dict, layers: int, activation: str, x: np.ndarray) -> np.ndarray:
    """``synthenv.nets.MLP`` in NumPy float32."""
    for i in range(layers):
        dense = params[f"hidden_{i}"]
        x = _activate(activation, x @ dense["kernel"] + dense["bias"], params.get(f"prelu_{i}"))
    return x @ params["out"]["kernel"] + params["out"]["bias"]


def _as_numpy(tree: Any) -> Any:
    if hasattr(tree, "items"):
        return {k: _as_numpy(v) for k, v in tree.items()}
    return np.asarray(tree, np.float32)


class BanditGymnasiumEnv(gymnasium.Env):
    """A synthetic bandit for Gymnasium code (Stable-Baselines3, CleanRL): one step per episode."""

    metadata = {"render_modes": []}

    def __init__(self, spec: TaskSpec, config: BanditConfig, params: Any):
        config.validate()
        self.spec_ = spec
        self.config = config
        self.params = _as_numpy(params)
        self.observation_space = spaces.Box(-np.inf, np.inf, (spec.obs_dim,), np.float32)
        self.action_space = spaces.Discrete(spec.n_actions)
        self._obs: np.ndarray | None = None

    def _forward(self, net: str, x: np.ndarray) -> np.ndarray:
        with _quiet():
            return _mlp(self.params[net], self.config.layers, self.config.activation, x.astype(np.float32))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs = self._forward("state_gen", self.np_random.standard_normal(self.spec_.obs_dim))
        self._bad = not np.all(np.isfinite(obs))
        self._obs = np.where(self._bad, 0.0, obs).astype(np.float32)
        return self._obs.copy(), {}

    def step(self, action):
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        one_hot = np.eye(self.spec_.n_actions, dtype=np.float32)[int(action)]
        reward = float(self._forward("reward_net", np.concatenate([one_hot, self._obs]))[0])
        bad = self._bad or not np.isfinite(reward)
        obs, self._obs = self._obs, None  # the episode is over: the next step needs a reset
        return obs, 0.0 if bad else reward, True, False, {"bad": bad}


def make_gymnasium_bandit(spec: TaskSpec, config: BanditConfig, params: Any) -> BanditGymnasiumEnv:
    return BanditGymnasiumEnv(spec, config, params)
