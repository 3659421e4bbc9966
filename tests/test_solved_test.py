"""The "solved" test of a run: a generation whose unperturbed agents reach the threshold is confirmed by
fresh agents on the same SE, and the run stops only if the mean over both groups reaches it.

The generation step and the confirmation are scripted (no RL), so the bookkeeping is checked exactly.
"""

from __future__ import annotations

import json
from dataclasses import replace

import jax.numpy as jnp
import pytest

from synthenv.meta import run
from synthenv.meta.learner import Learner
from synthenv.meta.config import make_config
from synthenv.meta.generation import GenerationStats


def scripted(monkeypatch, unperturbed: list[float], confirmations: list[float]):
    """Generation ``g``'s unperturbed agents score ``unperturbed[g]``; the i-th confirmation asked for
    (of any inner agent) scores ``confirmations[i]``. Records (generation, inner-agent slot) per call."""
    calls = {"confirm": []}

    def generation(self, es_state, g):
        by_agent = jnp.atleast_1d(jnp.array(unperturbed[g], jnp.float32))  # a list: one per inner agent
        stats = GenerationStats(*(jnp.float32(x) for x in (0.0, 0.0, jnp.min(by_agent), 100, 0, 0, 0, 0)),
                                unperturbed_by_agent=by_agent)
        return es_state, self.strategy.mean(es_state) + g, stats

    def confirm(self, flat, g, slot):
        calls["confirm"].append((g, slot))
        return confirmations[len(calls["confirm"]) - 1], 50

    monkeypatch.setattr(Learner, "compile", lambda self: 0.0)
    monkeypatch.setattr(Learner, "generation", generation)
    monkeypatch.setattr(Learner, "confirm", confirm)
    return calls


def at_threshold(**top):
    """A tiny CartPole-v0 config whose target is the threshold 195 (the default is 197): the scripted
    scores below are set around the threshold."""
    return make_config(se={"hidden": 8}, target_score=195.0, **top)


@pytest.mark.parametrize("confirm_agents", [16, 48])
def test_a_lucky_draw_is_not_solved(tmp_path, monkeypatch, confirm_agents):
    # CartPole-v0 with the threshold 195 as the target. Generation 1 passes with its own agents but
    # not with the fresh ones ((16 * 196 + n * 180) / (16 + n) < 195); generation 3 passes both.
    calls = scripted(monkeypatch, [150, 196, 120, 200, 200], [180, 199])
    config = at_threshold(generations=5, unperturbed_agents=16, confirm_agents=confirm_agents)
    summary = run.train_se(config, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]

    assert calls["confirm"] == [(1, 0), (3, 0)]
    assert [r["score_confirmed"] for r in rows] == [
        None, pytest.approx((16 * 196 + confirm_agents * 180) / (16 + confirm_agents)), None,
        pytest.approx((16 * 200 + confirm_agents * 199) / (16 + confirm_agents))]
    assert [r["solved"] for r in rows] == [False, False, False, True]
    assert summary["solved"] and summary["generations_done"] == 4
    assert summary["best_generation"] == 3
    assert rows[1]["real_env_steps_generation"] == 150  # the confirmation's real-env steps count too


