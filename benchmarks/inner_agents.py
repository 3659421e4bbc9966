"""Seconds per generation of SE learning for each inner algorithm (what `--inner-agents` costs).

For each agent: build the run's compiled generation step with only that inner agent (CartPole-v0,
defaults: 16 members, mirrored, 16 unperturbed agents = 48 agents, varied HPs), report compile
seconds, then run ``--generations`` generations from the same start and report the median seconds per
generation, the mean and max training steps per agent and agent-steps per second. Usage:

    python benchmarks/inner_agents.py --agents ddqn ppo sac
    python benchmarks/inner_agents.py --agents sac --set sac.hidden=16 --set sac.layers=1
    python benchmarks/inner_agents.py --env CartPole-v1 --top proxy_kind=bandit --agents ddqn ppo:tiny
    python benchmarks/inner_agents.py --env CartPole-v1 --top proxy_kind=bandit --top 'shape_strata=[]' --agents ddqn --checks

``--top key=value`` sets a field of the run's config (``make_config``), e.g. the proxy kind; an agent
``NAME:PRESET`` trains with that preset.

``--checks`` also times the run's solve checks on the initial proxy: the confirmation by
``confirm_agents`` fresh agents of the inner algorithm and each ``confirm_also`` algorithm's check
(compile seconds: the first call less the second; then the second call's seconds).

``--set agent.field=value`` overrides a field of that agent's ``small`` preset (the one inner agents
use; ``--set ppo:tiny.field=value`` that of another preset), to compare candidate presets in one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace

from synthenv import host_devices


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="CartPole-v0")
    parser.add_argument("--agents", nargs="+", default=["ddqn", "dueling_ddqn", "td3_discrete", "ppo", "sac"])
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], help="agent.field=value")
    parser.add_argument("--top", action="append", default=[], help="config_field=value (JSON value or a string)")
    parser.add_argument("--checks", action="store_true", help="also time the confirmation and confirm_also checks")
    args = parser.parse_args()
    host_devices.configure()

    from synthenv.agents.registry import get_agent, split_entry
    from synthenv.meta.config import make_config
    from synthenv.meta.learner import Learner

    for item in args.set:
        name, _, raw = item.partition("=")
        agent, field = name.split(".")
        base, preset = split_entry(agent)
        module, preset = get_agent(base), preset or "small"
        module.PRESETS[preset] = replace(module.PRESETS[preset], **{field: json.loads(raw)})
    top = {}
    for item in args.top:
        key, _, raw = item.partition("=")
        try:
            top[key] = json.loads(raw)
        except json.JSONDecodeError:
            top[key] = raw
    for name in args.agents:
        learner = Learner(make_config(env=args.env, inner_agents=[name], generations=args.generations, **top))
        compile_s = learner.compile()
        state, seconds, rows = learner.init_es_state, [], []
        for g in range(args.generations):
            t = time.perf_counter()
            state, _, stats = learner.steps[0](state, learner.key_for(g))
            stats = {k: v.item() for k, v in stats._asdict().items()}
            seconds.append(time.perf_counter() - t)
            rows.append(stats)
        c = learner.config
        agents = c.es.population * c.agents_per_member + c.unperturbed_agents
        steps = statistics.mean(r["train_steps_mean"] for r in rows) * agents
        print(json.dumps({"agent": name, "compile_s": round(compile_s, 1),
                          "median_s_per_gen": round(statistics.median(seconds), 2),
                          "train_steps_mean": round(statistics.mean(r["train_steps_mean"] for r in rows)),
                          "train_steps_max": max(r["train_steps_max"] for r in rows),
                          "agent_steps_per_s": round(steps / statistics.mean(seconds)),
                          "score_unperturbed": [round(r["score_unperturbed"], 1) for r in rows]}), flush=True)
        if args.checks:
            print(json.dumps({"agent": name, **time_checks(learner)}), flush=True)


def time_checks(learner) -> dict:
    """``{check: [compile s, run s]}`` for the confirmation and each confirm_also check."""
    import jax

    flat, c = learner.strategy.mean(learner.init_es_state), learner.config
    checks = [(f"confirm_{c.inner_agents[0]}_{c.confirm_agents}", learner.confirms[0])]
    checks += [(f"check_{n}_{c.confirm_also_agents}", f) for n, f in zip(c.confirm_also, learner.also_confirms)]
    out = {}
    for label, fn in checks:
        if fn is None:
            continue
        t = time.perf_counter()
        fn(flat, jax.random.key(0))[0].block_until_ready()
        first = time.perf_counter() - t
        t = time.perf_counter()
        fn(flat, jax.random.key(1))[0].block_until_ready()
        second = time.perf_counter() - t
        out[label] = [round(first - second, 1), round(second, 2)]
    return out


if __name__ == "__main__":
    main()
