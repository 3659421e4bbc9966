"""Double DQN, trained entirely inside XLA: one ``lax.while_loop`` over chunks of ``lax.scan`` steps.

Readable top to bottom: config and presets, hyperparameter sampling, the loss, one environment step
(act, store, learn, episode bookkeeping, stop test), and ``make_train`` which returns a pure
``train(key, env_params, hparams)`` usable under ``vmap``.

Stopping is per agent and done with masks, so a vmapped population stays correct: an agent that
stopped keeps its parameters and counters frozen while the others go on. The while loop runs chunks
until every agent in the (per-device) batch has stopped, so nobody pays for the episode cap unless
some agent really runs that long.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from synthenv.agents import hparams as hpmod
from synthenv.agents import masked_mlp
from synthenv.errors import UsageError
from synthenv.nets import ACTIVATIONS


@dataclass(frozen=True)
class DDQNConfig:
    """DDQN hyperparameters. Defaults: the paper's BOHB-tuned CartPole config."""

    hidden: int = 57
    layers: int = 1
    activation: str = "tanh"
    lr: float = 3.04e-4
    batch_size: int = 199
    gamma: float = 0.988
    tau: float = 0.00848
    eps_init: float = 0.809
    eps_min: float = 0.0371
    eps_decay: float = 0.961
    init_episodes: int = 1
    """Episodes of uniformly random actions before learning starts."""
    buffer_size: int = 100_000
    max_episodes: int = 1000
    max_steps: int = 100_000
    """Our cap on environment steps per agent on the real task (the paper only caps episodes)."""
    proxy_max_steps: int = 2_000
    """Our cap on environment steps per agent on a proxy (the paper only caps episodes at 1000)."""
    stop_window: int = 10
    stop_tolerance: float = 0.01
    chunk_steps: int = 64
    """Steps per while-loop iteration: larger chunks cost less loop overhead, waste more after stopping."""

    def validate(self) -> None:
        checks = {
            "hidden": self.hidden >= 1, "layers": self.layers >= 1, "lr": self.lr > 0,
            "batch_size": self.batch_size >= 1, "gamma": 0 <= self.gamma <= 1, "tau": 0 < self.tau <= 1,
            "eps_init": 0 <= self.eps_init <= 1, "eps_min": 0 <= self.eps_min <= 1,
            "eps_decay": 0 < self.eps_decay <= 1, "init_episodes": self.init_episodes >= 0,
            "buffer_size": self.buffer_size >= 1, "max_episodes": self.max_episodes >= 1,
            "max_steps": self.max_steps >= 1, "proxy_max_steps": self.proxy_max_steps >= 1, "stop_window": self.stop_window >= 1,
            "stop_tolerance": self.stop_tolerance >= 0, "chunk_steps": self.chunk_steps >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise UsageError(f"invalid DDQN setting {bad[0]}={getattr(self, bad[0])!r}")
        if self.activation not in ACTIVATIONS:
            raise UsageError(f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}")


PRESETS: dict[str, DDQNConfig] = {
    # The paper's BOHB-tuned configs (METHOD.md §5).
    "cartpole": DDQNConfig(),
    "acrobot": DDQNConfig(hidden=112, layers=1, activation="leaky_relu", lr=2.22e-3, batch_size=149,
                          gamma=0.991, tau=0.0209, eps_init=0.904, eps_min=0.0471, eps_decay=0.899,
                          init_episodes=20),
    # Ours: the default. Small enough that a masked varied-HP population stays cheap (see docs).
    "small": DDQNConfig(hidden=16, layers=1, activation="tanh", lr=1e-3, batch_size=32, gamma=0.99,
                        tau=0.01, eps_init=1.0, eps_min=0.05, eps_decay=0.9, init_episodes=1,
                        proxy_max_steps=2000),
    # The base of the paper's "HPs varied" experiments.
    "hpvar": DDQNConfig(hidden=128, layers=2, activation="relu", lr=1e-3, batch_size=128, gamma=0.99,
                        tau=0.01, eps_init=1.0, eps_min=0.01, eps_decay=0.9, init_episodes=10),
}


class HParams(NamedTuple):
    """Per-agent hyperparameters that may differ inside one vmapped population."""

    lr: jax.Array
    batch_size: jax.Array
    hidden: jax.Array
    layers: jax.Array


@dataclass(frozen=True)
class Shapes:
    """The static maximum shapes every member is allocated at."""

    hidden: int
    layers: int
    batch_size: int


def max_shapes(config: DDQNConfig, vary: bool) -> Shapes:
    if not vary:
        return Shapes(config.hidden, config.layers, config.batch_size)
    return Shapes(hpmod.int_range(config.hidden)[1], hpmod.layer_range(config.layers)[1],
                  hpmod.int_range(config.batch_size)[1])


def sample_hparams(key: jax.Array, config: DDQNConfig, vary: bool) -> HParams:
    """The base config's values, or (``vary``) a draw from the paper's varied-HP distribution."""
    if not vary:
        return HParams(jnp.float32(config.lr), jnp.int32(config.batch_size), jnp.int32(config.hidden),
                       jnp.int32(config.layers))
    k = jax.random.split(key, 4)
    return HParams(hpmod.log_uniform(k[0], config.lr), hpmod.log_uniform_int(k[1], config.batch_size),
                   hpmod.log_uniform_int(k[2], config.hidden), hpmod.sample_layers(k[3], config.layers))


class AgentState(NamedTuple):
    params: dict
    target: dict
    opt_state: Any
    buf_obs: jax.Array
    buf_act: jax.Array
    buf_rew: jax.Array
    buf_next: jax.Array
    buf_done: jax.Array
    buf_size: jax.Array
    buf_ptr: jax.Array
    env_state: Any
    obs: jax.Array
    ep_return: jax.Array
    recent_returns: jax.Array  # the last 2*stop_window episode returns, oldest first
    episodes: jax.Array
    steps: jax.Array
    eps: jax.Array
    stopped: jax.Array
    diverged: jax.Array
    key: jax.Array


class TrainResult(NamedTuple):
    params: dict
    steps: jax.Array
    episodes: jax.Array
    diverged: jax.Array
    last_return: jax.Array


def q_values(params: dict, obs: jax.Array, hp: HParams, activation: str) -> jax.Array:
    return masked_mlp.apply(params, obs, masked_mlp.MLPShape(hp.hidden, hp.layers), activation)


def make_train(config: DDQNConfig, env, shapes: Shapes, stop_rule: str = "converged",
               threshold: float = 0.0):
    """Build a pure ``train(key, env_params, hp) -> TrainResult``.

    ``env`` has ``reset(key, params)`` and ``step(key, state, action, params) -> Transition``.
    ``stop_rule``: "converged" (on an SE: the mean return of the last ``stop_window`` episodes is
    within ``stop_tolerance`` (relative) of the mean of the window before) or "threshold" (on the real
    task: the mean of the last ``stop_window`` returns reaches ``threshold``).
    """
    config.validate()
    obs_dim, n_actions = env.obs_dim, env.n_actions
    max_steps = config.proxy_max_steps if stop_rule == "converged" else config.max_steps
    capacity = min(config.buffer_size, max_steps)
    window = config.stop_window
    adam = optax.scale_by_adam()
    act = config.activation

    def loss_fn(params, target, batch, hp):
        obs, action, reward, next_obs, done = batch
        q = jnp.take_along_axis(q_values(params, obs, hp, act), action[:, None], axis=1)[:, 0]
        next_action = jnp.argmax(q_values(params, next_obs, hp, act), axis=1)
        next_q = jnp.take_along_axis(q_values(target, next_obs, hp, act), next_action[:, None], axis=1)[:, 0]
        y = jax.lax.stop_gradient(reward + config.gamma * (1.0 - done) * next_q)
        mask = (jnp.arange(shapes.batch_size) < hp.batch_size).astype(jnp.float32)
        return jnp.sum(mask * (q - y) ** 2) / hp.batch_size.astype(jnp.float32)

    def init_state(key, env_params, hp) -> AgentState:
        k_net, k_env, key = jax.random.split(key, 3)
        params = masked_mlp.init_params(k_net, obs_dim, n_actions, shapes.hidden, shapes.layers,
                                        masked_mlp.MLPShape(hp.hidden, hp.layers))
        obs, env_state = env.reset(k_env, env_params)
        zeros = lambda *s: jnp.zeros((capacity, *s), jnp.float32)  # noqa: E731
        return AgentState(
            params=params, target=params, opt_state=adam.init(params),
            buf_obs=zeros(obs_dim), buf_act=jnp.zeros((capacity,), jnp.int32), buf_rew=zeros(),
            buf_next=zeros(obs_dim), buf_done=zeros(), buf_size=jnp.int32(0), buf_ptr=jnp.int32(0),
            env_state=env_state, obs=obs, ep_return=jnp.float32(0),
            recent_returns=jnp.zeros((2 * window,), jnp.float32), episodes=jnp.int32(0),
            steps=jnp.int32(0), eps=jnp.float32(config.eps_init), stopped=jnp.bool_(False),
            diverged=jnp.bool_(False), key=key)

    def should_stop(recent, episodes):
        last, prev = jnp.mean(recent[window:]), jnp.mean(recent[:window])
        if stop_rule == "converged":
            diff = jnp.abs(last - prev)
            ok = (diff < config.stop_tolerance * jnp.abs(prev)) | (diff == 0)
            return ok & (episodes >= 2 * window)
        return (last >= threshold) & (episodes >= window)

    def step(s: AgentState, env_params, hp: HParams) -> AgentState:
        key, k_explore, k_act, k_env, k_batch, k_reset = jax.random.split(s.key, 6)
        active = ~s.stopped

        # Act: uniformly random during the initial episodes, then epsilon-greedy.
        greedy = jnp.argmax(q_values(s.params, s.obs, hp, act)).astype(jnp.int32)
        explore = (jax.random.uniform(k_explore) < s.eps) | (s.episodes < config.init_episodes)
        action = jnp.where(explore, jax.random.randint(k_act, (), 0, n_actions, jnp.int32), greedy)
        tr = env.step(k_env, s.env_state, action, env_params)

        # Store. A stopped agent writes into the slot it would use next without claiming it.
        ptr = s.buf_ptr
        buf_obs = s.buf_obs.at[ptr].set(s.obs)
        buf_act = s.buf_act.at[ptr].set(action)
        buf_rew = s.buf_rew.at[ptr].set(tr.reward)
        buf_next = s.buf_next.at[ptr].set(tr.obs)
        buf_done = s.buf_done.at[ptr].set(tr.td_done)
        buf_ptr = jnp.where(active, (ptr + 1) % capacity, ptr)
        buf_size = jnp.where(active, jnp.minimum(s.buf_size + 1, capacity), s.buf_size)

        # Learn: one gradient step per environment step after the initial episodes.
        idx = jax.random.randint(k_batch, (shapes.batch_size,), 0, jnp.maximum(buf_size, 1))
        batch = (buf_obs[idx], buf_act[idx], buf_rew[idx], buf_next[idx], buf_done[idx])
        loss, grads = jax.value_and_grad(loss_fn)(s.params, s.target, batch, hp)
        updates, opt_state = adam.update(grads, s.opt_state)
        params = jax.tree.map(lambda p, u: p - hp.lr * u, s.params, updates)
        target = jax.tree.map(lambda t, p: (1 - config.tau) * t + config.tau * p, s.target, params)
        learn = active & (s.episodes >= config.init_episodes)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(learn, a, b), new, old)  # noqa: E731
        params, target, opt_state = keep(params, s.params), keep(target, s.target), keep(opt_state, s.opt_state)
        diverged = s.diverged | (active & (tr.bad | (learn & ~jnp.isfinite(loss))))

        # Episode bookkeeping; reset on termination or truncation (no auto-reset in the env).
        ep_return = s.ep_return + tr.reward
        ep_end = active & (tr.terminated | tr.truncated)
        recent = jnp.where(ep_end, jnp.concatenate([s.recent_returns[1:], ep_return[None]]), s.recent_returns)
        episodes = s.episodes + ep_end
        past_init = s.episodes >= config.init_episodes
        eps = jnp.where(ep_end & past_init, jnp.maximum(s.eps * config.eps_decay, config.eps_min), s.eps)
        reset_obs, reset_state = env.reset(k_reset, env_params)
        obs = jnp.where(ep_end, reset_obs, tr.obs)
        env_state = jax.tree.map(lambda a, b: jnp.where(ep_end, a, b), reset_state, tr.state)
        steps = s.steps + active

        stop = (ep_end & should_stop(recent, episodes)) | (episodes >= config.max_episodes)
        stop = stop | (steps >= max_steps) | diverged
        return AgentState(
            params=params, target=target, opt_state=opt_state, buf_obs=buf_obs, buf_act=buf_act,
            buf_rew=buf_rew, buf_next=buf_next, buf_done=buf_done, buf_size=buf_size, buf_ptr=buf_ptr,
            env_state=env_state, obs=obs, ep_return=jnp.where(ep_end, 0.0, ep_return),
            recent_returns=recent, episodes=episodes, steps=steps, eps=eps,
            stopped=s.stopped | stop, diverged=diverged, key=key)

    def train(key: jax.Array, env_params: Any, hp: HParams) -> TrainResult:
        def chunk(s):
            return jax.lax.scan(lambda c, _: (step(c, env_params, hp), None), s, None,
                                length=config.chunk_steps)[0]

        s = jax.lax.while_loop(lambda s: ~s.stopped, chunk, init_state(key, env_params, hp))
        return TrainResult(s.params, s.steps, s.episodes, s.diverged, s.recent_returns[-1])

    return train


def make_policy(config: DDQNConfig):
    """Greedy action of a trained agent: ``policy(params, hp, obs) -> action``."""

    def policy(params, hp, obs):
        return jnp.argmax(q_values(params, obs, hp, config.activation)).astype(jnp.int32)

    return policy


def resolve(preset: str, **overrides) -> DDQNConfig:
    try:
        base = PRESETS[preset]
    except KeyError:
        raise UsageError(f"unknown DDQN preset {preset!r}; known presets: {', '.join(PRESETS)}") from None
    return replace(base, **overrides)