def test_a_shorter_fitness_horizon_is_confirmed_on_the_full_one(tmp_path, monkeypatch):
    """A curriculum option: the ES scores at CartPole-v0's horizon (200 steps, target 195); the
    confirmation runs on the full 500 steps against 475, by the confirming agents alone (their mean
    is not pooled with the short-horizon scores)."""
    calls = scripted(monkeypatch, [150, 196, 199, 199], [400.0, 480.0])
    config = make_config(env="CartPole-v1", proxy_kind="se", se={"hidden": 8}, generations=4,
                         fitness_horizon=200, fitness_target=195.0)
    assert (config.fitness_horizon, config.trigger_score(), config.solved_score()) == (200, 195.0, 475.0)
    summary = run.train_se(config, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert calls["confirm"] == [(1, 0), (2, 0)]
    assert [r["score_confirmed"] for r in rows] == [None, 400.0, 480.0]
    assert [r["solved"] for r in rows] == [False, False, True] and summary["best_generation"] == 2


def test_the_fitness_member_tests_on_the_short_horizon():
    """Unscripted: with a 20-step fitness horizon no unperturbed score can exceed 20 (CartPole pays 1
    per step), and a confirmation called at every generation (target 0) trains on the same SE."""
    from synthenv.meta.learner import Learner

    config = make_config(env="CartPole-v1", proxy_kind="se", es={"population": 2}, se={"hidden": 8},
                         agent={"proxy_max_steps": 200, "proxy_min_steps": 0}, unperturbed_agents=2,
                         confirm_agents=2, fitness_horizon=20, fitness_target=0.0, generations=1)
    learner = Learner(config)
    advance = learner.advance(learner.initial_state())
    assert advance.record.score_unperturbed <= 20.0
    assert advance.record.score_confirmed is not None
    assert advance.record.real_env_steps_generation <= (2 * 2 * 2 + 2) * 10 * 20 + 2 * 10 * 500


def test_confirmation_off_is_the_papers_single_test(tmp_path, monkeypatch):
    calls = scripted(monkeypatch, [150, 196, 120], [])
    config = at_threshold(generations=3, confirm_agents=0)
    summary = run.train_se(config, tmp_path / "run")
    assert calls["confirm"] == []
    assert summary["solved"] and summary["generations_done"] == 2


def test_target_score_moves_the_bar(tmp_path, monkeypatch):
    """With a target above the threshold, a confirmed 196 is not enough; the confirmation is asked for
    only once the unperturbed agents reach the target."""
    calls = scripted(monkeypatch, [196, 199, 199], [196, 199])
    config = make_config(se={"hidden": 8}, generations=3, target_score=198.0)
    summary = run.train_se(config, tmp_path / "run")
    assert calls["confirm"] == [(1, 0), (2, 0)]
    assert summary["solved"] and summary["generations_done"] == 3


def test_mixed_inner_agents_are_confirmed_on_one_se(tmp_path, monkeypatch):
    """With several inner algorithms, a generation reaching the threshold is confirmed with fresh agents
    of every algorithm on that SE, and solves only if each of them does: high scores of different
    algorithms on different generations' SEs do not add up to a solved SE."""
    # Generation 0 (ddqn) 196 -> ddqn (16*196+16*199)/32 = 197.5, ppo 150: not solved.
    # Generation 1 (ppo) 190: below the threshold, no confirmation; latest {ddqn 197.5, ppo 190}.
    # Generation 2 (ddqn) 197 -> ddqn (197+199)/2 = 198, ppo 196: solved.
    calls = scripted(monkeypatch, [196, 190, 197, 200], [199, 150, 199, 196])
    config = at_threshold(generations=4, inner_agents=("ddqn", "ppo"), confirm_agents=16)
    summary = run.train_se(config, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]

    assert calls["confirm"] == [(0, 0), (0, 1), (2, 0), (2, 1)]
    assert rows[0]["confirmed_by_agent"] == {"ddqn": pytest.approx(197.5), "ppo": pytest.approx(150)}
    assert [r["score_confirmed"] for r in rows] == [pytest.approx(150), None, pytest.approx(196)]
    assert [r["solved"] for r in rows] == [False, False, True]
    assert summary["solved"] and summary["generations_done"] == 3
    assert summary["best_generation"] == 2 and summary["best_score"] == pytest.approx(196)


def test_algorithms_trained_together_confirm_each_with_its_own_agents(tmp_path, monkeypatch):
    """With ``inner_mix`` "together" every generation trains both algorithms; the confirmation starts
    when both reach the threshold and pools each algorithm's fresh agents with its own."""
    calls = scripted(monkeypatch, [[199, 150], [196, 197], [200, 200]], [199, 185, 200, 200])
    config = at_threshold(generations=3, inner_agents=("ddqn", "ppo"), inner_mix="together", confirm_agents=16)
    summary = run.train_se(config, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert calls["confirm"] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert rows[0]["unperturbed_by_agent"] == {"ddqn": 199, "ppo": 150} and rows[0]["score_unperturbed"] == 150
    assert rows[1]["confirmed_by_agent"] == {"ddqn": pytest.approx(197.5), "ppo": pytest.approx(191)}
    assert [r["solved"] for r in rows] == [False, False, True]
    assert summary["solved"] and summary["best_generation"] == 2


def test_a_confirmed_se_outranks_an_unconfirmed_one(tmp_path, monkeypatch):
    """The saved SE of an unsolved run is the best confirmed one: a confirmed 190 (32 agents) beats
    a later unconfirmed 194 (16 agents)."""
    scripted(monkeypatch, [170, 196, 194], [184])
    config = at_threshold(generations=3, confirm_agents=16)
    summary = run.train_se(config, tmp_path / "run")
    assert not summary["solved"]
    assert summary["best_generation"] == 1 and summary["best_score"] == pytest.approx(190)


def test_acrobot_defaults():
    """Acrobot-v1's defaults: a synthetic bandit, learned by NES with CartPole's step and the
    score-difference update, two agents per candidate, 2,000 DDQN steps, a target of -90 confirmed by
    64 fresh agents. Its SE (``proxy_kind="se"``): the paper's tuned NES and 1,000 steps."""
    config = make_config(env="Acrobot-v1")
    assert config.proxy_kind == "bandit" and config.architecture == config.bandit
    assert (config.es.sigma, config.es.lr, config.es.mirrored_update) == (0.05, 1.0, "difference")
    assert config.agents_per_member == 2 and config.solved_score() == -90.0 and config.confirm_agents == 64
    assert config.agent.proxy_max_steps == 2000
    se = make_config(env="Acrobot-v1", proxy_kind="se")
    assert (se.es.sigma, se.es.lr, se.es.mirrored_update) == (0.0114, 0.727, "difference")
    assert se.agent.proxy_max_steps == se.agent.proxy_min_steps == 1000 and se.architecture == se.se
    paper = make_config(env="Acrobot-v1", protocol="paper")
    assert paper.proxy_kind == "se" and paper.es.mirrored_update == "best_sign"
    overridden = make_config(env="Acrobot-v1", proxy_kind="se", es={"sigma": 0.05}, agents_per_member=1)
    assert overridden.es.sigma == 0.05 and overridden.es.lr == 0.727 and overridden.agents_per_member == 1
    v1 = make_config(env="CartPole-v1")
    assert (v1.proxy_kind, v1.restart_after, v1.restart_below, v1.agent.proxy_max_steps) == ("bandit", 40, 50.0, 2000)
    assert v1.confirm_also == ("ppo", "sac") and v1.restart_after_failed_checks == 3
    assert make_config(env="CartPole-v0").proxy_kind == "se"
    assert make_config(env="CartPole-v0").solved_score() == 197.0  # above the threshold 195, as Acrobot's
    assert make_config(env="CartPole-v1").solved_score() == 475.0


def test_a_run_can_start_from_an_se_file(tmp_path):
    """``init_se``: the ES starts from the file's weights (and takes its architecture); a file for
    another task or another architecture is refused with a message naming the problem."""
    import jax
    from jax.flatten_util import ravel_pytree

    from synthenv.errors import UsageError
    from synthenv.proxies.files import save_proxy
    from synthenv.proxies.se import SEConfig, SyntheticEnv
    from synthenv.tasks.real import make_task

    se = SyntheticEnv(make_task("CartPole-v0"), SEConfig(hidden=8, activation="tanh"))
    params = se.init(jax.random.key(42))
    save_proxy(tmp_path / "se.safetensors", se, params, {}, 3, 190.0)

    config = make_config(init_se=str(tmp_path / "se.safetensors"), es={"population": 2})
    assert config.se == SEConfig(hidden=8, activation="tanh")
    learner = Learner(config, n_devices=1)
    assert jnp.array_equal(learner.strategy.mean(learner.init_es_state), ravel_pytree(params)[0])

    with pytest.raises(UsageError, match="architecture"):
        make_config(init_se=str(tmp_path / "se.safetensors"), se={"hidden": 9})
    with pytest.raises(UsageError, match="Acrobot-v1"):
        make_config(env="Acrobot-v1", init_se=str(tmp_path / "se.safetensors"))
    with pytest.raises(UsageError, match="no SE file"):
        make_config(init_se=str(tmp_path / "missing.safetensors"))


def test_resume_needs_the_same_config_but_not_the_init_file(tmp_path):
    """A resumed run continues from its saved ES state: the ``init_se`` file it started from may be
    gone, and the resumed generations equal those of an uninterrupted run. Resuming with another
    config (beyond the generation cap) is refused."""
    import shutil

    from synthenv.errors import UsageError

    tiny = dict(es={"population": 2}, se={"hidden": 8}, agent={"proxy_max_steps": 150}, unperturbed_agents=2,
                stop_when_solved=False)
    run.train_se(make_config(generations=1, seed=5, **tiny), tmp_path / "source")
    shutil.copy(tmp_path / "source" / "se.safetensors", tmp_path / "init.safetensors")
    config = make_config(generations=2, seed=6, init_se=str(tmp_path / "init.safetensors"), **tiny)
    run.train_se(config, tmp_path / "whole")
    run.train_se(replace(config, generations=1), tmp_path / "parts")
    (tmp_path / "init.safetensors").unlink()
    with pytest.raises(UsageError, match="another config"):
        run.train_se(replace(config, seed=7), tmp_path / "parts", resume=True)
    run.train_se(config, tmp_path / "parts", resume=True)
    scores = [[json.loads(line)["score_unperturbed"] for line in (tmp_path / d / "metrics.jsonl").open()]
              for d in ("whole", "parts")]
    assert len(scores[0]) == 2 and scores[0] == scores[1]


def test_confirm_also_checks_other_algorithms_only_after_a_pass(tmp_path, monkeypatch):
    """``confirm_also``: algorithms outside the ES confirm a solve. They are asked only when the inner
    agents' confirmation passes, and the worst algorithm decides: generation 0 fails DDQN's
    confirmation (PPO is not asked), generation 1 passes DDQN's but not PPO's, generation 2 both."""
    import synthenv.meta.learner as learner_module

    also_scores, also_calls = [150.0, 196.0], []

    def fake_confirmation(strata, n_agents, n_devices=None):
        def confirm(flat, key):
            also_calls.append(n_agents)
            return jnp.float32(also_scores[len(also_calls) - 1]), jnp.int32(7)
        return confirm

    monkeypatch.setattr(learner_module, "make_confirmation", fake_confirmation)
    calls = scripted(monkeypatch, [196, 196, 200], [180, 199, 199])
    config = at_threshold(generations=3, confirm_also=["ppo"], confirm_also_agents=4)
    summary = run.train_se(config, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert calls["confirm"] == [(0, 0), (1, 0), (2, 0)] and also_calls == [4, 4]
    assert [(r["confirmed_by_agent"] or {}).get("ppo") for r in rows] == [None, 150.0, 196.0]
    assert [r["solved"] for r in rows] == [False, False, True] and summary["best_generation"] == 2
    assert rows[1]["score_confirmed"] == 150.0 and rows[1]["real_env_steps_generation"] == 100 + 50 + 7


def test_the_best_proxy_counts_the_other_algorithms_it_was_checked_with(tmp_path, monkeypatch):
    """Of an unsolved run's proxies, one whose PPO check failed badly ranks by PPO's score: generation
    1 (DDQN 198.6, PPO 150) is worse than generation 0 (DDQN 181.8, PPO not asked), and generation 2
    (DDQN 198.6, PPO 190) better than both."""
    import synthenv.meta.learner as learner_module

    def fake_confirmation(strata, n_agents, n_devices=None):
        scores = iter([150.0, 190.0])  # each learner's PPO check: 150, then 190
        return lambda flat, key: (jnp.float32(next(scores)), jnp.int32(7))

    monkeypatch.setattr(learner_module, "make_confirmation", fake_confirmation)
    scripted(monkeypatch, [196, 196, 196], [180, 199, 199])
    config = at_threshold(generations=2, confirm_also=["ppo"], confirm_also_agents=4)
    summary = run.train_se(config, tmp_path / "run")
    n_old, n_new = config.unperturbed_agents, config.confirm_agents
    assert summary["best_generation"] == 0
    assert summary["best_score"] == pytest.approx((n_old * 196 + n_new * 180) / (n_old + n_new))
    scripted(monkeypatch, [196, 196, 196], [180, 199, 199])
    summary = run.train_se(replace(config, generations=3), tmp_path / "run3")
    assert not summary["solved"] and summary["best_generation"] == 2 and summary["best_score"] == 190.0


def test_failed_checks_of_other_algorithms_restart_the_attempt(tmp_path, monkeypatch):
    """``restart_after_failed_checks``: an attempt whose ``confirm_also`` checks failed that many
    times restarts at the next generation, and ``restart_after`` then counts from the new attempt's
    start. The check stops at the first algorithm that falls short: SAC is asked only after PPO passed."""
    import synthenv.meta.learner as learner_module

    asked, built = [], []

    def fake_confirmation(strata, n_agents, n_devices=None):
        name = ("ddqn", "ppo", "sac")[len(built) % 3]  # each learner builds DDQN's, PPO's, SAC's check
        built.append(name)

        def confirm(flat, key):
            asked.append(name)
            return jnp.float32(150.0 if name == "ppo" else 196.0), jnp.int32(7)
        return confirm

    monkeypatch.setattr(learner_module, "make_confirmation", fake_confirmation)
    # DDQN passes its confirmation in generations 1, 2 and 5; PPO fails each time.
    scripted(monkeypatch, [100, 196, 196, 100, 100, 196, 100, 100, 100, 100], [199] * 3)
    config = at_threshold(generations=10, confirm_agents=16, confirm_also=["ppo", "sac"],
                          restart_after=4, restart_below=50.0, restart_after_failed_checks=2)
    run.train_se(config, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert asked == ["ppo", "ppo", "ppo"]
    assert [(r["confirmed_by_agent"] or {}).get("sac") for r in rows] == [None] * 10
    # Two failed checks (generations 1, 2): attempt 1 from generation 3. Its check at 5 fails once;
    # restart_after 4 counts from generation 3, and the attempt (best 196 >= 50) is not stalled.
    assert [r["attempt"] for r in rows] == [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]
    assert [r["generation"] for r in rows if r["restarted"]] == [3]


def test_restart_below_restarts_only_a_stalled_attempt(tmp_path, monkeypatch):
    """``restart_below``: every ``restart_after`` generations an unsolved attempt restarts only if its
    unperturbed agents never reached the score; the attempt's best starts again with it."""
    scripted(monkeypatch, [10, 12, 11, 60, 40, 45, 30, 20], [])
    config = at_threshold(generations=8, restart_after=2, restart_below=50.0, confirm_agents=0)
    run.train_se(config, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # Attempt 0 stalls (best 12 at generation 2): restart. Attempt 1 reaches 60 in generation 3, so it
    # goes on at generations 4 and 6 although it falls back below 50.
    assert [r["attempt"] for r in rows] == [0, 0, 1, 1, 1, 1, 1, 1]
    always = at_threshold(generations=8, restart_after=2, confirm_agents=0)
    scripted(monkeypatch, [10, 12, 11, 60, 40, 45, 30, 20], [])
    run.train_se(always, tmp_path / "run2")
    rows = [json.loads(line) for line in (tmp_path / "run2" / "metrics.jsonl").read_text().splitlines()]
    assert [r["attempt"] for r in rows] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert [r["generation"] for r in rows if r["restarted"]] == [2, 4, 6]
