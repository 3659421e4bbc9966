"""Agent HPO on an SE (``synthenv hpo``) and the HPO-proxy study (``experiment hpo-proxy``): the search space
and its shapes, a config's score independent of the batch it trains in (tiny budgets, both sides), the best
trial and the validated configs taken from the scores told to Optuna and the study's statistics (on a
stand-in scorer), Spearman and top-k by hand, bad input."""

from __future__ import annotations

import json
import math
from dataclasses import astuple, replace
from pathlib import Path

import jax
import numpy as np
import optuna
import pytest
from scipy.stats import spearmanr

from synthenv.agents import hparams, registry
from synthenv.cli import main
from synthenv.experiments.hpo import REAL_SIDE, SE_SIDE, Search, make_search, search_space, space_shapes
from synthenv.experiments.hpo_proxy import spearman, top_k_overlap
from synthenv.proxies.files import load_se, save_proxy
from synthenv.proxies.rn import RewardNetEnv, RNConfig
from synthenv.tasks.real import make_task
from test_cli import help_lines, usage_error

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "cartpole-v0-invariant.safetensors"
# Tiny budgets: 300 steps per agent on either side, a 3-episode window so that agents stop at different steps.
TINY_AGENT = {"proxy_max_steps": 300, "proxy_min_steps": 0, "max_steps": 300, "stop_window": 3}


@pytest.fixture(scope="module")
def tiny_se(tmp_path_factory) -> Path:
    """The shipped SE, saved with a training config whose DDQN trains for a few hundred steps."""
    se = load_se(SHIPPED)
    config = {**se.training_config, "agent": {**se.training_config["agent"], **TINY_AGENT}}
    path = tmp_path_factory.mktemp("hpo") / "tiny.safetensors"
    save_proxy(path, se.env, se.weights, config, generation=0, score=0.0)
    return path


def test_space_is_wider_than_the_varied_rule_and_its_shapes_cover_it():
    """lr x/÷10 (log), sizes x/÷4 (log), layers 1..L+2, around the preset; every point of the space fits in
    the shapes trials are allocated at (for PPO too: its minibatches per epoch grow as the minibatch shrinks)."""
    for name, preset in (("ddqn", "small"), ("ppo", "tiny"), ("sac", "small")):
        module = registry.get_agent(name)
        config = module.resolve(preset)
        space = search_space(module, config)
        assert list(space) == list(module.HParams._fields)
        assert space["lr"].log and np.isclose(space["lr"].low, config.lr / 10) and np.isclose(space["lr"].high, config.lr * 10)
        assert (space["layers"].low, space["layers"].high) == (1, config.layers + 2)
        assert (space["hidden"].low, space["hidden"].high) == (round(config.hidden / 4), config.hidden * 4)
        for f in ("hidden", "layers"):  # wider than the varied-HP rule
            lo, hi = hparams.bounds(config, f, True)
            assert space[f].low <= lo and space[f].high >= hi
        if name == "ppo":
            assert space["minibatch_size"].high <= config.rollout_steps
        shapes = space_shapes(module, config, space)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
        for _ in range(40):
            point = study.ask(space).params
            need = module.max_shapes(replace(config, **point), False)
            assert all(n <= s for n, s in zip(astuple(need), astuple(shapes))), (name, point, need, shapes)


def test_a_batch_trains_each_config_as_if_alone(tiny_se):
    """On both sides, a config scores the same (test return and training steps) in a batch with others, in
    another position, and in a batch of copies of itself: the vmapped, masked path trains each config alone."""
    search = make_search(tiny_se, "ddqn", None)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    params = [study.ask(search.space).params for _ in range(3)]
    for side in (SE_SIDE, REAL_SIDE):
        score = search.scorer(side, 2, seed=4)
        together = score([0, 1, 2], params)
        outcomes = list(zip(together["returns"], together["steps"]))
        assert len(set(outcomes)) > 1, outcomes  # the configs train differently: the check is not vacuous
        shuffled = score([2, 0, 1], [params[2], params[0], params[1]])
        assert list(zip(shuffled["returns"], shuffled["steps"])) == [outcomes[2], outcomes[0], outcomes[1]]
        for i in range(3):
            alone = score([i] * 3, [params[i]] * 3)
            assert list(zip(alone["returns"], alone["steps"])) == [outcomes[i]] * 3


