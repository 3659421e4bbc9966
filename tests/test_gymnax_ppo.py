"""A learned SE works with any gymnax-based agent.

The first half of this file is a small PPO in the style of PureJaxRL, written against the gymnax 1.x
API alone (nothing from ``synthenv``): it stands for "any gymnax-based agent". It is checked on
gymnax's own CartPole with a 200-step cap (CartPole-v0), then run unchanged on the shipped SE through
``synthenv.load(path).as_gymnax()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training.train_state import TrainState

# ---------------------------------------------------------------------------------------------------
# PPO against the gymnax API, PureJaxRL style. Only gymnax's Environment API, jax, flax and optax here.
# ---------------------------------------------------------------------------------------------------


class ActorCritic(nn.Module):
    action_dim: int
    hidden: int = 64

    @nn.compact
    def __call__(self, x):
        def mlp(x, out, scale):
            for _ in range(2):
                x = nn.tanh(nn.Dense(self.hidden, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x))
            return nn.Dense(out, kernel_init=nn.initializers.orthogonal(scale))(x)

        return mlp(x, self.action_dim, 0.01), mlp(x, 1, 1.0)[..., 0]  # logits, value


def log_prob_of(logits, action):
    return jnp.take_along_axis(jax.nn.log_softmax(logits), action[..., None], -1)[..., 0]


class Transition(NamedTuple):
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array  # plus gamma * V(final obs) where a time limit (not the env) ended the episode
    done: jax.Array  # terminated or truncated: GAE does not run across it


def make_train(config: dict, env, env_params):
    """Returns ``(train, network)``; ``train(key) -> (params, metrics)`` is pure and jittable."""
    n_envs, n_steps, n_mb, gamma = config["NUM_ENVS"], config["NUM_STEPS"], config["NUM_MINIBATCHES"], config["GAMMA"]
    num_updates = config["TOTAL_TIMESTEPS"] // (n_steps * n_envs)
    batch_size = n_steps * n_envs
    network = ActorCritic(env.action_space(env_params).n, config["HIDDEN"])
    step_envs = jax.vmap(env.step, (0, 0, 0, None))

    def lr(count):  # linear decay to 0 over the run (count = optimiser steps so far)
        return config["LR"] * (1.0 - (count // (n_mb * config["UPDATE_EPOCHS"])) / num_updates)

    def loss_fn(params, tr, adv, target):
        logits, value = network.apply(params, tr.obs)
        ratio = jnp.exp(log_prob_of(logits, tr.action) - tr.log_prob)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        clipped_ratio = jnp.clip(ratio, 1 - config["CLIP_EPS"], 1 + config["CLIP_EPS"])
        actor_loss = -jnp.minimum(ratio * adv, clipped_ratio * adv).mean()
        v_clipped = tr.value + jnp.clip(value - tr.value, -config["CLIP_EPS"], config["CLIP_EPS"])
        value_loss = 0.5 * jnp.maximum((value - target) ** 2, (v_clipped - target) ** 2).mean()
        entropy = -(jax.nn.softmax(logits) * jax.nn.log_softmax(logits)).sum(-1).mean()
        return actor_loss + config["VF_COEF"] * value_loss - config["ENT_COEF"] * entropy

    def env_step(carry, _):
        ts, env_state, obs, ep_return, key = carry
        key, k_act, k_step = jax.random.split(key, 3)
        logits, value = network.apply(ts.params, obs)
        action = jax.random.categorical(k_act, logits)
        next_obs, env_state, reward, terminated, truncated, info = step_envs(
            jax.random.split(k_step, n_envs), env_state, action, env_params)
        # gymnax auto-resets: where done, next_obs is already the next episode's first obs. Reaching the
        # time limit is no real end, so bootstrap from the value of the obs the episode was cut at.
        _, final_value = network.apply(ts.params, info["final_observation"])
        done = terminated | truncated
        tr = Transition(obs, action, log_prob_of(logits, action), value,
                        reward + gamma * final_value * (truncated & ~terminated), done)
        ep_return = ep_return + reward  # metric only: undiscounted env reward per episode
        finished = (jnp.where(done, ep_return, 0.0).sum(), done.sum())
        return (ts, env_state, next_obs, jnp.where(done, 0.0, ep_return), key), (tr, finished)

    def update(carry, _):
        (ts, env_state, obs, ep_return, key), (traj, (ret_sum, n_done)) = jax.lax.scan(
            env_step, carry, None, n_steps)
        _, last_value = network.apply(ts.params, obs)

        def gae_step(carry, tr):  # backwards in time
            gae, next_value = carry
            delta = tr.reward + gamma * next_value * (1 - tr.done) - tr.value
            gae = delta + gamma * config["GAE_LAMBDA"] * (1 - tr.done) * gae
            return (gae, tr.value), gae

        _, advantages = jax.lax.scan(gae_step, (jnp.zeros_like(last_value), last_value), traj, reverse=True)
        batch = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:]),
                             (traj, advantages, advantages + traj.value))

        def epoch(carry, _):
            ts, key = carry
            key, k_perm = jax.random.split(key)
            perm = jax.random.permutation(k_perm, batch_size)
            minibatches = jax.tree.map(lambda x: x[perm].reshape((n_mb, -1) + x.shape[1:]), batch)
            ts, _ = jax.lax.scan(lambda ts, mb: (ts.apply_gradients(grads=jax.grad(loss_fn)(ts.params, *mb)), None),
                                 ts, minibatches)
            return (ts, key), None

        (ts, key), _ = jax.lax.scan(epoch, (ts, key), None, config["UPDATE_EPOCHS"])
        n_ended = n_done.sum()  # the mean return of episodes that ended in this rollout (NaN: none did)
        mean_return = jnp.where(n_ended > 0, ret_sum.sum() / jnp.maximum(n_ended, 1), jnp.nan)
        return (ts, env_state, obs, ep_return, key), mean_return

    def train(key):
        key, k_net, k_reset = jax.random.split(key, 3)
        params = network.init(k_net, jnp.zeros(env.observation_space(env_params).shape, jnp.float32))
        tx = optax.chain(optax.clip_by_global_norm(config["MAX_GRAD_NORM"]),
                         optax.adam(lr if config["ANNEAL_LR"] else config["LR"], eps=1e-5))
        ts = TrainState.create(apply_fn=network.apply, params=params, tx=tx)
        obs, env_state = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, n_envs), env_params)
        carry = (ts, env_state, obs, jnp.zeros(n_envs), key)
        (ts, *_), episode_returns = jax.lax.scan(update, carry, None, num_updates)
        return ts.params, {"episode_return": episode_returns}

    return train, network


def evaluate_greedy(key, network, params, env, env_params, num_episodes: int, max_steps: int = 10_000):
    """Mean undiscounted return of the argmax policy over ``num_episodes`` episodes (vmapped). Each
    episode runs until its first terminated/truncated; the env's auto-reset after that is ignored."""

    def episode(key):
        k_reset, key = jax.random.split(key)
        obs, state = env.reset(k_reset, env_params)

        def body(c):
            obs, state, ret, done, t, key = c
            key, k_step = jax.random.split(key)
            action = jnp.argmax(network.apply(params, obs)[0])
            obs, state, reward, terminated, truncated, _ = env.step(k_step, state, action, env_params)
            return obs, state, ret + reward, terminated | truncated, t + 1, key

        c = (obs, state, jnp.float32(0), jnp.bool_(False), jnp.int32(0), key)
        return jax.lax.while_loop(lambda c: ~c[3] & (c[4] < max_steps), body, c)[2]

    return jax.vmap(episode)(jax.random.split(key, num_episodes)).mean()


