"""A learned reward network (RN) as a Gymnasium wrapper: the real env's dynamics, the RN's reward.

An RN changes only the reward of its task, so outside synthenv it is not an environment of its
own but a wrapper around the real one: :class:`RNRewardWrapper` takes any ``gymnasium.Env`` of the
RN's task (``gymnasium.make("CartPole-v0")``, or the user's own copy of it) and replaces the reward of
every step by the RN's, computed from the previous observation, the next one, the env's own reward
and ``terminated``, exactly as :class:`synthenv.proxies.rn.RewardNetEnv` does in JAX:

- ``exclusive-potential``: ``gamma * Phi(s') - Phi(s)``;
- ``additive-potential``: ``r + gamma * Phi(s') - Phi(s)``;
- ``exclusive``: ``N(s')``;
- ``additive``: ``r + N(s')``;
- ``linear-info``: ``w . info + b`` (the info vector of the step alone).

An RN "+ info" (``config.info``) reads ``concat(observation, info vector)``, the info vector being the
entries ``spec.info_keys`` of the env's step info (HalfCheetah-v5: ``reward_forward``,
``reward_ctrl``); after ``reset`` it is zeros, as in the JAX RN. An env whose step info lacks one of
them raises a one-line ``UsageError`` on ``step``.

With ``terminal_potential_zero`` ``Phi(s') := 0`` on a step that terminated, never on one that was
only truncated (a cut episode does not end in a terminal state). The env's own reward is in
``info["real_reward"]``; if the network's output is non-finite, ``info["bad"]`` is True and the
step's reward is 0 (as in the JAX RN). Observations, actions, termination and truncation pass
through unchanged, so any Gymnasium learner (Stable-Baselines3, CleanRL) trains on the learned
reward and is evaluated on the real one without other changes.

The network is a small MLP run in NumPy float32 (the arithmetic of
:class:`synthenv.proxies.rn.RNNetwork`), so the wrapper needs no JAX from its user and adds under
10 microseconds a step (64 hidden units). The env must give the observations the RN was learned on:
its observation space must have the RN's shape ``(obs_dim,)`` (a one-line ``UsageError`` otherwise). The RN comes as ``(spec, config, weights)``: the real task's
:class:`~synthenv.tasks.registry.TaskSpec`, the :class:`~synthenv.proxies.rn.RNConfig`, and the
weights as the nested dict flax gives (``weights["reward_net"]["hidden_0"]["kernel"]``; JAX or NumPy
arrays). ``synthenv.load(path).as_gymnasium_wrapper(env)`` builds it from a model file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium
import numpy as np

from synthenv.adapters.gymnasium_env import _activate, _quiet
from synthenv.errors import UsageError

if TYPE_CHECKING:
    from synthenv.proxies.rn import RNConfig
    from synthenv.tasks.registry import TaskSpec


class NumpyRN:
    """The RN's network in NumPy float32: an input (or a batch of them) of size ``input_dim`` to one
    number each. The input is the observation, ``concat(observation, info vector)`` for an RN "+ info",
    the info vector alone for ``linear-info`` (one linear layer, no hidden one)."""

    def __init__(self, input_dim: int, config: RNConfig, weights: Any):
        if hasattr(config, "validate"):
            config.validate()
        layers = 0 if config.linear else config.layers
        self.activation, self.layers = config.activation, layers
        net = weights["reward_net"]
        self.dense = []
        self.slopes = []
        for i in range(layers):
            layer = net[f"hidden_{i}"]
            self.dense.append((np.asarray(layer["kernel"], np.float32), np.asarray(layer["bias"], np.float32)))
            self.slopes.append(np.asarray(net[f"prelu_{i}"], np.float32) if config.activation == "prelu" else None)
        out = net["out"]
        self.out_kernel = np.asarray(out["kernel"], np.float32)[:, 0]
        self.out_bias = np.float32(np.asarray(out["bias"], np.float32)[0])
        first, expected = (self.dense[0][0], (input_dim, config.hidden)) if layers else \
            (np.asarray(out["kernel"]), (input_dim, 1))
        if first.shape != expected:
            raise ValueError(f"RN first-layer kernel has shape {first.shape}, expected {expected}")

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, np.float32)
        with _quiet():
            for (kernel, bias), slope in zip(self.dense, self.slopes):
                x = _activate(self.activation, x @ kernel + bias, slope)
            return x @ self.out_kernel + self.out_bias


class RNRewardWrapper(gymnasium.Wrapper, gymnasium.utils.RecordConstructorArgs):
    """A Gymnasium env of the RN's task with the RN's learned reward (see the module docstring).

    ``info`` of ``step`` adds ``real_reward`` (the env's own reward, float) and ``bad`` (the
    network's output was non-finite, so the reward is 0). ``reset`` must come before ``step``, as
    in any Gymnasium env: it records the first observation, ``Phi(s)`` of the first step.

    The constructor arguments are recorded (``gymnasium.utils.RecordConstructorArgs``), so that the
    wrapped env's ``spec`` rebuilds it: ``gymnasium.make(wrapped.spec)`` gives a fresh copy.
    """

    def __init__(self, env: gymnasium.Env, spec: TaskSpec, config: RNConfig, weights: Any):
        weights = _numpy(weights)
        gymnasium.utils.RecordConstructorArgs.__init__(self, spec=spec, config=config, weights=weights)
        gymnasium.Wrapper.__init__(self, env)
        shape = getattr(env.observation_space, "shape", None)
        if shape != (spec.obs_dim,):
            raise UsageError(f"the RN for {spec.id} reads observations of shape ({spec.obs_dim},); "
                             f"this env's observation space has shape {shape}")
        self.task_spec, self.rn_config = spec, config
        config.check_task(spec)
        self._info_keys = config.info_keys(spec)
        # The network's input, filled in place each step: the observation (not for linear-info), then
        # the info vector.
        self._input = np.zeros(config.input_dim(spec), np.float32)
        self._info_at = self._input.size - len(self._info_keys)
        self.rn = NumpyRN(self._input.size, config, weights)
        self._potential = config.potential
        self._additive = config.additive
        self._gamma = np.float32(config.gamma)
        self._zero_terminal = config.terminal_potential_zero
        self._out_prev: np.float32 | None = None  # the network's output for the current observation

    def _network_input(self, obs, info: dict | None) -> np.ndarray:
        """The observation itself without info inputs; else ``self._input`` filled with the observation
        and the info vector of ``info`` (zeros for None: a first state)."""
        if not self._info_keys:
            return obs
        x, at = self._input, self._info_at
        if at:
            x[:at] = obs
        if info is None:
            x[at:] = 0.0
            return x
        try:
            for i, key in enumerate(self._info_keys):
                x[at + i] = info[key]
        except KeyError:
            raise UsageError(f"the RN for {self.task_spec.id} reads {key!r} from the env's step info; this "
                             f"env's info has {', '.join(map(repr, info)) or 'no entries'}") from None
        return x

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._out_prev = self.rn(self._network_input(obs, None))
        return obs, info

    def step(self, action):
        if self._out_prev is None:
            raise gymnasium.error.ResetNeeded("call reset() before step() on an RNRewardWrapper")
        obs, real_reward, terminated, truncated, info = self.env.step(action)
        out_next = self.rn(self._network_input(obs, info))
        real = np.float32(real_reward)
        with _quiet():
            if self._potential:
                phi_next = np.float32(0.0) if (terminated and self._zero_terminal) else out_next
                learned = self._gamma * phi_next - self._out_prev
                finite = np.isfinite(out_next) and np.isfinite(self._out_prev)
            else:
                learned = out_next
                finite = np.isfinite(out_next)
            reward = real + learned if self._additive else learned
        bad = not (finite and np.isfinite(reward))
        self._out_prev = out_next
        info = {**info, "real_reward": float(real_reward), "bad": bad}
        return obs, 0.0 if bad else float(reward), terminated, truncated, info


def _numpy(tree: Any) -> Any:
    """The weights' nested dict with NumPy float32 leaves (so no JAX arrays are kept or copied)."""
    if hasattr(tree, "items"):
        return {k: _numpy(v) for k, v in tree.items()}
    return np.asarray(tree, np.float32)


def make_reward_wrapper(env: gymnasium.Env, spec: TaskSpec, config: RNConfig, weights: Any) -> RNRewardWrapper:
    """``env`` (a Gymnasium env of the task ``spec``) with the reward of the RN ``(config, weights)``."""
    return RNRewardWrapper(env, spec, config, weights)


__all__ = ["NumpyRN", "RNRewardWrapper", "make_reward_wrapper"]
