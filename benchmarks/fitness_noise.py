"""How noisy is a candidate's fitness? Score one SE many times, as the outer loop does.

For each SE file: ``groups`` independent groups of ``agents`` fresh agents (varied HPs, new seeds),
each trained only on the SE and tested on the real task. Prints the single-agent return distribution
(mean, the share of agents at or above the task's threshold, the share below half of it: varied-HP
returns are close to bimodal) and the spread of the group means, which is the noise of one fitness
evaluation with ``agents`` agents (the unperturbed score uses 16; a perturbed candidate 1 or
``agents_per_member``). Usage:

    python benchmarks/fitness_noise.py --proxy models/cartpole-v0-invariant.safetensors runs/x/se.safetensors
    python benchmarks/fitness_noise.py --proxy SE --agents 1 2 4 16 --groups 20
"""

from __future__ import annotations

import argparse
import json

from synthenv import host_devices


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--proxy", nargs="+", required=True)
    p.add_argument("--agent", default="ddqn")
    p.add_argument("--agents", type=int, nargs="+", default=[1, 2, 16], help="group sizes")
    p.add_argument("--groups", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    host_devices.configure()

    import numpy as np

    from synthenv.experiments.evaluate import evaluate_agents

    for proxy in args.proxy:
        n = max(args.agents) * args.groups
        r = evaluate_agents(proxy=proxy, agent=args.agent, agents=n, episodes=10, vary_hparams=True, seed=args.seed)
        per_agent = np.asarray(r["returns_per_agent"])
        threshold = r["solved_threshold"]
        row = {"proxy": proxy, "agent": args.agent, "agents_scored": n, "mean": round(float(per_agent.mean()), 1),
               "share_at_threshold": round(float(np.mean(per_agent >= threshold)), 3),
               "share_below_half": round(float(np.mean(per_agent < threshold / 2)), 3)
               if threshold > 0 else None, "seconds": round(r["wall_seconds"], 1), "group_mean_std": {}}
        for k in args.agents:
            means = per_agent[: k * args.groups].reshape(args.groups, k).mean(axis=1)
            row["group_mean_std"][k] = round(float(means.std(ddof=1)), 2)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