# ---------------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------------

MODEL = Path(__file__).resolve().parents[1] / "models" / "cartpole-v0-invariant.safetensors"
# Greedy (argmax) play of a freshly initialised actor is often far from random on CartPole: of 64 random
# inits, the median scored 10.5 but 19 % scored over 100 (seed 0's scores 150-190). Seed 3 starts from
# a network that scores about 9, so the untrained check below has teeth.
SEED = 3
EVAL_EPISODES = 20
# PureJaxRL's CartPole config with a 10x higher learning rate and a 5x smaller budget: 100k steps
# (195 updates of 4 envs x 128 steps). Measured: greedy 200.0 on seeds 0-9 on one x86_64 CPU (50k
# steps: 8 of 10); on another (AMD EPYC, different XLA code, different floats) seeds 0-5 scored 200,
# 200, 166.2, 180.9, 200, 200. So the bar is a clear learner (>= 150 from about 10), not the solve.
CONFIG = dict(NUM_ENVS=4, NUM_STEPS=128, TOTAL_TIMESTEPS=100_000, UPDATE_EPOCHS=4, NUM_MINIBATCHES=4,
              GAMMA=0.99, GAE_LAMBDA=0.95, CLIP_EPS=0.2, ENT_COEF=0.01, VF_COEF=0.5, MAX_GRAD_NORM=0.5,
              LR=2.5e-3, ANNEAL_LR=True, HIDDEN=64)


def cartpole_v0():
    env, params = gymnax.make("CartPole-v1")
    return env, params.replace(max_steps_in_episode=200)


