"""Soft Actor-Critic for discrete and continuous actions, trained entirely inside XLA.

One module, two action spaces, chosen by the env's action space when ``make_train`` builds its function
(a static Python choice, nothing traced); the trained ``Params`` carry ``action_high`` only for
continuous actions, which is how ``make_policy(config)`` tells the two apart:

- **Continuous** (Haarnoja et al. 2018; CleanRL ``sac_continuous_action`` as the style anchor): the
  actor outputs a Gaussian's mean and log-std (log-std squashed into [-5, 2] as in CleanRL), actions
  are ``tanh(sample) * action_high``; twin critics Q(s, a) take the observation and the env action.
  Targets and the actor loss use one reparameterised sample of the policy.
- **Discrete** (SAC-Discrete, Christodoulou 2019; CleanRL ``sac_atari``): the actor outputs logits of
  a categorical policy; twin critics output one value per action, and every expectation over the
  policy (soft target, actor loss, entropy) is computed exactly as a probability-weighted sum.

Both cases share one code path: the policy at a state is a set of *candidate actions* with weights
and log-probabilities (every action weighted by its probability; or one sample with weight 1), so
``soft value = sum_k w_k (min_i Q_i(s, a_k) - alpha log pi(a_k|s))`` serves the critic target and
(negated) the actor loss.

Entropy is tuned automatically (``alpha = exp(log_alpha)``, CleanRL's loss ``alpha * (H - H_target)``
with H the policy's entropy estimate). Target entropy: ``-action_dim`` for continuous actions (the
SAC paper's rule); ``target_entropy_scale * log(n_actions)`` for discrete ones. CleanRL's Atari
agent uses 0.89 of the uniform policy's entropy. On CartPole (2 actions, "small" preset, 4 seeds,
10k steps) 0.89 drove alpha to ~300 and kept the behaviour policy near random: the greedy policy
still scored 200, but training returns never reached the 195 stop threshold. 0.3 (entropy of a
95/5 policy) let 3 of 4 agents reach it in 3.4k-5.6k steps with greedy scores 190-200; 0.1 and 0.5
were no better, so 0.3 is our default.

Differences from CleanRL, all for running a vmapped population with varied hyperparameters:
one learning rate ``lr`` for actor, critics and temperature (the SAC paper's single 3e-4; CleanRL
uses 1e-3 for the critics); one gradient step of all three per environment step (no delayed actor
updates, soft target update every step also in the discrete case); learning starts after
``init_episodes`` episodes of uniformly random actions (the paper's unit for every inner agent),
not after a step count. The three losses are summed with stop-gradients so that each parameter set
receives only its own loss's gradient, and one Adam step updates all of them from the same batch:
the actor sees the critics of before this step (CleanRL updates the critics first). Actor and
critics are ``masked_mlp`` networks of the same traced shape (hidden, layers), varied per agent
like DDQN's (the shared ``hparams.HParams`` and its sampler), and the varied batch size is a mask over a
maximum-size batch.

Presets: "small" (ours, the default for SE work: 2x32 ReLU, lr 1e-3, batch 64, tau 0.01, alpha
from 0.2, 5 random episodes), "tiny" (ours, for inner agents of SE learning: 1x16, batch 32, 2 random
episodes) and "standard" (the usual SAC sizes: 2x256, lr 3e-4, batch 256, tau 0.005, alpha from 1).
The paper gives no SAC setting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from synthenv.agents import common
from synthenv.environment import describe, env_step
from synthenv.agents import masked_mlp
from synthenv.agents.hparams import HParams, Shapes, max_shapes, sample_hparams  # noqa: F401 (agent API)

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0  # CleanRL's range for the continuous actor's log-std


@dataclass(frozen=True)
class SACConfig(common.StopConfig):
    """SAC hyperparameters. Defaults: the usual SAC sizes (SAC paper, CleanRL): 2x256, batch 256."""

    hidden: int = 256
    layers: int = 2
    activation: str = "relu"
    lr: float = 3e-4
    batch_size: int = 256
    gamma: float = 0.99
    tau: float = 0.005
    alpha_init: float = 1.0
    """Initial entropy coefficient (CleanRL starts from log_alpha = 0); tuned automatically after."""
    target_entropy_scale: float = 0.3
    """Discrete actions only: the target entropy as a fraction of log(n_actions) (see module doc)."""
    init_episodes: int = 5
    """Episodes of uniformly random actions before learning starts."""
    buffer_size: int = 100_000

    def validate(self) -> None:
        checks = {
            "hidden": self.hidden >= 1, "layers": self.layers >= 1, "lr": self.lr > 0,
            "batch_size": self.batch_size >= 1, "gamma": 0 <= self.gamma <= 1, "tau": 0 < self.tau <= 1,
            "alpha_init": self.alpha_init > 0, "target_entropy_scale": 0 <= self.target_entropy_scale <= 1,
            "init_episodes": self.init_episodes >= 0, "buffer_size": self.buffer_size >= 1,
            **self.stop_checks(),
        }
        common.raise_if_invalid("SAC", self, checks)


Config = SACConfig
DISCRETE, CONTINUOUS = True, True  # action spaces this agent supports

PRESETS: dict[str, SACConfig] = {
    # Ours: the default for SE work. Small enough that a masked varied-HP population stays cheap.
    "small": SACConfig(hidden=32, layers=2, lr=1e-3, batch_size=64, tau=0.01, alpha_init=0.2,
                       init_episodes=5),
    # Ours for inner agents of SE learning (`--inner-agents sac:tiny`): a 1x16 network, as DDQN's
    # small preset; a generation of 48 varied-HP agents costs 10 s in place of small's 90 s. Two
    # random episodes, not five: an SE episode often lasts 200 steps, so five took half of the
    # 2,000-step budget on an SE and left the smallest, slowest-learning draws of the varied range
    # untrained (48 varied-HP agents on two SEs: 179.3 -> 199.6 and 186.3 -> 198.6, docs/agents.md).
    "tiny": SACConfig(hidden=16, layers=1, lr=1e-3, batch_size=32, tau=0.01, alpha_init=0.2,
                      init_episodes=2),
    # The usual SAC sizes (SAC paper, CleanRL).
    "standard": SACConfig(),
}
# Ours for continuous control on the real task (what `evaluate --env` uses there): small with a
# 30-episode stop window, so agents do not stop on a lucky stretch of training returns (small,
# 4 agents on Pendulum-v1: -284 on one of two seeds, one agent at -634; this: -127 to -165 on 6 seeds).
PRESETS["continuous"] = replace(PRESETS["small"], stop_window=30)
REAL_TASK_PRESETS: dict[str, str] = {"continuous": "continuous"}
"""Presets ``evaluate --env`` uses on real tasks (``small`` elsewhere; see ``agents.protocol``)."""


class Nets(NamedTuple):
    """Everything Adam updates: one actor, twin critics (stacked on a leading axis of 2), log alpha."""

    actor: dict
    critic: dict
    log_alpha: jax.Array


class Params(NamedTuple):
    """A trained agent, what ``TrainResult.params`` holds and the policy acts with. ``action_high``
    is None for discrete actions (a static pytree difference, so the policy needs no env)."""

    actor: dict
    critic: dict
    log_alpha: jax.Array
    action_high: jax.Array | None


class AgentState(NamedTuple):
    nets: Nets
    target_critic: dict
    opt_state: Any
    replay: common.Replay
    env_state: Any
    obs: jax.Array
    ep: common.Episodes
    stopped: jax.Array
    diverged: jax.Array
    key: jax.Array


# ---------------------------------------------------------------------------------------------------
# Networks and the policy, for either action space


def _mlp(params: dict, x: jax.Array, hp: HParams, activation: str) -> jax.Array:
    return masked_mlp.apply(params, x, masked_mlp.MLPShape(hp.hidden, hp.layers), activation)


def _gaussian(actor: dict, obs: jax.Array, hp: HParams, activation: str) -> tuple[jax.Array, jax.Array]:
    """Continuous actor: the pre-tanh Gaussian's mean and log-std (CleanRL's squashed log-std)."""
    mean, log_std = jnp.split(_mlp(actor, obs, hp, activation), 2, axis=-1)
    return mean, LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(log_std) + 1)


def _policy(continuous: bool, action_high: float, activation: str):
    """``pi(actor, obs, hp, key) -> (weights, candidates, log_pi)``, each with a trailing axis of K
    candidate actions: all actions weighted by their probability (discrete, K = n_actions, the exact
    expectation of SAC-Discrete; ``candidates`` is None) or one reparameterised tanh-Gaussian sample
    with weight 1 (continuous, K = 1; ``candidates`` has shape [..., 1, action_dim])."""

    def pi(actor, obs, hp, key):
        if not continuous:
            log_pi = jax.nn.log_softmax(_mlp(actor, obs, hp, activation))
            return jnp.exp(log_pi), None, log_pi
        mean, log_std = _gaussian(actor, obs, hp, activation)
        x = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        # log N(x) minus the log-Jacobian of a = tanh(x) * high; log(1 - tanh(x)^2) in a stable form.
        log_n = -0.5 * ((x - mean) / jnp.exp(log_std)) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
        log_jac = 2.0 * (math.log(2.0) - x - jax.nn.softplus(-2.0 * x)) + math.log(action_high)
        log_pi = jnp.sum(log_n - log_jac, axis=-1, keepdims=True)
        return jnp.ones_like(log_pi), (jnp.tanh(x) * action_high)[..., None, :], log_pi

    return pi


def _critics(continuous: bool, activation: str):
    """``q_candidates(critic, obs, candidates, hp)`` -> [2, ..., K] and ``q_taken(critic, obs, action,
    hp)`` -> [2, ...]: the twin critics' values of the policy's candidates and of a stored action."""

    def twin(critic, x, hp):
        return jax.vmap(lambda p: _mlp(p, x, hp, activation))(critic)

    def q_candidates(critic, obs, candidates, hp):
        if not continuous:
            return twin(critic, obs, hp)
        return twin(critic, jnp.concatenate([obs, candidates[..., 0, :]], axis=-1), hp)

    def q_taken(critic, obs, action, hp):
        if not continuous:
            return jnp.take_along_axis(twin(critic, obs, hp), action[None, ..., None], axis=-1)[..., 0]
        return twin(critic, jnp.concatenate([obs, action], axis=-1), hp)[..., 0]

    return q_candidates, q_taken


# ---------------------------------------------------------------------------------------------------
# Training


def make_train(config: SACConfig, env, shapes: Shapes, stop_rule: str = "converged",
               threshold: float = 0.0):
    """Build ``train(key, env_params, hp) -> TrainResult`` (a ``common.TrainLoop``).

    ``env`` is any gymnax environment (``synthenv.environment``);
    its action space (Discrete or Box) chooses the branch. ``stop_rule``: "converged" (on an SE, the paper's
    rule) or "threshold" (on the real task); see ``common.make_stop_test``.
    """
    config.validate()
    spaces = describe(env)
    continuous, obs_dim, act = spaces.continuous, spaces.obs_dim, config.activation
    if continuous:
        action_dim, high = spaces.action_dim, float(spaces.action_high)
        actor_out, critic_in, critic_out = 2 * action_dim, obs_dim + action_dim, 1
        action_shape, action_dtype = (action_dim,), jnp.float32
        target_entropy = -float(action_dim)
    else:
        n_actions, high = spaces.n_actions, 1.0
        actor_out, critic_in, critic_out = n_actions, obs_dim, n_actions
        action_shape, action_dtype = (), jnp.int32
        target_entropy = config.target_entropy_scale * math.log(n_actions)
    pi = _policy(continuous, high, act)
    q_candidates, q_taken = _critics(continuous, act)
    capacity = min(config.buffer_size, common.step_cap(config, stop_rule))
    stop_test = common.make_stop_test(config, stop_rule, threshold)
    adam = optax.scale_by_adam()

    def loss_fn(nets: Nets, target_critic, batch, hp, key):
        """Critic + actor + temperature losses; stop-gradients route each to its own parameters."""
        obs, action, reward, next_obs, done = batch
        k_next, k_now = jax.random.split(key)
        alpha = jnp.exp(nets.log_alpha)
        mask = common.batch_mask(shapes.batch_size, hp.batch_size)
        mean = lambda x: jnp.sum(mask * x) / hp.batch_size.astype(jnp.float32)  # noqa: E731

        # Critics: soft Bellman target from the target critics under the current policy at s'.
        w, cand, log_pi = pi(nets.actor, next_obs, hp, k_next)
        next_v = jnp.sum(w * (jnp.min(q_candidates(target_critic, next_obs, cand, hp), axis=0)
                              - alpha * log_pi), axis=-1)
        y = jax.lax.stop_gradient(reward + config.gamma * (1.0 - done) * next_v)
        critic_loss = mean(jnp.sum((q_taken(nets.critic, obs, action, hp) - y) ** 2, axis=0))

        # Actor: maximise the soft value at s (critics and alpha held fixed).
        w, cand, log_pi = pi(nets.actor, obs, hp, k_now)
        q = jnp.min(q_candidates(jax.lax.stop_gradient(nets.critic), obs, cand, hp), axis=0)
        actor_loss = mean(jnp.sum(w * (jax.lax.stop_gradient(alpha) * log_pi - q), axis=-1))

        # Temperature: raise alpha when the policy's entropy is below the target, lower it above.
        entropy = jax.lax.stop_gradient(-jnp.sum(w * log_pi, axis=-1))
        alpha_loss = mean(alpha * (entropy - target_entropy))
        return critic_loss + actor_loss + alpha_loss

    def init_state(key, env_params, hp) -> AgentState:
        k_actor, k_critic, k_env, key = jax.random.split(key, 4)
        shape = masked_mlp.MLPShape(hp.hidden, hp.layers)
        init = lambda k, n_in, n_out: masked_mlp.init_params(  # noqa: E731
            k, n_in, n_out, shapes.hidden, shapes.layers, shape)
        critic = jax.vmap(lambda k: init(k, critic_in, critic_out))(jax.random.split(k_critic, 2))
        nets = Nets(init(k_actor, obs_dim, actor_out), critic, jnp.log(jnp.float32(config.alpha_init)))
        obs, env_state = env.reset(k_env, env_params)
        return AgentState(nets=nets, target_critic=critic, opt_state=adam.init(nets),
                          replay=common.Replay.init(capacity, obs_dim, action_shape, action_dtype),
                          env_state=env_state, obs=obs, ep=common.Episodes.init(config.stop_window),
                          stopped=jnp.bool_(False), diverged=jnp.bool_(False), key=key)

    def random_action(key):
        if continuous:
            return jax.random.uniform(key, action_shape, jnp.float32, -high, high)
        return jax.random.randint(key, (), 0, n_actions, jnp.int32)

    def sample_action(actor, obs, hp, key):
        k_pi, k_cat = jax.random.split(key)
        _, cand, log_pi = pi(actor, obs, hp, k_pi)
        if continuous:
            return cand[0]
        return jax.random.categorical(k_cat, log_pi).astype(jnp.int32)

    def step(s: AgentState, env_params, hp: HParams) -> AgentState:
        key, k_random, k_act, k_env, k_batch, k_loss = jax.random.split(s.key, 6)
        active = ~s.stopped
        key = common.keep_where(active, key, s.key)  # a stopped (or paused) agent draws nothing

        # Act: uniformly random during the initial episodes, then a sample of the policy.
        past_init = s.ep.episodes >= config.init_episodes
        action = jnp.where(past_init, sample_action(s.nets.actor, s.obs, hp, k_act), random_action(k_random))
        tr = env_step(env, k_env, s.env_state, action, env_params)
        replay = s.replay.add(active, s.obs, action, tr.reward, tr.next_obs, tr.td_done)

        # Learn: one gradient step of critics, actor and alpha per environment step after the initial
        # episodes, then a soft update of the target critics.
        batch = replay.sample(k_batch, shapes.batch_size)
        loss, grads = jax.value_and_grad(loss_fn)(s.nets, s.target_critic, batch, hp, k_loss)
        updates, opt_state = adam.update(grads, s.opt_state)
        nets = jax.tree.map(lambda p, u: p - hp.lr * u, s.nets, updates)
        target = jax.tree.map(lambda t, p: (1 - config.tau) * t + config.tau * p, s.target_critic, nets.critic)
        learn = active & past_init
        nets, target, opt_state = common.keep_where(learn, (nets, target, opt_state),
                                                    (s.nets, s.target_critic, s.opt_state))
        diverged = s.diverged | (active & (tr.bad | (learn & ~jnp.isfinite(loss))))

        # Episode bookkeeping, reset on termination or truncation.
        ep_end = active & (tr.terminated | tr.truncated)
        ep = s.ep.record(active, tr.reward, ep_end)
        # gymnax auto-resets where the episode ended; a stopped (or paused) agent's env stays put.
        obs, env_state = common.keep_where(active, (tr.obs, tr.state), (s.obs, s.env_state))
        stop = common.should_end(config, stop_rule, stop_test, ep, ep_end, diverged)
        return AgentState(nets=nets, target_critic=target, opt_state=opt_state, replay=replay,
                          env_state=env_state, obs=obs, ep=ep, stopped=s.stopped | stop,
                          diverged=diverged, key=key)

    def result(s: AgentState) -> common.TrainResult:
        params = Params(s.nets.actor, s.nets.critic, s.nets.log_alpha, jnp.float32(high) if continuous else None)
        return common.TrainResult(params, s.ep.steps, s.ep.episodes, s.diverged, s.ep.recent[-1], s.replay)

    return common.TrainLoop(init_state, step, result, config.chunk_steps)


def make_policy(config: SACConfig):
    """Deterministic action of a trained agent: ``policy(params, hp, obs) -> action`` with ``params``
    a ``Params``: argmax of the logits, or ``tanh(mean) * action_high`` for continuous actions."""

    def policy(params: Params, hp, obs):
        if params.action_high is None:
            return jnp.argmax(_mlp(params.actor, obs, hp, config.activation)).astype(jnp.int32)
        mean, _ = _gaussian(params.actor, obs, hp, config.activation)
        return jnp.tanh(mean) * params.action_high

    return policy


def resolve(preset: str, **overrides) -> SACConfig:
    return common.resolve_preset("SAC", PRESETS, preset, overrides)
