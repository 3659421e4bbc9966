"""Stable-Baselines3 on Gymnasium's CartPole-v0 with a learned RN's reward, against the plain reward.

For each budget and seed: ``ALGO("MlpPolicy", env, seed=seed).learn(steps)`` with SB3's defaults on
``synthenv.load(RN).as_gymnasium_wrapper(gymnasium.make("CartPole-v0"))`` and on the plain env, then
the deterministic policy's mean return over 20 real episodes. Both train on the real dynamics, so the
steps are real steps in both columns. Usage:

    python benchmarks/sb3_on_rn.py --rn runs/cartpole-rn/rn.safetensors
    python benchmarks/sb3_on_rn.py --rn RN --algo dqn --steps 5000 10000 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sb3_on_se import real_cartpole as cartpole  # (benchmarks/ is on the path of its scripts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rn", required=True)
    parser.add_argument("--algo", choices=("ppo", "dqn"), default="ppo")
    parser.add_argument("--steps", type=int, nargs="+", default=[4096, 8192])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--torch-threads", type=int, default=1)
    args = parser.parse_args()

    import torch
    from stable_baselines3 import DQN, PPO

    import synthenv
    from synthenv.adapters.rollouts import greedy_returns

    torch.set_num_threads(args.torch_threads)
    rn = synthenv.load(args.rn)
    algo = {"ppo": PPO, "dqn": DQN}[args.algo]
    rows = []
    for steps in args.steps:
        for reward in ("RN", "real"):
            for seed in args.seeds:
                env = rn.as_gymnasium_wrapper(cartpole()) if reward == "RN" else cartpole()
                t = time.perf_counter()
                model = algo("MlpPolicy", env, seed=seed)
                model.learn(total_timesteps=steps)
                wall = time.perf_counter() - t
                returns = greedy_returns(cartpole(), model, args.episodes)
                row = {"algo": args.algo, "reward": reward, "steps": steps, "seed": seed,
                       "train_wall_s": round(wall, 1), "real_mean_return": float(np.mean(returns))}
                rows.append(row)
                print(json.dumps(row), flush=True)
    for steps in args.steps:
        for reward in ("RN", "real"):
            mine = [r["real_mean_return"] for r in rows if r["steps"] == steps and r["reward"] == reward]
            print(f"{args.algo} {steps} steps, {reward} reward: mean {np.mean(mine):.1f}, "
                  f"worst {np.min(mine):.1f}, >= 195 in {sum(x >= 195 for x in mine)} of {len(mine)}")


if __name__ == "__main__":
    main()
