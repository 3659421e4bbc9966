"""TD3 (Fujimoto et al. 2018) for continuous actions, trained entirely inside XLA, and the TD3 core
that discrete TD3 (``td3_discrete``) shares.

TD3 = DDPG plus three fixes: twin critics (the TD target takes the smaller of the two target
critics), target policy smoothing (clipped Gaussian noise on the target action) and delayed actor
updates (the actor and all target networks move once every ``policy_delay`` critic updates, with
soft updates ``tau``). Exploration adds Gaussian noise to the actor's action.

Readable top to bottom: config and presets, the action head (how the actor's output becomes an
action vector: the only part discrete TD3 replaces), the networks, and ``make_train_with_head``
(act, store, learn, episode bookkeeping, stop test) which both agents use. Stopping, chunked loops
and masks for a vmapped population work as in ``ddqn`` (see ``synthenv.agents.common``).

Continuous head: actor = tanh(MLP) * action_high; exploration noise N(0, expl_noise * action_high),
target smoothing noise N(0, policy_noise * action_high) clipped to ±noise_clip * action_high, actions
clipped to [-action_high, action_high] (CleanRL's td3_continuous_action). Differences from CleanRL:
one learning rate and one shape (hidden, layers) for actor and critics, as the paper varies them;
warm-up is ``init_episodes`` episodes of uniform random actions (the paper) instead of a step count;
the actor is updated with the critic of the same step (as CleanRL) and both are masked MLPs, so the
varied HPs (lr, batch size, hidden size, layers) are the replay-based agents' (``synthenv.agents.hparams``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from synthenv.agents import common
from synthenv.environment import describe, env_step
from synthenv.agents import masked_mlp
from synthenv.agents.hparams import HParams, Shapes, max_shapes, sample_hparams  # noqa: F401 (agent API)


@dataclass(frozen=True)
class TD3Config(common.StopConfig):
    """TD3 hyperparameters. Defaults: "small" (our SE default); noise scales are CleanRL's."""

    hidden: int = 32
    layers: int = 2
    activation: str = "relu"
    lr: float = 1e-3
    batch_size: int = 64
    gamma: float = 0.99
    tau: float = 0.005
    policy_delay: int = 2
    """Critic updates per actor (and target) update."""
    expl_noise: float = 0.1
    """Std of the exploration noise on the action vector (times action_high for continuous actions)."""
    policy_noise: float = 0.2
    """Std of the target policy smoothing noise (times action_high for continuous actions)."""
    noise_clip: float = 0.5
    """The smoothing noise is clipped to ±noise_clip (times action_high for continuous actions)."""
    init_episodes: int = 5
    """Episodes of uniformly random actions before learning starts."""
    buffer_size: int = 100_000
    proxy_max_steps: int = 10_000
    """Our cap on environment steps per agent on a proxy."""

    def checks(self) -> dict[str, bool]:
        """Field -> valid; ``validate`` reports the first invalid one (subclasses add their fields)."""
        return {
            "hidden": self.hidden >= 1, "layers": self.layers >= 1, "lr": self.lr > 0,
            "batch_size": self.batch_size >= 1, "gamma": 0 <= self.gamma <= 1, "tau": 0 < self.tau <= 1,
            "policy_delay": self.policy_delay >= 1, "expl_noise": self.expl_noise >= 0,
            "policy_noise": self.policy_noise >= 0, "noise_clip": self.noise_clip >= 0,
            "init_episodes": self.init_episodes >= 0, "buffer_size": self.buffer_size >= 1,
            **self.stop_checks(),
        }

    agent_name = "TD3"
    """How validation and preset messages name the agent."""

    def validate(self) -> None:
        common.raise_if_invalid(self.agent_name, self, self.checks())


Config = TD3Config
DISCRETE, CONTINUOUS = False, True  # action spaces this agent supports

