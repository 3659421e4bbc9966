"""Stable-Baselines3 PPO, default settings, trained on the shipped SE through the Gymnasium adapter.

For each seed: ``PPO("MlpPolicy", env, seed=seed).learn(steps)`` on ``make_gymnasium_env`` of the
shipped CartPole-v0 SE, then the deterministic policy's mean return over 20 episodes of Gymnasium's
real ``CartPole-v0``; then the same PPO trained the same number of steps on the real CartPole-v0, for
comparison. Prints per seed the real-task return and the wall time of training. Usage:

    python benchmarks/sb3_on_se.py
    python benchmarks/sb3_on_se.py --steps 20000 --seeds 0 1 2 --torch-threads 1
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

MODEL = Path(__file__).resolve().parents[1] / "models" / "cartpole-v0-invariant.safetensors"


def shipped_se():
    import synthenv

    loaded = synthenv.load(MODEL)
    return loaded.env.task.spec, loaded.env.config, loaded.params


def real_cartpole():
    import gymnasium

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "CartPole-v0 is out of date"
        return gymnasium.make("CartPole-v0")


def main() -> None:
    from synthenv.adapters.rollouts import greedy_returns

    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--torch-threads", type=int, default=1)
    args = parser.parse_args()

    import torch
    from stable_baselines3 import PPO

    from synthenv.adapters.gymnasium_env import make_gymnasium_env

    torch.set_num_threads(args.torch_threads)
    spec, config, params = shipped_se()
    rows = []
    for trained_on in ("SE", "real CartPole-v0"):
        for seed in args.seeds:
            env = make_gymnasium_env(spec, config, params) if trained_on == "SE" else real_cartpole()
            t = time.perf_counter()
            model = PPO("MlpPolicy", env, seed=seed)
            model.learn(total_timesteps=args.steps)
            wall = time.perf_counter() - t
            returns = greedy_returns(real_cartpole(), model, args.episodes)
            row = {"trained_on": trained_on, "seed": seed, "timesteps": model.num_timesteps,
                   "train_wall_s": round(wall, 1), "real_mean_return": float(np.mean(returns)),
                   "real_min_return": float(np.min(returns))}
            rows.append(row)
            print(json.dumps(row), flush=True)
    for trained_on in ("SE", "real CartPole-v0"):
        mine = [r for r in rows if r["trained_on"] == trained_on]
        print(f"{trained_on}: mean return {np.mean([r['real_mean_return'] for r in mine]):.1f}, "
              f"solved (>= 195) {sum(r['real_mean_return'] >= 195 for r in mine)} of {len(mine)}, "
              f"mean train wall {np.mean([r['train_wall_s'] for r in mine]):.1f} s")


if __name__ == "__main__":
    main()
