"""Discrete TD3 (the paper's): TD3 whose actor outputs logits over the actions.

The actor's action vector is a Gumbel-softmax sample of its logits, with the temperature annealed
geometrically from T = ``temp_init`` to T / ``temp_factor`` over the first ``temp_anneal_updates``
updates (the paper: T -> T/20 over 2000; it does not give the curve, geometric is our choice).
Exploration adds Gaussian noise (``expl_noise``) to that vector and the environment gets its argmax;
the replay stores the noisy vector, and the twin critics learn Q(state, action vector). Target policy
smoothing adds clipped Gaussian noise to the target actor's Gumbel-softmax vector. Everything else
(twin critics, delayed actor and soft target updates, stop rules, varied HPs) is ``td3``'s core; this
module supplies only the action head. The trained ``params`` are the actor; the deterministic policy
is the argmax of its logits.

Presets: "small" (our SE default: TD3's "small" with lr 3e-4) and "paper" (the authors' CartPole
config: ReLU 2x128, batch 128, lr 5e-4, tau 0.01, policy delay 2, noise 0.1 / 0.2 clipped at 0.5,
T = 1, 10 initial episodes).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from synthenv.agents import common
from synthenv.environment import describe
from synthenv.agents.td3 import (ActionHead, HParams, Shapes, TD3Config, actor_out,  # noqa: F401 (agent API)
                                 make_train_with_head, max_shapes, sample_hparams)


@dataclass(frozen=True)
class TD3DiscreteConfig(TD3Config):
    """TD3's fields (noise scales are in action-vector units here) plus the Gumbel-softmax temperature."""

    temp_init: float = 1.0
    temp_factor: float = 20.0
    """The temperature falls from ``temp_init`` to ``temp_init / temp_factor``..."""
    temp_anneal_updates: int = 2000
    """... over this many updates, and stays there."""
    agent_name = "discrete TD3"
    """How validation and preset messages name the agent."""

    def checks(self) -> dict[str, bool]:
        return {**super().checks(), "temp_init": self.temp_init > 0, "temp_factor": self.temp_factor >= 1,
                "temp_anneal_updates": self.temp_anneal_updates >= 1}


Config = TD3DiscreteConfig
DISCRETE, CONTINUOUS = True, False  # action spaces this agent supports

PRESETS: dict[str, TD3DiscreteConfig] = {
    # lr 3e-4 rather than TD3's 1e-3: at 1e-3 about one agent in four pushed its logits onto one action
    # within the first updates and never recovered (a cold softmax passes no gradient), measured on CartPole.
    "small": TD3DiscreteConfig(lr=3e-4),
    # Ours for inner agents of SE learning (`--inner-agents td3_discrete:tiny`), like SAC's tiny: a
    # 1x16 network, batch 32 and DDQN's 2,000-step budget on a proxy.
    "tiny": TD3DiscreteConfig(hidden=16, layers=1, batch_size=32, lr=3e-4, proxy_max_steps=2000),
    "paper": TD3DiscreteConfig(hidden=128, layers=2, activation="relu", lr=5e-4, batch_size=128, gamma=0.99,
                               tau=0.01, policy_delay=2, expl_noise=0.1, policy_noise=0.2, noise_clip=0.5,
                               init_episodes=10),
}
REAL_TASK_PRESETS: dict[str, str] = {}
"""Presets ``evaluate --env`` uses on real tasks (``small`` elsewhere; see ``agents.protocol``)."""


def temperature(config: TD3DiscreteConfig, updates: jax.Array) -> jax.Array:
    """Geometric annealing from T = ``temp_init`` to T / ``temp_factor`` over ``temp_anneal_updates``."""
    frac = jnp.minimum(updates, config.temp_anneal_updates) / config.temp_anneal_updates
    return config.temp_init * config.temp_factor ** -frac


def gumbel_head(config: TD3DiscreteConfig, n_actions: int) -> ActionHead:
    def action(logits, key, updates):
        gumbel = jax.random.gumbel(key, logits.shape)
        return jax.nn.softmax((logits + gumbel) / temperature(config, updates), axis=-1)

    def smooth(key, vec):
        return vec + jnp.clip(config.policy_noise * jax.random.normal(key, vec.shape), -config.noise_clip,
                              config.noise_clip)

    return ActionHead(dim=n_actions, action=action,
                      explore=lambda key, vec: vec + config.expl_noise * jax.random.normal(key, vec.shape),
                      random=lambda key: jax.nn.one_hot(jax.random.randint(key, (), 0, n_actions), n_actions),
                      smooth=smooth, to_env=lambda vec: jnp.argmax(vec).astype(jnp.int32))


def make_train(config: TD3DiscreteConfig, env, shapes: Shapes, stop_rule: str = "converged",
               threshold: float = 0.0):
    """Build ``train(key, env_params, hp) -> TrainResult`` (a ``common.TrainLoop``) (``params`` is the actor)."""
    n_actions = describe(env).n_actions
    head = gumbel_head(config, n_actions)
    return make_train_with_head(config, env, shapes, head, n_actions, lambda actor: actor, stop_rule,
                                threshold)


def make_policy(config: TD3DiscreteConfig):
    """Greedy action of a trained actor: the argmax of its logits."""

    def policy(params, hp, obs):
        return jnp.argmax(actor_out(params, obs, hp, config.activation)).astype(jnp.int32)

    return policy


def resolve(preset: str, **overrides) -> TD3DiscreteConfig:
    return common.resolve_preset(TD3DiscreteConfig.agent_name, PRESETS, preset, overrides)