PRESETS: dict[str, TD3Config] = {
    # Ours: the default. Small networks keep a masked varied-HP population cheap.
    "small": TD3Config(),
    # The paper's Pendulum TD3 config (the authors' repository): ReLU 2x128, batch 256, lr 1e-3,
    # tau 0.02, 20 random initial episodes.
    "paper": TD3Config(hidden=128, layers=2, activation="relu", lr=1e-3, batch_size=256, gamma=0.99,
                       tau=0.02, init_episodes=20),
}
# Ours for continuous control on the real task (what `evaluate --env` uses there): small with a
# 30-episode stop window, so agents do not stop on a lucky stretch of training returns (small,
# 4 agents on Pendulum-v1: one agent at -466 or -354 on two of two seeds; this: -137 to -185 on 5 seeds).
PRESETS["continuous"] = replace(PRESETS["small"], stop_window=30)
REAL_TASK_PRESETS: dict[str, str] = {"continuous": "continuous"}
"""Presets ``evaluate --env`` uses on real tasks (``small`` elsewhere; see ``agents.protocol``)."""


# ---------------------------------------------------------------------------------------------------
# Action head: how the actor's output becomes the action vector the critics see and the env gets


class ActionHead(NamedTuple):
    """The action-space-specific part of TD3. Action vectors have ``dim`` entries.

    ``action(actor_out, key, updates)``: the actor's (differentiable) action vector from its raw output
    (one vector or a batch: the last axis is the action).
    ``explore(key, vec)``: the vector with exploration noise. ``random(key)``: a warm-up action vector.
    ``smooth(key, vec)``: target policy smoothing. ``to_env(vec)``: the action the environment gets.
    """

    dim: int
    action: Callable
    explore: Callable
    random: Callable
    smooth: Callable
    to_env: Callable


def continuous_head(config: TD3Config, action_dim: int, high: float) -> ActionHead:
    def clip(v):
        return jnp.clip(v, -high, high)

    def explore(key, vec):
        return clip(vec + config.expl_noise * high * jax.random.normal(key, vec.shape))

    def smooth(key, vec):
        noise = jnp.clip(config.policy_noise * jax.random.normal(key, vec.shape), -config.noise_clip,
                         config.noise_clip)
        return clip(vec + noise * high)

    return ActionHead(dim=action_dim, action=lambda out, key, updates: jnp.tanh(out) * high, explore=explore,
                      random=lambda key: jax.random.uniform(key, (action_dim,), jnp.float32, -high, high),
                      smooth=smooth, to_env=lambda vec: vec)


# ---------------------------------------------------------------------------------------------------
# Networks: actor MLP (raw output), twin critics on (state, action vector); all masked to hp's shape


def actor_out(params: dict, obs: jax.Array, hp: HParams, activation: str) -> jax.Array:
    return masked_mlp.apply(params, obs, masked_mlp.MLPShape(hp.hidden, hp.layers), activation)


def q_value(critic: dict, obs: jax.Array, vec: jax.Array, hp: HParams, activation: str) -> jax.Array:
    return actor_out(critic, jnp.concatenate([obs, vec], axis=-1), hp, activation)[..., 0]


def twin_q(critics: dict, obs: jax.Array, vec: jax.Array, hp: HParams, activation: str) -> jax.Array:
    """Both critics' Q(s, a) (shape ``(2, batch)``): their parameters are stacked on a leading axis."""
    return jax.vmap(lambda c: q_value(c, obs, vec, hp, activation))(critics)


class AgentState(NamedTuple):
    actor: dict
    actor_target: dict
    critics: dict
    critics_target: dict
    actor_opt: Any
    critic_opt: Any
    updates: jax.Array  # critic updates so far (sets the actor delay and discrete TD3's temperature)
    replay: common.Replay
    env_state: Any
    obs: jax.Array
    ep: common.Episodes
    stopped: jax.Array
    diverged: jax.Array
    key: jax.Array


