"""What the learning-curve tests cost: agents trained for a fixed number of episodes, plain against
with one greedy real test episode after each training episode (``make_tested_train``).

Prints, per agent kind, the compile time and the run time of one vmapped batch, training steps per
second and the tests' share of the environment steps. Usage:

    python benchmarks/learning_curves.py
    python benchmarks/learning_curves.py --agents 32 --episodes 100 --env CartPole-v0 --agent ddqn
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="CartPole-v0")
    parser.add_argument("--agent", default="ddqn")
    parser.add_argument("--agents", type=int, default=16)
    parser.add_argument("--episodes", type=int, default=100)
    args = parser.parse_args()

    import jax

    from synthenv.agents.learning_curve import make_tested_train
    from synthenv.agents.registry import get_agent
    from synthenv.tasks.real import make_task

    task, agent = make_task(args.env), get_agent(args.agent)
    config = agent.resolve("small", max_episodes=args.episodes)
    loop = agent.make_train(config, task, agent.max_shapes(config, False), stop_rule="none")
    tested = make_tested_train(loop, agent.make_policy(config), task, args.episodes)
    keys = jax.random.split(jax.random.key(0), args.agents)
    hps = jax.vmap(lambda k: agent.sample_hparams(k, config, False))(keys)
    for name, train in (("plain", loop), ("with tests", tested)):
        fn = jax.jit(jax.vmap(lambda k, hp: train(k, task.default_params, hp)))
        t = time.perf_counter()
        compiled = fn.lower(keys, hps).compile()
        compile_s = time.perf_counter() - t
        t = time.perf_counter()
        out = jax.block_until_ready(compiled(keys, hps))
        run_s = time.perf_counter() - t
        result, curve = out if name == "with tests" else (out, None)
        steps = int(result.steps.sum())
        test_steps = int(curve.test_steps.sum()) if curve is not None else 0
        print(f"{args.agent} on {args.env}, {args.agents} agents x {args.episodes} episodes, {name}: "
              f"compile {compile_s:.1f} s, run {run_s:.2f} s, {steps:,} training steps "
              f"({steps / run_s:,.0f}/s), test steps {test_steps:,}")


if __name__ == "__main__":
    main()
