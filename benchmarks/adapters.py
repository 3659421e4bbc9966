"""Steps per second of the shipped SE as a Gymnasium env, against JAX stepping and Gymnasium's CartPole.

Single environment, one step per Python call:
  (a) ``SEGymnasiumEnv`` (the NumPy forward),
  (b) the SE stepped by one ``jax.jit``-compiled ``SENetwork`` step per call, its outputs brought back
      to the host (``np.asarray``, ``float``, ``bool``) as a Gymnasium env must,
  (c) Gymnasium's ``CartPole-v1``, unwrapped and as ``gymnasium.make`` wraps it.
Vectorised, 1024 copies:
  (d) ``SEVectorEnv`` (with the process's BLAS threads, then in a child process with
      ``OPENBLAS_NUM_THREADS=1``),
  (e) Gymnasium's own vector CartPole (``make_vec(..., vectorization_mode="vector_entry_point")``),
  (f) the SE under ``jax.jit(jax.vmap(step))`` inside a 300-step ``lax.scan`` (compile excluded).
Random actions, drawn before timing; every figure after a warm-up; each the best of 3 repeats. Usage:

    python benchmarks/adapters.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MODEL = Path(__file__).resolve().parents[1] / "models" / "cartpole-v0-invariant.safetensors"
N_ENVS = 1024


def shipped_se():
    import synthenv

    loaded = synthenv.load(MODEL)
    return loaded.env.task.spec, loaded.env.config, loaded.params


def best_rate(run, steps: int, repeats: int = 3) -> float:
    """Steps/s of ``run()`` (which does ``steps`` steps): the best of ``repeats`` after one warm-up."""
    run()
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        best = max(best, steps / (time.perf_counter() - t))
    return best


def single_env_rate(env, steps: int, seed: int = 0, reset_every: int | None = None) -> float:
    actions = np.random.default_rng(seed).integers(0, env.action_space.n, steps)
    env.reset(seed=seed)

    def run():
        since = 0
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            since += 1
            if terminated or truncated or since == reset_every:
                env.reset()
                since = 0

    return best_rate(run, steps)


def jax_step_rate(spec, config, params, steps: int) -> float:
    import jax
    import jax.numpy as jnp

    from synthenv.adapters.gymnasium_env import InitialObservations
    from synthenv.proxies.se import SENetwork

    net = SENetwork(spec.obs_dim, spec.n_actions, config)

    @jax.jit
    def step(obs, t, action):
        next_obs, reward, done = net.apply({"params": params}, obs, action)
        bad = ~(jnp.all(jnp.isfinite(next_obs)) & jnp.isfinite(reward) & jnp.isfinite(done))
        next_obs = jnp.where(bad, 0.0, next_obs)
        t = t + 1
        return next_obs, jnp.where(bad, 0.0, reward), (done > 0.5) | bad, t >= spec.max_steps, t

    rng = np.random.default_rng(0)
    first = InitialObservations(spec).take(rng, 4096)
    actions = rng.integers(0, spec.n_actions, steps).astype(np.int32)

    def run():
        obs, t, k = jnp.asarray(first[0]), jnp.int32(0), 1
        for a in actions:
            obs, reward, terminated, truncated, t = step(obs, t, a)
            _host_obs, reward, terminated, truncated = np.asarray(obs), float(reward), bool(terminated), bool(truncated)
            if terminated or truncated:
                obs, t, k = jnp.asarray(first[k % len(first)]), jnp.int32(0), k + 1

    return best_rate(run, steps)


def vector_rate(venv, steps: int) -> float:
    actions = np.random.default_rng(0).integers(0, 2, (steps, venv.num_envs))
    venv.reset(seed=0)

    def run():
        for a in actions:
            venv.step(a)

    return best_rate(run, steps * venv.num_envs)


def jax_vmap_scan_rate(spec, config, params, n: int, steps: int) -> float:
    import jax
    import jax.numpy as jnp

    from synthenv.adapters.gymnasium_env import InitialObservations
    from synthenv.proxies.se import SENetwork

    net = SENetwork(spec.obs_dim, spec.n_actions, config)
    first = jnp.asarray(InitialObservations(spec).take(np.random.default_rng(0), n))

    def step(obs, t, action, obs0):  # one copy; next-step semantics of the adapter, reset in place
        next_obs, reward, done = net.apply({"params": params}, obs, action)
        bad = ~(jnp.all(jnp.isfinite(next_obs)) & jnp.isfinite(reward) & jnp.isfinite(done))
        t = t + 1
        end = (done > 0.5) | bad | (t >= spec.max_steps)
        return jnp.where(end, obs0, jnp.where(bad, 0.0, next_obs)), jnp.where(end, 0, t), jnp.where(bad, 0.0, reward)

    vstep = jax.vmap(step)

    @jax.jit
    def rollout(key):
        def body(carry, key):
            obs, t = carry
            actions = jax.random.randint(key, (n,), 0, spec.n_actions)
            obs, t, reward = vstep(obs, t, actions, first)
            return (obs, t), reward.sum()

        (obs, _), rewards = jax.lax.scan(body, (first, jnp.zeros(n, jnp.int32)), jax.random.split(key, steps))
        return obs, rewards

    jax.block_until_ready(rollout(jax.random.key(0)))  # compile
    keys = iter(range(1, 100))
    return best_rate(lambda: jax.block_until_ready(rollout(jax.random.key(next(keys)))), n * steps)


def se_vector_only() -> float:
    from synthenv.adapters.gymnasium_env import make_gymnasium_vector_env

    return vector_rate(make_gymnasium_vector_env(*shipped_se(), N_ENVS), 300)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--se-vector-only", action="store_true", help="(internal) only figure (d)")
    args = parser.parse_args()
    if args.se_vector_only:
        print(json.dumps({"se_vector": se_vector_only()}))
        return

    import gymnasium

    from synthenv.adapters.gymnasium_env import make_gymnasium_env, make_gymnasium_vector_env

    spec, config, params = shipped_se()
    rows = []

    def report(name, rate):
        rows.append((name, rate))
        print(f"{name:<72} {rate:>14,.0f} steps/s", flush=True)

    report("(a) SE Gymnasium env (NumPy forward), single env",
           single_env_rate(make_gymnasium_env(spec, config, params), 100_000))
    report("(b) SE, one jitted JAX step per Python call (outputs to host)",
           jax_step_rate(spec, config, params, 20_000))
    report("(c) gymnasium CartPole-v1, unwrapped",
           single_env_rate(gymnasium.make("CartPole-v1").unwrapped, 100_000, reset_every=500))
    report("(c) gymnasium CartPole-v1, gymnasium.make (wrapped)",
           single_env_rate(gymnasium.make("CartPole-v1"), 100_000))
    report(f"(d) SEVectorEnv, {N_ENVS} envs",
           vector_rate(make_gymnasium_vector_env(spec, config, params, N_ENVS), 300))
    child = subprocess.run([sys.executable, __file__, "--se-vector-only"], capture_output=True, text=True,
                           check=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    report(f"(d) SEVectorEnv, {N_ENVS} envs, OPENBLAS_NUM_THREADS=1",
           json.loads(child.stdout.strip().splitlines()[-1])["se_vector"])
    report(f"(e) gymnasium CartPole-v1 make_vec, {N_ENVS} envs (vector_entry_point)",
           vector_rate(gymnasium.make_vec("CartPole-v1", num_envs=N_ENVS, vectorization_mode="vector_entry_point"),
                       300))
    report(f"(f) SE, jax.jit(jax.vmap(step)) in a 300-step lax.scan, {N_ENVS} envs",
           jax_vmap_scan_rate(spec, config, params, N_ENVS, 300))
    print(json.dumps({name: round(rate) for name, rate in rows}))


if __name__ == "__main__":
    main()
