"""PPO (clipped surrogate, GAE) for discrete and continuous actions, trained entirely inside XLA.

Style anchor: CleanRL ``ppo.py`` / ``ppo_continuous_action.py`` and PureJaxRL. One agent acts in ONE
environment (what an SE gives each member of a population). An iteration collects ``rollout_steps``
transitions with ``lax.scan``, computes GAE advantages, then runs ``epochs`` passes of shuffled
minibatch updates of ``loss = clipped surrogate - ent_coef * entropy + vf_coef * value MSE`` with
per-minibatch advantage normalisation, global-norm gradient clipping and Adam (eps 1e-5).
Iterations run in ``common.run_until_stopped`` (one iteration per loop step), so a vmapped
population runs only until its slowest agent stops.

Action spaces, chosen from the env's action space (``describe(env)``):
- discrete: a categorical policy over the actor's logits; the greedy policy is the argmax.
- continuous: a Gaussian with a state-independent, learned log-std (CleanRL's choice). Sampled
  actions are stored unclipped (their log-probabilities stay exact) and clipped to
  ``[-action_high, action_high]`` for the environment; the deterministic policy is the clipped mean.
  The trained params carry ``action_high`` so ``make_policy(config)`` can clip without the env.

Stopping and bookkeeping per environment step, as in DDQN: ``common.Episodes`` counts steps and
episodes, the stop rule (converged on an SE, threshold on the real task) and the step / episode caps
are checked at every step. An agent that stops mid-rollout freezes there (environment, counters,
params) and skips that iteration's update: its params are the ones that earned the stopping returns.

Terminated vs truncated: the rollout stores each step's true next observation (before the reset), so
GAE bootstraps ``V(next_obs)`` on truncation and cuts it only on ``td_done``; the advantage recursion
is cut at every episode end (terminated or truncated).

Varied hyperparameters (masked, so they may differ inside one vmap): lr, hidden size and layer count of
both actor and critic (``masked_mlp``), and the minibatch size: every member runs the largest number of
minibatches per epoch at the largest minibatch size, and rows / minibatches past its own are masked
out (no update). The minibatch size is capped at ``rollout_steps``. With fixed HPs nothing is wasted;
varied, every member pays for the largest shapes (measured on this machine, 4 agents x 10,240 CartPole
steps: "small" 0.16 s fixed, 0.8 s with only the minibatch masked, 1.0 s with only the nets masked,
5.1 s with both; "default" 0.9 s fixed, 113 s varied, so use "small" for varied-HP populations).

Measured (fixed seeds, 4 agents, real task, threshold stop, greedy test): CartPole-v0 "small" solves
(200) in 8k-20k steps; Pendulum-v1 "default" goes from about -1270 untrained to about -230 within 40k
steps ("small": about -940 at 50k); MountainCarContinuous-v0 is not learned (50k steps, "default":
the policy settles on doing nothing, return about 0; the usual PPO failure without exploration help).

Where we differ from CleanRL: separate actor and critic MLPs built by ``masked_mlp`` (PyTorch-style
uniform init, the actor's output layer scaled by 0.01 in place of CleanRL's orthogonal init with gain
0.01), an unclipped value loss, no learning-rate annealing (the run length is set by a stop rule, not
known in advance), and an optional running reward scaling (CleanRL's ``NormalizeReward``: divide by the
running std of the discounted return), built in because an SE's reward scale is whatever evolution made.
The paper gives no PPO settings, so there is no paper preset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from synthenv.agents import common
from synthenv.environment import EnvInfo, describe, env_step
from synthenv.agents import hparams as hpmod
from synthenv.agents import masked_mlp


@dataclass(frozen=True)
class PPOConfig(common.StopConfig):
    """PPO hyperparameters. Defaults: CleanRL's, for one environment per agent."""

    hidden: int = 64
    layers: int = 2
    activation: str = "tanh"
    lr: float = 3e-4
    rollout_steps: int = 512
    """Environment steps collected per iteration (CleanRL: 4 envs x 128 discrete, 1 x 2048 continuous)."""
    minibatch_size: int = 64
    epochs: int = 10
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    max_grad_norm: float = 0.5
    init_log_std: float = 0.0
    """Continuous actions: the initial log standard deviation of the Gaussian policy."""
    reward_norm: bool = True
    """Scale rewards by the running std of the discounted return (CleanRL's NormalizeReward)."""
    max_steps: int = 200_000
    """Our cap on environment steps per agent on the real task."""
    proxy_max_steps: int = 20_000
    """Our cap on environment steps per agent on a proxy (PPO learns from fewer updates per step)."""
    chunk_steps: int = 1
    """Iterations (rollout + update) per while-loop step."""

    def validate(self) -> None:
        checks = {
            "hidden": self.hidden >= 1, "layers": self.layers >= 1, "lr": self.lr > 0,
            "rollout_steps": self.rollout_steps >= 1,
            "minibatch_size": 1 <= self.minibatch_size <= self.rollout_steps, "epochs": self.epochs >= 1,
            "gamma": 0 <= self.gamma <= 1, "gae_lambda": 0 <= self.gae_lambda <= 1,
            "clip_eps": self.clip_eps > 0, "vf_coef": self.vf_coef >= 0, "ent_coef": self.ent_coef >= 0,
            "max_grad_norm": self.max_grad_norm > 0, "init_log_std": math.isfinite(self.init_log_std),
            **self.stop_checks(),
        }
        common.raise_if_invalid("PPO", self, checks)


