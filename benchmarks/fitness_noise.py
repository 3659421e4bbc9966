"""How noisy is a candidate's fitness? Score one SE many times, as the outer loop does.

For each SE file: ``groups`` independent groups of ``agents`` fresh agents (varied HPs, new seeds),
each trained only on the SE and tested on the real task. Prints the single-agent return distribution
(mean, the share of agents at or above the task's threshold, the share below half of it: varied-HP
returns are close to bimodal) and the spread of the group means, which is the noise of one fitness
evaluation with ``agents`` agents (the unperturbed score uses 16; a perturbed candidate 1 or
``agents_per_member``), and the share of those groups whose mean reaches the threshold (a bar on a
16-agent mean asks for this share near 1). Where the agents fail: the returns of every agent below
the threshold, and for each hyperparameter the varied-HP draws vary, its median over the failing and
over the other agents. Usage:

    python benchmarks/fitness_noise.py --proxy models/cartpole-v0-invariant.safetensors runs/x/se.safetensors
    python benchmarks/fitness_noise.py --proxy SE --agents 1 2 4 16 --groups 20
    python benchmarks/fitness_noise.py --proxy BANDIT --agent ppo --agents 16 --groups 16
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
    p.add_argument("--steps", type=int, help="each agent's step cap on the proxy (default: evaluate's)")
    args = p.parse_args()
    host_devices.configure()

    import numpy as np

    from synthenv.experiments.evaluate import evaluate_agents

    for proxy in args.proxy:
        n = max(args.agents) * args.groups
        r = evaluate_agents(proxy=proxy, agent=args.agent, agents=n, episodes=10, vary_hparams=True, seed=args.seed,
                            steps=args.steps)
        per_agent = np.asarray(r["returns_per_agent"])
        threshold = r["solved_threshold"]
        row = {"proxy": proxy, "agent": args.agent, "step_cap": r["step_cap"], "agents_scored": n, "mean": round(float(per_agent.mean()), 1),
               "share_at_threshold": round(float(np.mean(per_agent >= threshold)), 3),
               "share_below_half": round(float(np.mean(per_agent < threshold / 2)), 3)
               if threshold > 0 else None, "seconds": round(r["wall_seconds"], 1), "group_mean_std": {},
               "group_mean_at_threshold": {}}
        for k in args.agents:
            means = per_agent[: k * args.groups].reshape(args.groups, k).mean(axis=1)
            row["group_mean_std"][k] = round(float(means.std(ddof=1)), 2)
            row["group_mean_at_threshold"][k] = round(float(np.mean(means >= threshold)), 3)
        failed = per_agent < threshold
        row["failed_returns"] = sorted(round(float(x), 1) for x in per_agent[failed])
        row["hparam_median_failed_vs_rest"] = {
            name: [round(float(np.median(v[failed])), 4), round(float(np.median(v[~failed])), 4)]
            for name, v in ((k, np.asarray(v, dtype=float)) for k, v in r["hparams"].items())
            if failed.any() and (~failed).any() and np.ptp(v) > 0}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