def train_and_score(env, env_params, config, eval_env, eval_params, seed=SEED):
    """Train on ``(env, env_params)``; greedy mean return on ``(eval_env, eval_params)`` of the
    trained and of the untrained (initial) actor, plus the training metrics."""
    train, network = make_train(config, env, env_params)
    params, metrics = jax.jit(train)(jax.random.PRNGKey(seed))
    # The very network train() starts from: its init key is the second split of the seed's key.
    untrained = network.init(jax.random.split(jax.random.PRNGKey(seed), 3)[1],
                             jnp.zeros(env.observation_space(env_params).shape, jnp.float32))
    score = jax.jit(lambda p: evaluate_greedy(jax.random.PRNGKey(1000 + seed), network, p, eval_env, eval_params,
                                              EVAL_EPISODES))
    return float(score(params)), float(score(untrained)), jax.device_get(metrics)


def test_purejaxrl_ppo_learns_gymnax_cartpole():
    env, params = cartpole_v0()
    trained, untrained, metrics = train_and_score(env, params, CONFIG, env, params)
    assert untrained < 100.0, untrained
    assert trained >= 150.0, (trained, metrics["episode_return"][-10:])
    assert trained <= 200.0  # the 200-step cap holds


def test_purejaxrl_ppo_trains_on_the_shipped_se():
    """The same agent code, unchanged, trains on the SE only and solves the real task."""
    import synthenv

    se = synthenv.load(MODEL).as_gymnax()
    env, params = cartpole_v0()
    trained, untrained, metrics = train_and_score(se, se.default_params, {**CONFIG, "TOTAL_TIMESTEPS": 20_000},
                                                  env, params)
    assert untrained < 100.0, untrained
    assert trained >= 195.0, (trained, metrics["episode_return"][-10:])


def test_as_gymnax_jit_vmap_1024_envs():
    """1024 SE envs stepped under jit(vmap) for 300 steps: gymnax's output tuple, shapes and dtypes,
    and episodes that end by the SE's done or exactly at the 200-step cap, never later."""
    import synthenv

    se = synthenv.load(MODEL).as_gymnax()
    params = se.default_params
    n_envs, n_steps, cap = 1024, 300, 200
    assert se.action_space(params).n == 2 and tuple(se.observation_space(params).shape) == (4,)
    reset = jax.jit(jax.vmap(se.reset, (0, None)))
    step = jax.jit(jax.vmap(se.step, (0, 0, 0, None)))

    obs, state = reset(jax.random.split(jax.random.PRNGKey(0), n_envs), params)
    assert obs.shape == (n_envs, 4) and obs.dtype == jnp.float32
    out = step(jax.random.split(jax.random.PRNGKey(1), n_envs), state, jnp.zeros(n_envs, jnp.int32), params)
    assert isinstance(out, tuple) and len(out) == 6
    obs1, _, reward, terminated, truncated, info = out
    assert obs1.shape == (n_envs, 4) and obs1.dtype == jnp.float32
    assert reward.shape == (n_envs,) and reward.dtype == jnp.float32
    assert terminated.shape == truncated.shape == (n_envs,)
    assert terminated.dtype == truncated.dtype == jnp.bool_
    assert isinstance(info, dict)

    @jax.jit
    def run(key):
        def body(carry, key):
            state, length = carry
            k_act, k_step = jax.random.split(key)
            action = jax.random.randint(k_act, (n_envs,), 0, 2)
            obs, state, reward, terminated, truncated, _ = jax.vmap(se.step, (0, 0, 0, None))(
                jax.random.split(k_step, n_envs), state, action, params)
            length = length + 1  # this step's position in its episode
            done = terminated | truncated
            return (state, jnp.where(done, 0, length)), (obs, reward, terminated, truncated, length)

        k_reset, k_run = jax.random.split(key)
        _, state = jax.vmap(se.reset, (0, None))(jax.random.split(k_reset, n_envs), params)
        return jax.lax.scan(body, (state, jnp.zeros(n_envs, jnp.int32)), jax.random.split(k_run, n_steps))[1]

    obs, reward, terminated, truncated, length = jax.device_get(run(jax.random.PRNGKey(2)))
    assert obs.shape == (n_steps, n_envs, 4) and obs.dtype == np.float32
    assert reward.shape == (n_steps, n_envs) and reward.dtype == np.float32
    assert terminated.dtype == truncated.dtype == np.bool_
    assert np.all(np.isfinite(obs)) and np.all(np.isfinite(reward))
    done = terminated | truncated
    assert length.max() <= cap  # no episode runs past the cap
    assert np.all(length[truncated] == cap)  # truncated only when the count hits 200 ...
    assert np.all(done[length == cap])  # ... and every episode that reaches 200 ends there
    assert np.all(done.any(axis=0))  # 300 > 200 steps: every env's first episode has ended
    ended_early = (terminated & (length < cap)).sum()
    # Either the SE's done ends some episodes before the cap, or every episode ran to the cap.
    assert ended_early > 0 or np.all(length[done] == cap), ended_early