Config = PPOConfig
DISCRETE, CONTINUOUS = True, True  # action spaces this agent supports

PRESETS: dict[str, PPOConfig] = {
    # CleanRL-like: 2 x 64 tanh actor and critic, 10 epochs of minibatches of 64.
    "default": PPOConfig(),
    # Continuous control on the real task (the default there): CleanRL's continuous rollout length.
    # With 512-step rollouts, agents that stop on a lucky training stretch scored -348 and -420 on
    # Pendulum-v1 (4 agents, two of three seeds); with 2,048, -169 to -183 on three unseen seeds.
    "continuous": PPOConfig(rollout_steps=2048),
    # Ours for SE work: small nets and short rollouts, so a masked varied-HP population stays cheap.
    "small": PPOConfig(hidden=32, layers=1, lr=1e-3, rollout_steps=128, minibatch_size=32, epochs=4,
                       ent_coef=0.01),
    # Ours for inner agents of SE learning (`--inner-agents ppo:tiny`): small with a 4,000-step cap on
    # a proxy (a generation of 48 varied-HP agents: 8 s in place of small's 34 s), no reward scaling
    # and no entropy bonus. The SE's reward scale is learned, and scaling it away hurt: on two SEs
    # learned with ddqn,ppo:tiny,sac:tiny, 16 varied-HP agents scored 123/114 with small's scaling and
    # entropy bonus, 192/148 without the scaling, 197/179 without either (docs/agents.md).
    "tiny": PPOConfig(hidden=32, layers=1, lr=1e-3, rollout_steps=128, minibatch_size=32, epochs=4,
                      ent_coef=0.0, reward_norm=False, proxy_max_steps=4000),
}
REAL_TASK_PRESETS: dict[str, str] = {"continuous": "continuous"}
"""Presets ``evaluate --env`` uses on real tasks (``small`` elsewhere; see ``agents.protocol``)."""


class HParams(NamedTuple):
    """Per-agent hyperparameters that may differ inside one vmapped population."""

    lr: jax.Array
    minibatch_size: jax.Array
    hidden: jax.Array
    layers: jax.Array


@dataclass(frozen=True)
class Shapes:
    """The static maximum shapes every member is allocated at."""

    hidden: int
    layers: int
    minibatch_size: int
    minibatches: int
    """Minibatches per epoch of the member with the smallest minibatch size."""