def fake_scorer(calls: list):
    """A stand-in for ``Search.scorer``: distinct scores that are functions of the params, every call recorded."""

    def scorer(self, side, episodes, seed, agents=1, n_devices=None):
        def score(numbers, params):
            calls.append({"side": side, "episodes": episodes, "agents": agents, "numbers": list(numbers)})
            se = [p["hidden"] - 100 * abs(math.log10(p["lr"]) + 2.5) + p["layers"] / 10 for p in params]
            returns = [-x for x in se] if side == REAL_SIDE else se
            return {"returns": np.array(returns), "steps": np.array([100.0 * p["batch_size"] for p in params]),
                    "diverged": np.zeros(len(params), int)}

        return score

    return scorer


def test_hpo_best_is_the_argmax_told_and_validated_are_the_top_k(tiny_se, tmp_path, capsys, monkeypatch):
    """Batches of --batch trials (the last padded with copies of its last trial, whose results are dropped),
    trial 0 the base config, every score told to Optuna, the best its argmax, the top K validated."""
    calls = []
    monkeypatch.setattr(Search, "scorer", fake_scorer(calls))
    out = tmp_path / "hpo.json"
    rc = main(["hpo", "--proxy", str(tiny_se), "--trials", "7", "--validate", "3", "--batch", "3",
               "--episodes", "2", "--seed", "4", "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "SE side: 7 trials" in printed and "real side: 3 configs" in printed
    r = json.loads(out.read_text())
    log = r["trial_log"]
    assert [c["numbers"] for c in calls[:3]] == [[0, 1, 2], [3, 4, 5], [6, 6, 6]]
    assert all(c["side"] == SE_SIDE and c["episodes"] == 2 and c["agents"] == 1 for c in calls[:3])
    assert [t["number"] for t in log] == list(range(7))
    agent = load_se(tiny_se).training_config["agent"]  # the base config: the SE's own DDQN config
    assert log[0]["params"] == r["base_params"] == {f: agent[f] for f in ("lr", "batch_size", "hidden", "layers")}
    assert len({json.dumps(t["params"], sort_keys=True) for t in log}) == 7
    told = np.array([t["se_return"] for t in log])
    scores = fake_scorer([])(None, SE_SIDE, 2, 4)([t["number"] for t in log], [t["params"] for t in log])
    np.testing.assert_allclose(told, scores["returns"])  # what the scorer gave is what Optuna holds
    assert r["best"]["number"] == int(np.argmax(told)) and r["best"]["se_return"] == told.max()
    top = [int(i) for i in np.argsort(-told, kind="stable")[:3]]
    assert calls[3]["side"] == REAL_SIDE and calls[3]["numbers"] == top and len(calls) == 4
    assert [v["number"] for v in r["validated"]] == top and [v["rank"] for v in r["validated"]] == [1, 2, 3]
    for v in r["validated"]:
        assert v["se_return"] == told[v["number"]] and v["real_return"] == pytest.approx(-told[v["number"]])
        assert v["real_steps"] == 100 * v["params"]["batch_size"] and v["real_solved"] == (v["real_return"] >= 195)


def test_hpo_proxy_scores_every_config_on_both_sides_and_writes_its_report(tiny_se, tmp_path, capsys, monkeypatch):
    """The study's own logic on a stand-in scorer (training itself is the hpo test's): configs from the space,
    each side scored with --agents-per-config agents, Spearman (scipy) and top-k of the right configs."""
    calls = []

    def stand_in(self, side, episodes, seed, agents=1, n_devices=None):
        calls.append((side, episodes, agents))

        def score(numbers, params):
            returns = [p["hidden"] + (20 * p["layers"] if side == REAL_SIDE else 0) for p in params]
            return {"returns": np.array(returns, float), "steps": np.array([1000.0 * p["layers"] for p in params]),
                    "diverged": np.zeros(len(params), int)}

        return score

    monkeypatch.setattr(Search, "scorer", stand_in)
    out = tmp_path / "study"
    rc = main(["experiment", "hpo-proxy", "--proxy", str(tiny_se), "--configs", "8", "--agents-per-config", "3",
               "--episodes", "2", "--out", str(out)])
    assert rc == 0 and "Spearman" in capsys.readouterr().out
    assert calls == [(SE_SIDE, 2, 3), (REAL_SIDE, 2, 3)]
    s = json.loads((out / "summary.json").read_text())
    cfg = s["per_config"]
    space = make_search(tiny_se, "ddqn", None).space
    assert [c["number"] for c in cfg] == list(range(8)) and len({json.dumps(c["params"]) for c in cfg}) == 8
    assert all(space[f].low <= v <= space[f].high for c in cfg for f, v in c["params"].items())
    se = [c["params"]["hidden"] for c in cfg]
    real = [c["params"]["hidden"] + 20 * c["params"]["layers"] for c in cfg]
    steps = [1000 * c["params"]["layers"] for c in cfg]
    assert [c["se_return"] for c in cfg] == se and [c["real_return"] for c in cfg] == real
    assert s["spearman_returns"] == pytest.approx(spearmanr(se, real).statistic)
    assert s["spearman_se_return_real_steps"] == pytest.approx(spearmanr(se, steps).statistic)
    assert s["top_k"] == 2 and s["top_k_overlap"] == top_k_overlap(se, real, steps, 2)
    assert s["top_k_overlap_by_chance"] == 0.5 and s["se_tied_at_top_k"] == se.count(sorted(se)[-2])
    assert (out / "scatter.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert f"{s['spearman_returns']:.2f}" in report and "![SE return against real return](scatter.png)" in report


def test_spearman_and_top_k_overlap_by_hand():
    # ranks differ by d = (-1, 1, -1, 1, 0): rho = 1 - 6 * 4 / (5 * (25 - 1)) = 0.8
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [7, 7, 7]) is None  # a constant side has no ranking
    # SE top 2: configs 1 and 3; real top 2: 3 and 0 (three tie at 200, fewer steps first): overlap 1.
    se, real, steps = [10, 50, 30, 40], [200, 200, 100, 200], [5000, 9000, 1000, 3000]
    assert top_k_overlap(se, real, steps, 2) == 1
    assert top_k_overlap(se, real, steps, 4) == 4
    assert top_k_overlap([1, 2, 3, 4], [1, 2, 3, 4], [0] * 4, 1) == 1


@pytest.fixture(scope="module")
def rn_file(tmp_path_factory) -> Path:
    env = RewardNetEnv(make_task("CartPole-v0"), RNConfig(hidden=4))
    path = tmp_path_factory.mktemp("rn") / "rn.safetensors"
    save_proxy(path, env, env.init(jax.random.key(0)), {}, generation=0, score=0.0)
    return path


@pytest.mark.parametrize("args,needles", [
    (["--agent", "nope"], ("unknown agent", "nope")),
    (["--agent", "td3"], ("td3", "continuous actions")),
    (["--trials", "0"], ("--trials", ">= 1")),
    (["--validate", "0"], ("--validate", ">= 1")),
    (["--batch", "0"], ("--batch", ">= 1")),
    (["--trials", "3", "--validate", "4"], ("--validate (4) cannot exceed --trials (3)",)),
    (["--preset", "huge"], ("unknown DDQN preset", "huge")),
])
def test_hpo_bad_input(capsys, args, needles):
    usage_error(capsys, ["hpo", "--proxy", str(SHIPPED), *args], *needles)


@pytest.mark.parametrize("args,needles", [
    (["--configs", "0"], ("--configs", ">= 2")),
    (["--agents-per-config", "0"], ("--agents-per-config",)),
    (["--configs", "8", "--top", "9"], ("--top", "between 1 and --configs (8)")),
    (["--agent", "nope"], ("unknown agent",)),
])
def test_hpo_proxy_bad_input(capsys, tmp_path, args, needles):
    out = tmp_path / "study"
    usage_error(capsys, ["experiment", "hpo-proxy", "--proxy", str(SHIPPED), "--out", str(out), *args], *needles)
    assert not out.exists()


def test_a_file_that_is_not_an_se(capsys, tmp_path, rn_file):
    text = tmp_path / "notes.safetensors"
    text.write_text("not a model")
    usage_error(capsys, ["hpo", "--proxy", str(text)], "not a valid safetensors file")
    usage_error(capsys, ["hpo", "--proxy", str(tmp_path / "missing.safetensors")], "does not exist")
    usage_error(capsys, ["hpo", "--proxy", str(rn_file)], "reward_network", "synthetic_env")
    usage_error(capsys, ["experiment", "hpo-proxy", "--proxy", str(rn_file), "--out", str(tmp_path / "s")],
                "reward_network")


def test_helps_show_types_and_real_defaults(capsys, monkeypatch):
    h = help_lines(capsys, monkeypatch, ["hpo"])
    assert h["--trials"].startswith("--trials INT") and "(default: 64)" in h["--trials"]
    assert "(default: 4)" in h["--validate"] and "(default: 16)" in h["--batch"]
    assert h["--json"].startswith("--json PATH") and "(default: as evaluate" in h["--preset"]
    h = help_lines(capsys, monkeypatch, ["experiment", "hpo-proxy"])
    assert "(default: 24)" in h["--configs"] and "(default: 2)" in h["--agents-per-config"]
    assert "(default: a quarter of --configs)" in h["--top"]
