"""Learning reward networks: learning curves, the three objectives, a short RN run, train-rn and evaluate."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import load_file

from synthenv.agents.learning_curve import Curve, make_tested_train, steps_to_target
from synthenv.agents.registry import get_agent
from synthenv.cli import main
from synthenv.evaluation import make_evaluate
from synthenv.meta import objectives
from synthenv.meta.learner import learn
from synthenv.meta.rn_config import make_rn_config
from synthenv.meta.run import train_rn
from synthenv.tasks.real import make_task

from test_cli import snapshot, usage_error


def q_learning_on_cliff(threshold=None, max_tests=100):
    task, agent = make_task("Cliff-v0"), get_agent("q_learning")
    config = agent.resolve("small", max_episodes=max_tests)
    loop = agent.make_train(config, task, agent.max_shapes(config, False), stop_rule="none")
    train = make_tested_train(loop, agent.make_policy(config), task, max_tests, 10, threshold)
    hp = agent.sample_hparams(jax.random.key(0), config, False)
    return task, agent, config, hp, jax.jit(lambda k: train(k, task.default_params, hp))


def test_a_curve_tests_after_every_episode_and_its_last_test_is_the_trained_agent():
    task, agent, config, hp, train = q_learning_on_cliff(max_tests=60)
    result, curve = train(jax.random.key(1))
    n = int(curve.count)
    assert n == int(result.episodes) == 60  # no return-based stop: the 60-episode budget
    steps = np.asarray(curve.steps)[:n]
    assert steps[-1] == int(result.steps) and np.all(np.diff(steps) > 0)
    assert np.sum(np.asarray(curve.lengths)[:n]) == int(result.steps)
    assert np.all(np.isnan(np.asarray(curve.returns)[n:])) or n == curve.returns.shape[0]
    # Cliff is deterministic and the policy greedy: the last test is the trained Q-table's return.
    final, _ = make_evaluate(task, agent.make_policy(config), 1)(jax.random.key(2), result.params, hp)
    assert float(curve.returns[n - 1]) == float(final[0])
    # Q-learning learns: the first tests fall off or wander (-50 or worse), the last one is the optimum.
    assert float(curve.returns[0]) <= -50 and float(final[0]) == -12.0
    assert int(curve.test_steps) >= n * 12


def test_a_threshold_stops_training_at_the_first_window_that_reaches_it():
    *_, train = q_learning_on_cliff(threshold=-20.0)
    result, curve = train(jax.random.key(1))
    n = int(curve.count)
    returns = np.asarray(curve.returns)[:n]
    assert bool(curve.reached) and n < 100
    assert returns[-10:].mean() >= -20 and returns[-11:-1].mean() < -20
    assert int(result.episodes) == n


def hand_curve(returns, steps, lengths, size=6):
    pad = size - len(returns)
    return Curve(jnp.asarray(list(returns) + [jnp.nan] * pad, jnp.float32),
                 jnp.asarray(list(steps) + [-1] * pad, jnp.int32), jnp.asarray(list(lengths) + [0] * pad, jnp.int32),
                 jnp.int32(len(returns)), jnp.int32(0), jnp.bool_(False))


def test_objectives_match_a_hand_computation():
    c = hand_curve([-50.0, -30.0, -14.0, -12.0], [50, 90, 104, 116], [50, 40, 14, 12])
    assert float(objectives.score("auc", c, -20.0, 2, -149.0, False)) == -50 * 50 - 30 * 40 - 14 * 14 - 12 * 12
    assert float(objectives.score("final", c, -20.0, 2, -149.0, False)) == -13.0
    # Reached: the steps until then, no penalty. Not reached: all steps plus 100 per unit of shortfall.
    assert float(objectives.score("threshold", c, -20.0, 2, -149.0, False)) == -116.0
    assert float(objectives.score("threshold", c, -12.5, 2, -149.0, False)) == pytest.approx(-116.0 - 100 * 0.5)
    # Diverged: every test counts as the worst return.
    assert float(objectives.score("final", c, -20.0, 2, -149.0, True)) == -149.0
    assert float(objectives.score("auc", c, -20.0, 2, -149.0, True)) == -149.0 * 116
    assert float(steps_to_target(c, -14.0)) == 104 and float(steps_to_target(c, -11.0)) == -1
    assert float(c.last_mean(3)) == pytest.approx((-30 - 14 - 12) / 3)


def test_a_short_rn_run_improves_its_objective():
    config = make_rn_config("Cliff-v0", variant="additive", objective="threshold", generations=12, seed=3)
    _, records = learn(config)
    first = records[0].score_unperturbed
    best_late = max(r.score_unperturbed for r in records[-3:])
    assert records[0].real_env_steps_generation > 0
    # Fewer real training steps to the threshold (the unperturbed RN's 16 agents, mean; about -1,500
    # at first, -650 after 12 generations).
    assert best_late > first + 500, (first, best_late)


def test_an_rn_run_resumes_bit_identical(tmp_path):
    config = make_rn_config("Cliff-v0", variant="exclusive-potential", objective="auc", generations=4, seed=1)
    train_rn(config, tmp_path / "a")
    train_rn(dataclasses.replace(config, generations=2), tmp_path / "b")
    train_rn(config, tmp_path / "b", resume=True)
    a, b = snapshot(tmp_path / "a"), snapshot(tmp_path / "b")
    ta, tb = (load_file(str(tmp_path / x / "rn.safetensors")) for x in "ab")
    assert set(ta) == set(tb) and all(np.array_equal(ta[k], tb[k]) for k in ta)
    strip = lambda text: [{k: v for k, v in json.loads(line).items() if k != "wall_seconds"}  # noqa: E731
                          for line in text.decode().splitlines()]
    assert strip(a["metrics.jsonl"]) == strip(b["metrics.jsonl"])
    assert json.loads(a["config.json"])["kind"] == "rn"


def test_train_rn_and_evaluate_on_the_command_line(tmp_path, capsys):
    out = tmp_path / "rn"
    assert main(["train-rn", "--out", str(out), "--env", "Cliff-v0", "--variant", "additive",
                 "--objective", "threshold", "--generations", "3"]) == 0
    capsys.readouterr()
    report = tmp_path / "ev.json"
    assert main(["evaluate", "--proxy", str(out / "rn.safetensors"), "--agent", "sarsa", "--agents", "4",
                 "--target", "-12", "--json", str(report)]) == 0
    r = json.loads(report.read_text())
    assert r["proxy_kind"] == "rn" and r["target"] == -12.0 and len(r["steps_to_target"]) == 4
    assert r["real_train_steps"] == r["train_steps"]
    for curve, steps, to_target in zip(r["curves"], r["train_steps"], r["steps_to_target"]):
        assert curve["steps"][-1] == steps and len(curve["steps"]) == len(curve["returns"])
        hits = [s for s, ret in zip(curve["steps"], curve["returns"]) if ret >= -12]
        assert to_target == (hits[0] if hits else None)
    # The same measure on the real task alone.
    assert main(["evaluate", "--env", "Cliff-v0", "--agent", "q_learning", "--agents", "2", "--json", str(report)]) == 0
    r = json.loads(report.read_text())
    assert r["proxy_kind"] is None and r["target"] == -20.0 and len(r["curves"]) == 2
    assert all(x is not None for x in r["steps_to_target"])


@pytest.mark.parametrize("argv, needles", [
    (["--variant", "shaped"], ["unknown RN variant 'shaped'"]),
    (["--objective", "speed"], ["unknown objective 'speed'"]),
    (["--env", "Pong-v9"], ["unknown env id 'Pong-v9'"]),
    (["--env", "MountainCarContinuous-v0", "--inner-agents", "ddqn"], ["'ddqn' needs discrete actions"]),
    (["--max-episodes", "0"], ["max_episodes must be an integer >= 1"]),
    (["--threshold", "nan"], ["threshold must be a finite return"]),
    (["--resume"], ["nothing to resume"]),
    (["--env", "CartPole-v0", "--rn-info"], ["RN info inputs need a task with an info vector; CartPole-v0 has "
                                             "none (tasks with one: HalfCheetah-v5)"]),
    (["--variant", "linear-info"], ["Cliff-v0 has none (tasks with one: HalfCheetah-v5)"]),
])
def test_train_rn_bad_input(tmp_path, capsys, argv, needles):
    env = [] if "--env" in argv else ["--env", "Cliff-v0"]
    usage_error(capsys, ["train-rn", "--out", str(tmp_path / "rn"), *env, *argv], *needles)
    assert not (tmp_path / "rn").exists()


def test_train_rn_refuses_an_se_run_and_a_changed_resume(tmp_path, capsys):
    out = tmp_path / "rn"
    assert main(["train-rn", "--out", str(out), "--env", "Cliff-v0", "--generations", "1"]) == 0
    before = snapshot(out)
    usage_error(capsys, ["train-rn", "--out", str(out), "--env", "Cliff-v0"], "already holds a run")
    usage_error(capsys, ["train-rn", "--out", str(out), "--resume", "--variant", "exclusive"],
                "rn.variant='additive-potential'", "not 'exclusive'")
    usage_error(capsys, ["train-se", "--out", str(out), "--resume"], "holds an RN run", "train-rn --resume")
    assert snapshot(out) == before


@pytest.mark.parametrize("argv, info, variant", [(["--rn-info"], True, "additive-potential"),
                                                  (["--variant", "linear-info"], False, "linear-info"),
                                                  ([], False, "additive-potential")])
def test_train_rn_passes_the_info_options(tmp_path, monkeypatch, argv, info, variant):
    from synthenv.meta import run

    seen = []
    monkeypatch.setattr(run, "train_rn", lambda config, out, **kw: seen.append(config) or {"generations_done": 1})
    assert main(["train-rn", "--out", str(tmp_path / "rn"), "--env", "HalfCheetah-v5", *argv]) == 0
    assert (seen[0].rn.info, seen[0].rn.variant) == (info, variant)


@pytest.mark.parametrize("name", ["ddqn", "ppo"])
def test_an_agents_curve_does_not_depend_on_its_batch(name):
    """Paused agents (episode over, waiting for the batch) draw nothing: the same curve alone or batched."""
    task, agent = make_task("CartPole-v0"), get_agent(name)
    config = agent.resolve("small", max_episodes=12)
    loop = agent.make_train(config, task, agent.max_shapes(config, False), stop_rule="none")
    train = make_tested_train(loop, agent.make_policy(config), task, 12)
    hp = agent.sample_hparams(jax.random.key(0), config, False)
    run = jax.jit(jax.vmap(lambda k: train(k, task.default_params, hp)[1]))
    k = jax.random.split(jax.random.key(5), 3)
    one, other = run(k[jnp.array([0, 1])]), run(k[jnp.array([0, 2])])  # agent 0 beside two partners
    # (DDQN tests after each of its 12 episodes; PPO after each rollout that ended an episode.)
    assert int(one.count[0]) == (12 if name == "ddqn" else int(other.count[0])) >= 3
    for field in ("returns", "steps", "lengths", "test_steps"):
        np.testing.assert_array_equal(np.asarray(getattr(one, field))[0], np.asarray(getattr(other, field))[0])
    assert not np.array_equal(np.asarray(one.steps[1]), np.asarray(other.steps[1]))  # the partners differ


def test_train_rn_help_shows_the_real_defaults(capsys, monkeypatch):
    from test_cli import help_lines

    h = help_lines(capsys, monkeypatch, ["train-rn"])
    assert "(default: additive-potential)" in h["--variant"] and "(default: auc)" in h["--objective"]
    assert "(default: 100)" in h["--max-episodes"]
    assert h["--terminal-potential-zero"].startswith("--terminal-potential-zero, --no-terminal-potential-zero")
    assert h["--rn-info"].startswith("--rn-info, --no-rn-info") and "(default: False)" in h["--rn-info"]
    assert "linear-info" in h["--variant"]