def max_shapes(config: PPOConfig, vary: bool, stratum: hpmod.StratumParts | None = None) -> Shapes:
    mb_lo, mb_hi = (min(b, config.rollout_steps) for b in hpmod.bounds(config, "minibatch_size", vary, stratum))
    return Shapes(hpmod.upper(config, "hidden", vary, stratum), hpmod.upper(config, "layers", vary, stratum), mb_hi,
                  config.rollout_steps // mb_lo)


def sample_hparams(key: jax.Array, config: PPOConfig, vary: bool, stratum: hpmod.StratumParts | None = None) -> HParams:
    """The varied-HP rule (``hparams.draw``) with the minibatch size capped at ``rollout_steps``."""
    hp = hpmod.draw(HParams, key, config, vary, stratum)
    return hp._replace(minibatch_size=jnp.minimum(hp.minibatch_size, config.rollout_steps))


# ---------------------------------------------------------------------------------------------------
# Networks and the action distribution


def init_params(key: jax.Array, spaces: EnvInfo, shapes: Shapes, hp: HParams, config: PPOConfig) -> dict:
    """Fresh actor and critic (and, for continuous actions, the state-independent log-std)."""
    k_actor, k_critic = jax.random.split(key)
    shape = masked_mlp.MLPShape(hp.hidden, hp.layers)
    out_dim = spaces.action_dim if spaces.continuous else spaces.n_actions
    actor = masked_mlp.init_params(k_actor, spaces.obs_dim, out_dim, shapes.hidden, shapes.layers, shape)
    # A near-uniform (discrete) or near-zero-mean (continuous) initial policy, as CleanRL's gain 0.01.
    actor = {**actor, "w_out": 0.01 * actor["w_out"], "b_out": 0.01 * actor["b_out"]}
    critic = masked_mlp.init_params(k_critic, spaces.obs_dim, 1, shapes.hidden, shapes.layers, shape)
    params = {"actor": actor, "critic": critic}
    if spaces.continuous:
        params["log_std"] = jnp.full((spaces.action_dim,), config.init_log_std, jnp.float32)
    return params


def policy_params(params: dict, spaces: EnvInfo) -> dict:
    """What ``make_policy`` needs: the trained params plus ``action_high`` for continuous actions."""
    return {**params, "action_high": jnp.float32(spaces.action_high)} if spaces.continuous else params


def actor_out(params: dict, obs: jax.Array, hp: HParams, activation: str) -> jax.Array:
    """Logits (discrete) or the Gaussian mean (continuous)."""
    return masked_mlp.apply(params["actor"], obs, masked_mlp.MLPShape(hp.hidden, hp.layers), activation)


def value(params: dict, obs: jax.Array, hp: HParams, activation: str) -> jax.Array:
    v = masked_mlp.apply(params["critic"], obs, masked_mlp.MLPShape(hp.hidden, hp.layers), activation)
    return v[..., 0]


def log_prob_entropy(params: dict, out: jax.Array, action: jax.Array, continuous: bool):
    """Log-probability of ``action`` and the entropy of the policy distribution."""
    if continuous:
        log_std = params["log_std"]
        logp = -0.5 * ((action - out) / jnp.exp(log_std)) ** 2 - log_std - 0.5 * jnp.log(2 * jnp.pi)
        entropy = jnp.broadcast_to(0.5 + 0.5 * jnp.log(2 * jnp.pi) + log_std, out.shape)
        return logp.sum(-1), entropy.sum(-1)
    logits = jax.nn.log_softmax(out)
    logp = jnp.take_along_axis(logits, action[..., None], axis=-1)[..., 0]
    return logp, -jnp.sum(jnp.exp(logits) * logits, axis=-1)


def sample_action(key: jax.Array, params: dict, out: jax.Array, continuous: bool) -> jax.Array:
    if continuous:
        return out + jnp.exp(params["log_std"]) * jax.random.normal(key, out.shape)
    return jax.random.categorical(key, out).astype(jnp.int32)


# ---------------------------------------------------------------------------------------------------
# Training


class RewardScale(NamedTuple):
    """Running std of the discounted return (gym's ``NormalizeReward``), one environment."""

    ret: jax.Array
    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @staticmethod
    def init() -> "RewardScale":
        return RewardScale(jnp.float32(0), jnp.float32(0), jnp.float32(1), jnp.float32(1e-4))

    def update(self, reward, ep_end, gamma: float) -> tuple["RewardScale", jax.Array]:
        """The new statistics and the scaled reward."""
        ret = self.ret * gamma + reward
        delta, total = ret - self.mean, self.count + 1
        var = (self.var * self.count + delta**2 * self.count / total) / total
        scaled = reward / jnp.sqrt(var + 1e-8)
        return RewardScale(jnp.where(ep_end, 0.0, ret), self.mean + delta / total, var, total), scaled


class Rollout(NamedTuple):
    """One iteration's transitions, time-major; ``next_obs`` is before any reset (for bootstrapping)."""

    obs: jax.Array
    action: jax.Array
    logp: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    td_done: jax.Array
    ep_end: jax.Array


class Actor(NamedTuple):
    """What changes at every environment step."""

    env_state: Any
    obs: jax.Array
    ep: common.Episodes
    scale: RewardScale
    stopped: jax.Array
    diverged: jax.Array


class AgentState(NamedTuple):
    params: dict
    opt_state: Any
    actor: Actor
    key: jax.Array

    @property
    def stopped(self) -> jax.Array:
        return self.actor.stopped

    @property
    def ep(self) -> common.Episodes:
        return self.actor.ep


def gae(reward, v, v_next, td_done, ep_end, gamma: float, lam: float) -> jax.Array:
    """Generalised advantage estimates of one rollout (time-major). ``v_next`` is the value of each
    step's true next observation, so a truncated step bootstraps from it and only ``td_done`` cuts the
    bootstrap; the recursion itself is cut at every episode end (terminated or truncated)."""
    delta = reward + gamma * (1.0 - td_done) * v_next - v

    def back(adv_next, x):
        d, end = x
        adv = d + gamma * lam * (1.0 - end) * adv_next
        return adv, adv

    return jax.lax.scan(back, jnp.float32(0), (delta, ep_end.astype(jnp.float32)), reverse=True)[1]


def make_train(config: PPOConfig, env, shapes: Shapes, stop_rule: str = "converged",
               threshold: float = 0.0):
    """Build ``train(key, env_params, hp) -> TrainResult`` (a ``common.TrainLoop``).

    ``env`` is any gymnax environment (``synthenv.environment``); ``env_params`` its params.
    ``stop_rule``: "converged" (on an SE, the paper's rule) or "threshold" (on the real task); see
    ``common.make_stop_test``.
    """
    config.validate()
    spaces = describe(env)
    continuous, act = spaces.continuous, config.activation
    n = config.rollout_steps
    stop_test = common.make_stop_test(config, stop_rule, threshold)
    optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.scale_by_adam(eps=1e-5))

    def act_once(a: Actor, key, params, env_params, hp: HParams):
        """Act in the environment once; an agent that has stopped stays exactly where it is."""
        k_act, k_env = jax.random.split(key)
        active = ~a.stopped
        out = actor_out(params, a.obs, hp, act)
        action = sample_action(k_act, params, out, continuous)
        logp, _ = log_prob_entropy(params, out, action, continuous)
        env_action = jnp.clip(action, -spaces.action_high, spaces.action_high) if continuous else action
        tr = env_step(env, k_env, a.env_state, env_action, env_params)

        ep_end = active & (tr.terminated | tr.truncated)
        ep = a.ep.record(active, tr.reward, ep_end)
        scale, reward = a.scale.update(tr.reward, ep_end, config.gamma)
        if not config.reward_norm:
            reward = tr.reward
        diverged = a.diverged | (active & tr.bad)
        obs, env_state = tr.obs, tr.state  # gymnax auto-resets where the episode ended
        stop = common.should_end(config, stop_rule, stop_test, ep, ep_end, diverged)
        moved = Actor(env_state, obs, ep, scale, a.stopped | stop, diverged)
        return common.keep_where(active, moved, a), Rollout(a.obs, action, logp, reward, tr.next_obs, tr.td_done, ep_end)

    def loss_fn(params, batch, mask, hp: HParams):
        obs, action, logp_old, adv, ret = batch
        count = jnp.sum(mask)
        mean = lambda x: jnp.sum(mask * x) / count  # noqa: E731
        adv_mean = mean(adv)
        adv = (adv - adv_mean) / (jnp.sqrt(mean((adv - adv_mean) ** 2)) + 1e-8)
        logp, entropy = log_prob_entropy(params, actor_out(params, obs, hp, act), action, continuous)
        ratio = jnp.exp(logp - logp_old)
        pg_loss = mean(jnp.maximum(-adv * ratio, -adv * jnp.clip(ratio, 1 - config.clip_eps, 1 + config.clip_eps)))
        v_loss = 0.5 * mean((value(params, obs, hp, act) - ret) ** 2)
        return pg_loss - config.ent_coef * mean(entropy) + config.vf_coef * v_loss

    def update(params, opt_state, key, data, hp: HParams):
        """``epochs`` passes of shuffled minibatches; rows and minibatches past the member's own
        minibatch size and count are masked out."""
        rows = jnp.arange(shapes.minibatch_size)
        n_minibatches = n // hp.minibatch_size

        def minibatch(carry, i):
            params, opt_state, perm = carry
            idx = perm[(i * hp.minibatch_size + rows) % n]
            mask = (rows < hp.minibatch_size).astype(jnp.float32)
            loss, grads = jax.value_and_grad(loss_fn)(params, jax.tree.map(lambda x: x[idx], data), mask, hp)
            updates, new_opt = optimizer.update(grads, opt_state)
            new_params = jax.tree.map(lambda p, u: p - hp.lr * u, params, updates)
            used = i < n_minibatches
            params, opt_state = common.keep_where(used, (new_params, new_opt), (params, opt_state))
            return (params, opt_state, perm), jnp.where(used, loss, 0.0)

        def epoch(carry, k):
            params, opt_state = carry
            (params, opt_state, _), losses = jax.lax.scan(
                minibatch, (params, opt_state, jax.random.permutation(k, n)), jnp.arange(shapes.minibatches))
            return (params, opt_state), losses

        (params, opt_state), losses = jax.lax.scan(epoch, (params, opt_state), jax.random.split(key, config.epochs))
        return params, opt_state, jnp.all(jnp.isfinite(losses))

    def init_state(key, env_params, hp: HParams) -> AgentState:
        k_net, k_env, key = jax.random.split(key, 3)
        params = init_params(k_net, spaces, shapes, hp, config)
        obs, env_state = env.reset(k_env, env_params)
        actor = Actor(env_state, obs, common.Episodes.init(config.stop_window), RewardScale.init(),
                      jnp.bool_(False), jnp.bool_(False))
        return AgentState(params, optimizer.init(params), actor, key)

    def iteration(s: AgentState, env_params, hp: HParams) -> AgentState:
        """Collect a rollout, then learn from it unless the agent stopped (or had stopped) on the way."""
        key, k_roll, k_update = jax.random.split(s.key, 3)
        key = common.keep_where(~s.actor.stopped, key, s.key)  # a stopped (or paused) agent draws nothing
        actor, ro = jax.lax.scan(lambda a, k: act_once(a, k, s.params, env_params, hp), s.actor,
                                 jax.random.split(k_roll, n))
        v, v_next = value(s.params, ro.obs, hp, act), value(s.params, ro.next_obs, hp, act)
        adv = gae(ro.reward, v, v_next, ro.td_done, ro.ep_end, config.gamma, config.gae_lambda)
        ret = adv + v
        params, opt_state, finite = update(s.params, s.opt_state, k_update,
                                           (ro.obs, ro.action, ro.logp, adv, ret), hp)
        learn = ~actor.stopped
        diverged = actor.diverged | (learn & ~finite)
        actor = actor._replace(stopped=actor.stopped | diverged, diverged=diverged)
        params, opt_state = common.keep_where(learn, (params, opt_state), (s.params, s.opt_state))
        return AgentState(params, opt_state, actor, key)

    def result(s: AgentState) -> common.TrainResult:
        a = s.actor
        return common.TrainResult(policy_params(s.params, spaces), a.ep.steps, a.ep.episodes, a.diverged,
                                  a.ep.recent[-1])

    def set_stopped(s: AgentState, stopped) -> AgentState:
        return s._replace(actor=s.actor._replace(stopped=stopped))

    return common.TrainLoop(init_state, iteration, result, config.chunk_steps, set_stopped)


def make_policy(config: PPOConfig):
    """Deterministic action of a trained agent: ``policy(params, hp, obs) -> action`` (the argmax of
    the logits; for continuous actions the Gaussian mean clipped to the action bounds)."""

    def policy(params, hp, obs):
        out = actor_out(params, obs, hp, config.activation)
        if "action_high" in params:
            return jnp.clip(out, -params["action_high"], params["action_high"])
        return jnp.argmax(out).astype(jnp.int32)

    return policy


def resolve(preset: str, **overrides) -> PPOConfig:
    return common.resolve_preset("PPO", PRESETS, preset, overrides)
