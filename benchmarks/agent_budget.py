"""Does a longer training budget remove the failures of fresh agents on a learned proxy?

For each step cap: ``agents`` fresh varied-HP agents of one algorithm (the same HP draws and seeds for
every cap) train on the proxy for exactly that many steps (on a bandit, whose stop rule is the
budget; on an SE, at most that many), with the rest of their config as ``evaluate`` gives it (its ``--steps``), and
are tested on the real task (10 episodes each). Prints per cap the mean, the share of agents at the
task's threshold, the share of disjoint 16-agent groups whose mean reaches it (the bar's test), and
the failing agents' returns. Usage:

    python benchmarks/agent_budget.py --proxy runs/x/se.safetensors --agent ddqn --steps 2000 4000 10000
"""

from __future__ import annotations

import argparse
import json

from synthenv import host_devices


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--proxy", required=True)
    p.add_argument("--agent", default="ddqn")
    p.add_argument("--steps", type=int, nargs="+", required=True, help="step caps on the proxy")
    p.add_argument("--agents", type=int, default=256, help="agents per cap (a multiple of 16)")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    host_devices.configure()

    import numpy as np

    from synthenv.experiments.evaluate import evaluate_agents

    for steps in args.steps:
        r = evaluate_agents(proxy=args.proxy, agent=args.agent, agents=args.agents, episodes=10, vary_hparams=True,
                            seed=args.seed, steps=steps)
        per_agent, threshold = np.asarray(r["returns_per_agent"]), r["solved_threshold"]
        groups = per_agent[: args.agents // 16 * 16].reshape(-1, 16).mean(axis=1)
        print(json.dumps({"agent": args.agent, "preset": r["preset"], "steps": steps, "agents": args.agents,
                          "mean": round(float(per_agent.mean()), 1),
                          "share_at_threshold": round(float(np.mean(per_agent >= threshold)), 3),
                          "groups16_at_threshold": round(float(np.mean(groups >= threshold)), 3),
                          "failed_returns": sorted(round(float(x), 1) for x in per_agent[per_agent < threshold]),
                          "train_steps_mean": r["mean_train_steps"]}), flush=True)

if __name__ == "__main__":
    main()
