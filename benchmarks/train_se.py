"""Wall time to a solved SE with the default config, over several seeds, each in a fresh process.

Prints per seed (one JSON line each): generations, solved, compile seconds, total wall seconds
(compile included), median seconds per generation, agent-steps per second (inner training steps of all agents / generation time),
real-env steps, peak RSS, and the mean real return of 16 fresh DDQN agents with varied HPs trained only
on the learned SE (the README's evaluate command; ``--agents ddqn,ppo,sac``: 16 of each, ``eval_by_agent``), each at its default step cap on the proxy (``eval_step_cap``), and of 64 more DDQN agents (other draws: the 16-agent mean of
near-bimodal returns has a spread of about +-14 near the threshold); then the sweep's summary (solve
rate, median and worst evaluation, median and maximum wall time). Usage:

    python benchmarks/train_se.py --env CartPole-v0 --seeds 0 1 2
    python benchmarks/train_se.py --seeds 0 1 --set es.strategy=open_es --set agent.proxy_min_steps=500
    python benchmarks/train_se.py --seeds 1000 1001 --set protocol=paper --keep runs/sweep
    python benchmarks/train_se.py --env CartPole-v1 --seeds 9300 --set proxy_kind=bandit --agents ddqn,ppo,sac
    python benchmarks/train_se.py --env CartPole-v1 --seeds 9800 9801 --minutes 15   # unsolved runs stop at 15 minutes

``--set section.field=value`` overrides one field of the default config (sections: es, se, agent;
no section: a top-level field such as ``generations``); values are parsed as JSON when they can be.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, os, resource, sys, time
from synthenv import compilation_cache, host_devices
host_devices.configure()
compilation_cache.configure()
t0 = time.perf_counter()
from synthenv.meta.config import make_config
from synthenv.meta.run import train_se
from synthenv.experiments.evaluate import evaluate_agents
env, seed, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
overrides, eval_agents = json.loads(sys.argv[4]), sys.argv[5].split(",")
config = make_config(env=env, seed=seed, **overrides)
minutes = float(sys.argv[6])


seen = {}


class OutOfTime(Exception):
    pass


def stop_at_the_limit(kind, data):
    seen[kind] = data
    if minutes and kind == "generation" and time.perf_counter() - t0 > 60 * minutes and not data["solved"]:
        raise OutOfTime


stopped = False
try:
    summary = train_se(config, out, on_event=stop_at_the_limit)
except OutOfTime:  # the run stands as saved after its last generation; its summary from the events
    stopped, last = True, seen["generation"]
    summary = {"solved": False, "generations_done": last["generations_done"],
               "real_env_steps": last["real_env_steps"], "compile_seconds": seen["compiled"]["compile_seconds"]}
wall = time.perf_counter() - t0
ev = evaluate_agents(proxy=out + "/se.safetensors", agents=16, episodes=10, vary_hparams=True, seed=seed)
ev64 = evaluate_agents(proxy=out + "/se.safetensors", agents=64, episodes=10, vary_hparams=True, seed=seed + 100000)
others = {a: evaluate_agents(proxy=out + "/se.safetensors", agent=a, agents=16, episodes=10, vary_hparams=True,
                             seed=seed) for a in eval_agents if a != "ddqn"}
by_agent = {a: r["mean_return"] for a, r in others.items()}
agents = config.es.population * (2 if config.es.mirrored else 1) * config.agents_per_member + config.unperturbed_agents
print(json.dumps({"summary": summary, "wall_to_se": wall, "stopped_at_limit": stopped, "agents_per_generation": agents,
                  "confirm_also": list(config.confirm_also),
                  "eval_by_agent": {"ddqn": ev["mean_return"], **by_agent}, "eval_mean_return": ev["mean_return"], "eval_solved_fraction": ev["solved_fraction"],
                  "eval_train_steps": ev["mean_train_steps"],
                  "eval_step_cap": {"ddqn": ev["step_cap"], **{a: r["step_cap"] for a, r in others.items()}},
                  "eval64_mean_return": ev64["mean_return"],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def parse_overrides(items: list[str]) -> dict:
    """``["es.sigma=0.1", "generations=50"]`` -> ``{"es": {"sigma": 0.1}, "generations": 50}``."""
    out: dict = {}
    for item in items:
        name, _, raw = item.partition("=")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        section, _, field = name.rpartition(".")
        (out.setdefault(section, {}) if section else out)[field] = value
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="CartPole-v0")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    p.add_argument("--agents", default="ddqn", help="comma-separated algorithms for the 16-agent evaluation")
    p.add_argument("--keep", metavar="DIR", help="keep each seed's run directory as DIR/seed-N")
    p.add_argument("--minutes", type=float, default=0,
                   help="stop a seed's run after this many minutes (compilation included) if not solved; 0: no limit")
    p.add_argument("--cold", action="store_true",
                   help="each seed compiles from an empty compilation cache, as a first run on a new machine "
                        "(default: the command line's cache, synthenv.compilation_cache)")
    args = p.parse_args()
    overrides = parse_overrides(args.set)
    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            out = str(Path(args.keep) / f"seed-{seed}" if args.keep else Path(tmp) / "run")
            t = time.perf_counter()
            res = subprocess.run([sys.executable, "-c", CHILD, args.env, str(seed), out, json.dumps(overrides), args.agents,
                                  str(args.minutes)],
                                 capture_output=True, text=True,
                                 env={**os.environ, "JAX_COMPILATION_CACHE_DIR": tmp + "/jax"} if args.cold else None)
            if res.returncode:
                sys.exit(f"seed {seed} failed:\n{res.stderr[-3000:]}")
            r = json.loads(res.stdout.strip().splitlines()[-1])
            metrics = [json.loads(l) for l in open(Path(out) / "metrics.jsonl")]
        per_gen = [m["wall_seconds"] for m in metrics]
        agent_steps = [m["train_steps_mean"] * r["agents_per_generation"] / m["wall_seconds"] for m in metrics]
        s = r["summary"]
        row = {"seed": seed, "solved": s["solved"], "stopped_at_limit": r["stopped_at_limit"],
               "generations": s["generations_done"],
               "restarts": metrics[-1].get("attempt", 0),
               "solved_in_attempt_at": next((m["generation"] - min(n["generation"] for n in metrics
                                                                   if n.get("attempt", 0) == m.get("attempt", 0))
                                             for m in metrics if m["solved"]), None),
               "failed_checks": sum(1 for m in metrics if not m["solved"] and
                                    set(m.get("confirmed_by_agent") or ()) & set(r["confirm_also"])),
               "compile_s": round(s["compile_seconds"], 1), "wall_to_se_s": round(r["wall_to_se"], 1),
               "median_s_per_gen": round(statistics.median(per_gen), 2),
               "agent_steps_per_s": round(statistics.median(agent_steps)),
               "real_env_steps": s["real_env_steps"], "peak_rss_mb": round(r["peak_rss_mb"]),
               "eval_mean_return": round(r["eval_mean_return"], 1),
               **({"eval_by_agent": {a: round(v, 1) for a, v in r["eval_by_agent"].items()}}
                  if args.agents != "ddqn" else {}),
               "eval_solved_fraction": r["eval_solved_fraction"], "eval_train_steps": r["eval_train_steps"],
               "eval_step_cap": r["eval_step_cap"], "eval64_mean_return": round(r["eval64_mean_return"], 1),
               "process_s": round(time.perf_counter() - t, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps(summarize(rows)))


def summarize(rows: list[dict]) -> dict:
    """The sweep as a distribution over seeds: solve rate, median and worst of the fresh-agent
    evaluation, median and maximum wall time (every seed counts, solved or not)."""
    walls = [r["wall_to_se_s"] for r in rows]
    evals = [r["eval_mean_return"] for r in rows]
    by_agent = {a: min(r["eval_by_agent"][a] for r in rows) for a in rows[0].get("eval_by_agent", {})}
    return {"seeds": len(rows), "solve_rate": sum(r["solved"] for r in rows) / len(rows),
            **({"eval_worst_by_agent": by_agent} if by_agent else {}),
            "wall_to_se_s_median": statistics.median(walls), "wall_to_se_s_max": max(walls),
            "generations_median": statistics.median(r["generations"] for r in rows),
            "eval_mean_return_median": statistics.median(evals), "eval_mean_return_worst": min(evals),
            "eval64_mean_return_worst": min(r["eval64_mean_return"] for r in rows),
            "real_env_steps_median": statistics.median(r["real_env_steps"] for r in rows)}


if __name__ == "__main__":
    main()