def make_train_with_head(config: TD3Config, env, shapes: Shapes, head: ActionHead, actor_dim: int,
                         trained: Callable, stop_rule: str = "converged", threshold: float = 0.0):
    """Build ``train(key, env_params, hp) -> TrainResult`` (a ``common.TrainLoop``) for TD3 with the given action head.

    ``actor_dim`` is the actor network's output width (the action dim, or the number of logits);
    ``trained(actor)`` makes the result's ``params`` (what the agent's ``make_policy`` reads).
    ``stop_rule``: "converged" (on an SE) or "threshold" (on the real task); see ``common.make_stop_test``.
    """
    config.validate()
    obs_dim, act = describe(env).obs_dim, config.activation
    capacity = min(config.buffer_size, common.step_cap(config, stop_rule))
    stop_test = common.make_stop_test(config, stop_rule, threshold)
    adam = optax.scale_by_adam()

    def policy_vec(actor, obs, hp, key, updates):
        return head.action(actor_out(actor, obs, hp, act), key, updates)

    def critic_loss_fn(critics, s: AgentState, batch, hp, key):
        obs, vec, reward, next_obs, done = batch
        k_act, k_smooth = jax.random.split(key)
        next_vec = head.smooth(k_smooth, policy_vec(s.actor_target, next_obs, hp, k_act, s.updates))
        next_q = jnp.min(twin_q(s.critics_target, next_obs, next_vec, hp, act), axis=0)
        y = jax.lax.stop_gradient(reward + config.gamma * (1.0 - done) * next_q)
        mask = common.batch_mask(shapes.batch_size, hp.batch_size)
        sq = jnp.sum((twin_q(critics, obs, vec, hp, act) - y) ** 2, axis=0)
        return jnp.sum(mask * sq) / hp.batch_size.astype(jnp.float32)

    def actor_loss_fn(actor, critics, obs, hp, key, updates):
        vec = policy_vec(actor, obs, hp, key, updates)
        mask = common.batch_mask(shapes.batch_size, hp.batch_size)
        q1 = q_value(jax.tree.map(lambda c: c[0], critics), obs, vec, hp, act)  # TD3: the actor follows Q1
        return -jnp.sum(mask * q1) / hp.batch_size.astype(jnp.float32)

    def adam_step(params, grads, opt_state, lr):
        updates, opt_state = adam.update(grads, opt_state)
        return jax.tree.map(lambda p, u: p - lr * u, params, updates), opt_state

    def soft(target, online):
        return jax.tree.map(lambda t, p: (1 - config.tau) * t + config.tau * p, target, online)

    def init_state(key, env_params, hp) -> AgentState:
        k_actor, k_critic, k_env, key = jax.random.split(key, 4)
        shape = masked_mlp.MLPShape(hp.hidden, hp.layers)
        actor = masked_mlp.init_params(k_actor, obs_dim, actor_dim, shapes.hidden, shapes.layers, shape)
        critics = jax.vmap(lambda k: masked_mlp.init_params(k, obs_dim + head.dim, 1, shapes.hidden,
                                                            shapes.layers, shape))(jax.random.split(k_critic))
        obs, env_state = env.reset(k_env, env_params)
        return AgentState(actor=actor, actor_target=actor, critics=critics, critics_target=critics,
                          actor_opt=adam.init(actor), critic_opt=adam.init(critics), updates=jnp.int32(0),
                          replay=common.Replay.init(capacity, obs_dim, (head.dim,), jnp.float32),
                          env_state=env_state, obs=obs, ep=common.Episodes.init(config.stop_window),
                          stopped=jnp.bool_(False), diverged=jnp.bool_(False), key=key)

    def step(s: AgentState, env_params, hp: HParams) -> AgentState:
        key, k_act, k_noise, k_random, k_env, k_batch, k_critic, k_actor = jax.random.split(s.key, 8)
        active = ~s.stopped
        key = common.keep_where(active, key, s.key)  # a stopped (or paused) agent draws nothing

        # Act: uniformly random during the initial episodes, then the actor's action plus noise.
        warm = s.ep.episodes < config.init_episodes
        vec = jnp.where(warm, head.random(k_random),
                        head.explore(k_noise, policy_vec(s.actor, s.obs, hp, k_act, s.updates)))
        tr = env_step(env, k_env, s.env_state, head.to_env(vec), env_params)
        replay = s.replay.add(active, s.obs, vec, tr.reward, tr.next_obs, tr.td_done)

        # Learn: a critic update every step; the actor and the targets every policy_delay updates.
        learn = active & ~warm
        batch = replay.sample(k_batch, shapes.batch_size)
        critic_loss, grads = jax.value_and_grad(critic_loss_fn)(s.critics, s, batch, hp, k_critic)
        critics, critic_opt = adam_step(s.critics, grads, s.critic_opt, hp.lr)
        actor_loss, grads = jax.value_and_grad(actor_loss_fn)(s.actor, critics, batch[0], hp, k_actor, s.updates)
        actor, actor_opt = adam_step(s.actor, grads, s.actor_opt, hp.lr)
        delayed = learn & (s.updates % config.policy_delay == 0)
        critics, critic_opt = common.keep_where(learn, (critics, critic_opt), (s.critics, s.critic_opt))
        actor, actor_opt, actor_target, critics_target = common.keep_where(
            delayed, (actor, actor_opt, soft(s.actor_target, actor), soft(s.critics_target, critics)),
            (s.actor, s.actor_opt, s.actor_target, s.critics_target))
        losses_ok = jnp.isfinite(critic_loss) & (jnp.isfinite(actor_loss) | ~delayed)
        diverged = s.diverged | (active & (tr.bad | (learn & ~losses_ok)))

        # Episode bookkeeping, reset on termination or truncation.
        ep_end = active & (tr.terminated | tr.truncated)
        ep = s.ep.record(active, tr.reward, ep_end)
        # gymnax auto-resets where the episode ended; a stopped (or paused) agent's env stays put.
        obs, env_state = common.keep_where(active, (tr.obs, tr.state), (s.obs, s.env_state))
        stop = common.should_end(config, stop_rule, stop_test, ep, ep_end, diverged)
        return AgentState(actor=actor, actor_target=actor_target, critics=critics, critics_target=critics_target,
                          actor_opt=actor_opt, critic_opt=critic_opt, updates=s.updates + learn, replay=replay,
                          env_state=env_state, obs=obs, ep=ep, stopped=s.stopped | stop, diverged=diverged,
                          key=key)

    def result(s: AgentState) -> common.TrainResult:
        return common.TrainResult(trained(s.actor), s.ep.steps, s.ep.episodes, s.diverged, s.ep.recent[-1],
                                  s.replay)

    return common.TrainLoop(init_state, step, result, config.chunk_steps)


def make_train(config: TD3Config, env, shapes: Shapes, stop_rule: str = "converged", threshold: float = 0.0):
    """Build ``train(key, env_params, hp) -> TrainResult`` (a ``common.TrainLoop``).

    The result's ``params`` are ``{"actor": ..., "action_high": ...}``: they carry the env's action
    bound, so ``make_policy(config)`` needs no env.
    """
    spaces = describe(env)
    high = spaces.action_high
    head = continuous_head(config, spaces.action_dim, high)

    def trained(actor):
        return {"actor": actor, "action_high": jnp.float32(high)}

    return make_train_with_head(config, env, shapes, head, spaces.action_dim, trained, stop_rule, threshold)


def make_policy(config: TD3Config):
    """Deterministic action of a trained actor: ``policy(params, hp, obs) -> tanh(out) * action_high``."""

    def policy(params, hp, obs):
        return jnp.tanh(actor_out(params["actor"], obs, hp, config.activation)) * params["action_high"]

    return policy


def resolve(preset: str, **overrides) -> TD3Config:
    return common.resolve_preset(TD3Config.agent_name, PRESETS, preset, overrides)
