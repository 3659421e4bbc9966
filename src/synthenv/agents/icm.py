"""The Intrinsic Curiosity Module (Pathak et al. 2017) as an environment wrapper: any agent + ICM.

ICM learns a feature map ``phi``, an inverse model ``(phi(s), phi(s')) -> a`` and a forward model
``(phi(s), a) -> phi(s')``; the forward model's error on a transition is a curiosity bonus that pays
the agent for visiting what it cannot predict yet. :class:`ICMEnv` wraps a task: it steps the task,
adds ``eta * 0.5 * ||forward(phi(s), a) - phi(s')||^2`` to the reward, and takes one Adam step on the
ICM loss ``(1 - beta) * inverse + beta * forward`` for the transition. The ICM weights live in the
environment state, so every agent (DDQN, TD3, ...) trains with curiosity unchanged, a fresh ICM per
agent (``reset``), carried across episodes (the wrapper's ``step`` keeps them through auto-resets).

The task's own reward travels in ``info["real_reward"]``; the feature map's gradient comes from the
inverse loss alone (the forward loss does not move ``phi``, as in the original), so features cannot
collapse to make everything predictable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from synthenv.agents.common import raise_if_invalid
from synthenv.environment import TaskEnv
from synthenv.errors import UsageError


@dataclass(frozen=True)
class ICMConfig:
    feature_dim: int = 32
    hidden: int = 64
    lr: float = 1e-3
    beta: float = 0.2
    """Weight of the forward loss against the inverse loss (Pathak et al.: 0.2)."""
    eta: float = 0.1
    """Scale of the curiosity bonus added to the reward."""

    def validate(self) -> None:
        raise_if_invalid("ICM", self, {"feature_dim": self.feature_dim >= 1, "hidden": self.hidden >= 1,
                                       "lr": self.lr > 0, "beta": 0 <= self.beta <= 1, "eta": self.eta >= 0})


class ICMNets(nn.Module):
    config: ICMConfig
    action_size: int

    def setup(self):
        c = self.config
        self.phi = nn.Sequential([nn.Dense(c.hidden), nn.relu, nn.Dense(c.feature_dim)])
        self.inverse = nn.Sequential([nn.Dense(c.hidden), nn.relu, nn.Dense(self.action_size)])
        self.forward_model = nn.Sequential([nn.Dense(c.hidden), nn.relu, nn.Dense(c.feature_dim)])

    def __call__(self, obs, action_vec, next_obs):
        """(predicted action (logits or vector), predicted phi(s'), phi(s'))."""
        f, f_next = self.phi(obs), self.phi(next_obs)
        pred_action = self.inverse(jnp.concatenate([f, f_next]))
        pred_next = self.forward_model(jnp.concatenate([jax.lax.stop_gradient(f), action_vec]))
        return pred_action, pred_next, f_next


@struct.dataclass
class ICMState:
    task_state: Any
    obs: jax.Array
    weights: Any
    opt_state: Any

    @property
    def time(self) -> jax.Array:
        return self.task_state.time


class ICMEnv(TaskEnv):
    """``task`` with a curiosity bonus on its reward (see the module docstring); params: the task's."""

    def __init__(self, task: TaskEnv, config: ICMConfig = ICMConfig()):
        config.validate()
        if not isinstance(task, TaskEnv):
            raise UsageError(f"ICM wraps a task environment, got {type(task).__name__}")
        super().__init__(task.spec)
        self.task, self.config = task, config
        self.action_size = task.spec.action_dim if task.spec.continuous else task.spec.n_actions
        self.nets = ICMNets(config, self.action_size)
        self.optimizer = optax.adam(config.lr)

    @property
    def default_params(self):
        return self.task.default_params

    def _action_vec(self, action):
        if self.spec.continuous:
            return jnp.asarray(action, jnp.float32).reshape(self.action_size) / self.spec.action_high
        return jax.nn.one_hot(action, self.action_size)

    def losses(self, weights, obs, action, next_obs):
        """(ICM loss, forward error) of one transition."""
        pred_action, pred_next, f_next = self.nets.apply({"params": weights}, obs, self._action_vec(action), next_obs)
        if self.spec.continuous:
            inverse = jnp.mean((pred_action - self._action_vec(action)) ** 2)
        else:
            inverse = optax.softmax_cross_entropy_with_integer_labels(pred_action, action)
        forward = 0.5 * jnp.sum((pred_next - jax.lax.stop_gradient(f_next)) ** 2)
        return (1 - self.config.beta) * inverse + self.config.beta * forward, forward

    def reset(self, key: jax.Array, params: Any = None):
        params = self.default_params if params is None else params
        k_task, k_net = jax.random.split(key)
        obs, task_state = self.task.reset(k_task, params)
        zero = jnp.zeros((self.spec.obs_dim,), jnp.float32)
        weights = self.nets.init(k_net, zero, jnp.zeros((self.action_size,)), zero)["params"]
        return obs, ICMState(task_state, obs, weights, self.optimizer.init(weights))

    def step(self, key: jax.Array, state: ICMState, action, params: Any = None):
        params = self.default_params if params is None else params
        obs, task_state, reward, terminated, truncated, info = self.task.step(key, state.task_state, action, params)
        next_obs = info.get("final_observation", obs)
        (_, forward), grads = jax.value_and_grad(self.losses, has_aux=True)(state.weights, state.obs, action, next_obs)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.weights)
        weights = optax.apply_updates(state.weights, updates)
        bonus = self.config.eta * jax.lax.stop_gradient(forward)
        info = {**info, "real_reward": reward, "curiosity": bonus}
        return obs, ICMState(task_state, obs, weights, opt_state), reward + bonus, terminated, truncated, info

    def step_env(self, key, state, action, params):  # the wrapper's step replaces gymnax's auto-reset step
        raise NotImplementedError("ICMEnv steps through step()")

    def reset_env(self, key, params):
        raise NotImplementedError("ICMEnv resets through reset()")
