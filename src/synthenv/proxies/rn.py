"""Reward networks (RNs) of Ferreira et al. (2022): the real task's dynamics with a learned reward.

An RN keeps everything of the real task (its first-state distribution, its transitions, its
termination and its step cap) and changes only the reward the agent learns from. One MLP reads a
state (the observation; a grid task's observation is already its one-hot cell) and gives one
number. Four variants use that number:

- ``exclusive-potential``: the reward is ``gamma * Phi(s') - Phi(s)`` (potential-based shaping alone);
- ``additive-potential``: ``r + gamma * Phi(s') - Phi(s)`` (the real reward plus the shaping);
- ``exclusive``: ``N(s')`` (the network's output for the next state replaces the reward);
- ``additive``: ``r + N(s')``.

"+ info" (``RNConfig.info``) feeds the network the task's info vector too: the step-info entries
``TaskSpec.info_keys`` (HalfCheetah-v5: ``reward_forward``, ``reward_ctrl``, the reward's two terms).
A state is then read together with the info vector of the step that led into it: ``N(s')`` and
``Phi(s')`` read ``concat(s', info of this step)``, ``Phi(s)`` the state and info vector the previous
step gave (kept in :class:`RNState`), and a first state after a reset reads a zero info vector. So the
``Phi(s')`` of one step is the ``Phi(s)`` of the next and the shaping still telescopes.

A fifth variant, ``linear-info``, is the paper's linear baseline: the reward is ``w . info + b``, one
linear layer on the info vector alone (no state, no hidden layer), started at ``w = 1, b = 0``.
HalfCheetah's info vector sums to its reward, so the ES starts from the true reward and learns a
re-weighting of its components.

Potential-based shaping leaves the optimal policies of the task unchanged only when the potential
of a terminal state is 0, so that the shaping terms of an episode telescope to ``-Phi(s_0)``. With
``terminal_potential_zero`` (the default) ``Phi(s') := 0`` where the step terminated; ``False``
uses the network's ``Phi`` of the terminal observation as it is (what the original implementation
does). Truncation at the step cap is not termination: the episode is cut, the state is not terminal,
so ``Phi(s')`` is never zeroed there. ``gamma`` is the agent's discount the shaping is written for.

The real reward travels in ``info["real_reward"]``. If the network gives a non-finite output on a
step (``Phi(s)``, ``Phi(s')``, ``N(s')`` or ``w . info + b``), ``info["bad"]`` is True and the step's
reward is 0; the dynamics are the real task's either way. The RN is a gymnax environment whose params
(:class:`RNParams`) carry its weights and the real task's own params, so one compiled function steps
a population of RNs under ``vmap`` (build the params with ``params_for`` inside the vmapped function,
or stack ``task_params`` along with the weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from synthenv.environment import TaskEnv
from synthenv.errors import UsageError, require_counts
from synthenv.nets import ACTIVATIONS, MLP
from synthenv.tasks.registry import TaskSpec, require_info_vector

LINEAR_INFO = "linear-info"
VARIANTS = ("exclusive-potential", "additive-potential", "exclusive", "additive", LINEAR_INFO)
POTENTIAL_VARIANTS = ("exclusive-potential", "additive-potential")
ADDITIVE_VARIANTS = ("additive-potential", "additive")


@dataclass(frozen=True)
class RNConfig:
    """Architecture of a reward network: the variant, the MLP and the shaping's discount.

    ``linear-info`` has no MLP: ``hidden``, ``layers`` and ``activation`` are ignored for it (still
    checked), and it always reads the info vector, whatever ``info`` says.
    """

    variant: str = "additive-potential"
    """One of ``VARIANTS``: how the network's output makes the reward (see the module docstring)."""
    hidden: int = 64
    layers: int = 1
    activation: str = "prelu"
    gamma: float = 0.99
    """The agent's discount, used by the potential variants' ``gamma * Phi(s') - Phi(s)``."""
    terminal_potential_zero: bool = True
    """``Phi`` of a terminal state is 0 (sound shaping); False: the network's ``Phi`` of it as is."""
    info: bool = False
    """The "+ info" variants: the network reads ``concat(state, info vector)`` (needs a task with
    ``TaskSpec.info_keys``)."""

    @property
    def potential(self) -> bool:
        return self.variant in POTENTIAL_VARIANTS

    @property
    def linear(self) -> bool:
        """The ``linear-info`` baseline: ``w . info + b``."""
        return self.variant == LINEAR_INFO

    @property
    def reads_info(self) -> bool:
        """The network reads the task's info vector (``info``, or the ``linear-info`` variant)."""
        return self.info or self.linear

    @property
    def label(self) -> str:
        """The variant as the paper names it: ``additive + info``, ``linear-info``."""
        return f"{self.variant} + info" if self.info and not self.linear else self.variant

    @property
    def additive(self) -> bool:
        return self.variant in ADDITIVE_VARIANTS

    def validate(self) -> None:
        if self.variant not in VARIANTS:
            raise UsageError(f"unknown RN variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        require_counts(self, ("hidden", "layers"), "RN ")
        if self.activation not in ACTIVATIONS:
            raise UsageError(f"unknown RN activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if isinstance(self.gamma, bool) or not isinstance(self.gamma, (int, float)) or not 0 <= self.gamma <= 1:
            raise UsageError(f"RN gamma must be a number in [0, 1], got {self.gamma!r}")
        if not isinstance(self.terminal_potential_zero, bool):
            raise UsageError(f"RN terminal_potential_zero must be true or false, got {self.terminal_potential_zero!r}")
        if not isinstance(self.info, bool):
            raise UsageError(f"RN info must be true or false, got {self.info!r}")

    def check_task(self, spec: TaskSpec) -> None:
        """A one-line ``UsageError`` if this RN reads an info vector and the task ``spec`` has none."""
        if self.reads_info:
            require_info_vector(spec, "RN info inputs")

    def info_keys(self, spec: TaskSpec) -> tuple[str, ...]:
        """The step-info entries of task ``spec`` the network reads, in order (empty: none)."""
        return spec.info_keys if self.reads_info else ()

    def input_dim(self, spec: TaskSpec) -> int:
        """The size of the network's input on task ``spec``: the state's, plus the info vector's with
        ``info``, or the info vector's alone for ``linear-info``."""
        n = len(self.info_keys(spec))
        return n if self.linear else spec.obs_dim + n


class _InfoWeights(nn.Module):
    """``linear-info``'s one linear layer, started at weights 1 and bias 0 (the reward's own sum)."""

    @nn.compact
    def __call__(self, x):
        return nn.Dense(1, kernel_init=nn.initializers.ones, bias_init=nn.initializers.zeros, name="out")(x)


class RNNetwork(nn.Module):
    """The RN's network: its input (a state, ``concat(state, info vector)`` with ``info``, the info
    vector alone for ``linear-info``) to one number (``Phi``, ``N`` or ``w . info + b``)."""

    config: RNConfig

    @nn.compact
    def __call__(self, x):
        c = self.config
        if c.linear:
            return _InfoWeights(name="reward_net")(x)[..., 0]
        return MLP(c.hidden, c.layers, c.activation, 1, name="reward_net")(x)[..., 0]


@struct.dataclass
class RNState:
    """The real task's state, the observation of it and the info vector of the step that led into it
    (zeros after a reset; shape ``(0,)`` for an RN without info inputs): what ``Phi(s)`` reads on the
    next step."""

    task_state: Any
    obs: jax.Array
    info: jax.Array

    @property
    def time(self) -> jax.Array:
        return self.task_state.time


@struct.dataclass
class RNParams:
    """The env params of an RN: its network weights, the real task's params (both pytrees) and the
    task's step cap (static)."""

    weights: Any
    task_params: Any
    max_steps_in_episode: int = struct.field(pytree_node=False, default=200)


class RewardNetEnv(TaskEnv):
    """An RN for a real task (discrete or continuous actions): the task's dynamics, a learned reward.

    ``weights`` (optional) binds the RN's weights as ``default_params``, so that ``reset(key)`` and
    ``step(key, state, action)`` work without params, as with any gymnax environment.
    """

    def __init__(self, task, config: RNConfig = RNConfig(), weights: Any = None):
        if not isinstance(config, RNConfig):
            raise UsageError(f"an RN needs an RNConfig, got {type(config).__name__}")
        config.validate()
        if not isinstance(task, TaskEnv) or isinstance(task, RewardNetEnv):
            raise UsageError(f"an RN wraps a real task (synthenv.tasks.make_task), got {type(task).__name__}")
        config.check_task(task.spec)
        super().__init__(task.spec)
        self.task = task
        self.config = config
        self.network = RNNetwork(config)
        self.weights = weights
        self.info_keys = config.info_keys(task.spec)
        """The step-info entries the network reads, in order (empty: none)."""
        self.input_dim = config.input_dim(task.spec)

    def init(self, key: jax.Array) -> Any:
        """Fresh RN weights (flax default init; ``linear-info``: weights 1, bias 0)."""
        return self.network.init(key, jnp.zeros((self.input_dim,), jnp.float32))["params"]

    def params_for(self, weights: Any) -> RNParams:
        """The env params that make this RN step with ``weights`` (and the task's default params)."""
        return RNParams(weights, self.task.default_params, self.spec.max_steps)

    def bind(self, weights: Any) -> RewardNetEnv:
        """The same RN with ``weights`` as its default params."""
        return RewardNetEnv(self.task, self.config, weights)

    @property
    def default_params(self) -> RNParams:
        if self.weights is None:
            raise ValueError("this RewardNetEnv has no weights bound: pass params=env.params_for(weights)")
        return self.params_for(self.weights)

    def potential(self, weights: Any, obs: jax.Array, info: jax.Array | None = None) -> jax.Array:
        """The network's raw output (``Phi``, ``N`` or ``w . info + b``; any leading batch axes) for
        states ``obs`` and, for an RN that reads it, the info vectors ``info`` of the steps into them."""
        if not self.info_keys:
            return self.network.apply({"params": weights}, obs)
        if info is None:
            raise ValueError("this RN reads the info vector: pass info (zeros for a first state)")
        info = jnp.asarray(info, jnp.float32)
        x = info if self.config.linear else jnp.concatenate([jnp.asarray(obs, jnp.float32), info], axis=-1)
        return self.network.apply({"params": weights}, x)

    def info_vector(self, info: dict) -> jax.Array:
        """The info vector (``info_keys``, in order) of a step's info dict; shape ``(0,)`` without."""
        if not self.info_keys:
            return jnp.zeros((0,), jnp.float32)
        return jnp.stack([jnp.asarray(info[k], jnp.float32) for k in self.info_keys], axis=-1)

    def transition_reward(self, weights: Any, obs: jax.Array, info: jax.Array, next_obs: jax.Array,
                          next_info: jax.Array, real_reward: jax.Array, terminated: jax.Array):
        """``(reward, bad)`` of one step from ``obs`` (with the info vector ``info`` of the step into it)
        to ``next_obs`` (with this step's ``next_info``), the real reward and ``terminated``: what
        ``step`` gives (``info`` is ignored by all but the potential variants)."""
        real_reward = jnp.asarray(real_reward, jnp.float32)
        terminated = jnp.asarray(terminated, bool)
        c = self.config
        out_next = self.potential(weights, next_obs, next_info)
        if c.potential:
            out_prev = self.potential(weights, obs, info)
            phi_next = jnp.where(terminated, 0.0, out_next) if c.terminal_potential_zero else out_next
            learned = c.gamma * phi_next - out_prev
            finite = jnp.isfinite(out_next) & jnp.isfinite(out_prev)
        else:
            learned = out_next
            finite = jnp.isfinite(out_next)
        reward = real_reward + learned if c.additive else learned
        bad = ~(finite & jnp.isfinite(reward))
        return jnp.where(bad, 0.0, reward).astype(jnp.float32), bad

    def reset_env(self, key: jax.Array, params: RNParams):
        obs, task_state = self.task.reset_env(key, params.task_params)
        return obs, RNState(task_state, obs, jnp.zeros((len(self.info_keys),), jnp.float32))

    def step_env(self, key: jax.Array, state: RNState, action: jax.Array, params: RNParams):
        next_obs, task_state, real_reward, terminated, info = self.task.step_env(
            key, state.task_state, action, params.task_params)
        real_reward = jnp.asarray(real_reward, jnp.float32)
        terminated = jnp.asarray(terminated, bool)
        next_info = self.info_vector(info)
        reward, bad = self.transition_reward(params.weights, state.obs, state.info, next_obs, next_info,
                                             real_reward, terminated)
        info = {**info, "real_reward": real_reward, "bad": bad}
        return next_obs, RNState(task_state, next_obs, next_info), reward, terminated, info

    def is_terminated(self, state: RNState, params: RNParams) -> jax.Array:
        return self.task.is_terminated(state.task_state, params.task_params)
