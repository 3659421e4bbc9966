"""What an SE learned (the paper's Fig. 4): next-state and reward distributions of

1. SE transitions seen in training (the replay buffers of agents trained on the SE),
2. real transitions at test (the trained agents acting greedily on the real task),
3. SE outputs on the real test (s, a) pairs (the SE's prediction where the real task went),

per state dimension, as a PNG and a JSON of summary statistics.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from synthenv.agents.registry import check_supports
from synthenv.environment import env_step
from synthenv.errors import UsageError
from synthenv.experiments import figures
from synthenv.experiments.evaluate import agent_config
from synthenv.io.atomic import write_json_atomic
from synthenv.meta.population import make_runner
from synthenv.proxies.files import load_se

OBS_NAMES = {
    "CartPole-v0": ["cart position", "cart velocity", "pole angle", "pole angular velocity"],
    "Acrobot-v1": ["cos θ1", "sin θ1", "cos θ2", "sin θ2", "θ1 velocity", "θ2 velocity"],
}
GROUPS = ("SE, seen in training", "real, at test", "SE on real (s, a)")


def make_recorded_rollout(task, policy, max_steps: int):
    """``rollout(key, params, hp) -> (obs, action, next_obs, reward, alive)`` over one greedy episode,
    padded to ``max_steps`` (``alive`` marks the real steps)."""

    def rollout(key, params, hp):
        k_reset, k_run = jax.random.split(key)
        obs, state = task.reset(k_reset, task.default_params)

        def body(c, k):
            obs, state, alive = c
            action = policy(params, hp, obs)
            tr = env_step(task, k, state, action, task.default_params)
            out = (obs, action, tr.next_obs, tr.reward, alive)
            return (tr.obs, tr.state, alive & ~(tr.terminated | tr.truncated)), out

        _, out = jax.lax.scan(body, (obs, state, jnp.bool_(True)), jax.random.split(k_run, max_steps))
        return out

    return rollout


def transition_histograms(proxy: str | Path, out: str | Path, agent: str = "ddqn", agents: int = 10,
                          episodes: int = 10, vary_hparams: bool = False, seed: int = 0,
                          n_devices: int | None = None) -> dict:
    """Train ``agents`` agents on the SE, collect the three transition groups, write ``out`` (PNG) and
    ``out`` with suffix ``.json``; returns the statistics."""
    if agents < 1 or episodes < 1:
        raise UsageError(f"--agents and --episodes must be >= 1, got {agents} and {episodes}")
    out = Path(out)
    if out.suffix != ".png":
        raise UsageError(f"--out must name a .png file, got {out}")
    loaded = load_se(proxy)
    se, task = loaded.env, loaded.env.task
    spec = task.spec
    module = check_supports(agent, spec.continuous, spec.id)
    config, _ = agent_config(module, agent, None, spec.id, loaded.metadata.get("training_config") or {})
    shapes = module.max_shapes(config, vary_hparams)
    train = module.make_train(config, se, shapes, stop_rule="converged")
    rollout = make_recorded_rollout(task, module.make_policy(config), spec.max_steps)

    def one_agent(key):
        k_hp, k_train, k_test = jax.random.split(key, 3)
        hp = module.sample_hparams(k_hp, config, vary_hparams)
        result = train(k_train, se.default_params, hp)
        if result.replay is None:
            raise UsageError(f"agent {agent!r} keeps no replay buffer to read its training transitions from; "
                             "use a replay-based agent such as ddqn")
        test = jax.vmap(lambda k: rollout(k, result.params, hp))(jax.random.split(k_test, episodes))
        return result.replay, test

    replay, (obs, action, next_obs, reward, alive) = jax.device_get(
        jax.jit(make_runner(one_agent, n_devices))(jax.random.split(jax.random.key(seed), agents)))
    filled = np.arange(replay.reward.shape[1])[None, :] < np.asarray(replay.size)[:, None]
    alive = np.asarray(alive, bool)
    real_obs, real_action = np.asarray(obs)[alive], np.asarray(action)[alive]
    pred_next, pred_reward, _ = jax.device_get(jax.jit(jax.vmap(lambda o, a: se.predict(loaded.weights, o, a)))(
        jnp.asarray(real_obs), jnp.asarray(real_action)))
    groups = {
        GROUPS[0]: {"next_obs": np.asarray(replay.next_obs)[filled], "reward": np.asarray(replay.reward)[filled]},
        GROUPS[1]: {"next_obs": np.asarray(next_obs)[alive], "reward": np.asarray(reward)[alive]},
        GROUPS[2]: {"next_obs": np.asarray(pred_next), "reward": np.asarray(pred_reward)},
    }
    names = OBS_NAMES.get(spec.id, [f"s[{i}]" for i in range(spec.obs_dim)])
    out.parent.mkdir(parents=True, exist_ok=True)
    figures.transition_histograms(groups, names, out, title=f"{spec.id}: {Path(proxy).name}, {agents} {agent} agents")
    stats = {"proxy": str(proxy), "env": spec.id, "agent": agent, "agents": agents, "episodes": episodes,
             "groups": {g: {"transitions": int(v["reward"].size),
                            "next_obs_mean": v["next_obs"].mean(axis=0).tolist(),
                            "next_obs_std": v["next_obs"].std(axis=0).tolist(),
                            "reward_mean": float(v["reward"].mean()), "reward_std": float(v["reward"].std())}
                        for g, v in groups.items()}, "obs_names": names, "figure": str(out)}
    write_json_atomic(out.with_suffix(".json"), stats)
    return stats
