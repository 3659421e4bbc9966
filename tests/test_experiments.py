"""The paper's studies on a tiny scale: SE sets (resumable, skipping finished runs), the transfer study
(agent i trains on SE i // agents_per_se), success curves and transition histograms, and their CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from synthenv.agents import ddqn
from synthenv.cli import main
from synthenv.errors import UsageError
from synthenv.experiments.curves import plot_curves
from synthenv.experiments.evaluate import train_and_test
from synthenv.experiments.histograms import GROUPS, transition_histograms
from synthenv.experiments.se_sets import SET_FILE, find_se_files, refine_ses, train_ses
from synthenv.experiments.transfer import REAL, transfer
from synthenv.proxies.files import load_se

TINY = dict(es={"population": 2}, se={"hidden": 8}, agent={"proxy_max_steps": 150}, unperturbed_agents=2)


@pytest.fixture(scope="module")
def se_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("set") / "ses"
    statuses = train_ses("CartPole-v0", 2, "varied", out, seed=3, generations=2, **TINY)
    assert [s["state"] for s in statuses] == ["finished", "finished"]
    return out


def test_set_layout_and_skip(se_set):
    index = json.loads((se_set / SET_FILE).read_text())
    assert [r["dir"] for r in index["runs"]] == ["se_000", "se_001"]
    assert all(r["generations_done"] == 2 for r in index["runs"])
    configs = [json.loads((se_set / d / "config.json").read_text()) for d in ("se_000", "se_001")]
    assert [c["seed"] for c in configs] == [3, 4] and all(c["vary_hparams"] for c in configs)
    before = {p: p.read_bytes() for p in se_set.rglob("*.safetensors")}
    events = []
    train_ses("CartPole-v0", 2, "varied", se_set, seed=3, generations=2,
              on_event=lambda kind, d: events.append(kind), **TINY)
    assert events == ["skip", "skip"]
    assert {p: p.read_bytes() for p in se_set.rglob("*.safetensors")} == before


def test_set_refuses_other_settings(se_set):
    with pytest.raises(UsageError, match="other settings"):
        train_ses("CartPole-v0", 2, "fixed", se_set, seed=3, generations=2, **TINY)
    with pytest.raises(UsageError, match="--hparams"):
        train_ses("CartPole-v0", 2, "sometimes", se_set.parent / "other", generations=2, **TINY)


def test_refine_set_starts_each_run_from_its_se(se_set, tmp_path):
    """A refined set: one run per source SE, with the source's own training config but the refinement
    step (sigma, lr, agents per candidate, no stop when solved); its first generation evaluates the
    source SE unchanged, so a one-generation refinement saves exactly the source weights."""
    out = tmp_path / "refined"
    statuses = refine_ses(se_set, out, seed=7, solved_only=False, generations=1, sigma=0.01)
    assert [s["state"] for s in statuses] == ["finished", "finished"]
    for i, source in enumerate(find_se_files(se_set, solved_only=False)):
        config = json.loads((out / f"se_{i:03d}" / "config.json").read_text())
        src = load_se(source).metadata["training_config"]
        assert config["init_se"] == str(source) and config["seed"] == 7 + i
        assert (config["es"]["sigma"], config["es"]["lr"], config["agents_per_member"]) == (0.01, 0.5, 2)
        assert not config["stop_when_solved"] and config["generations"] == 1
        assert config["es"]["population"] == src["es"]["population"] == 2
        assert config["agent"] == src["agent"] and config["se"] == src["se"]
        refined = load_se(out / f"se_{i:03d}" / "se.safetensors")
        for a, b in zip(jax.tree.leaves(refined.params), jax.tree.leaves(load_se(source).params)):
            np.testing.assert_array_equal(a, b)
    events = []
    refine_ses(se_set, out, seed=7, solved_only=False, generations=1, sigma=0.01,
               on_event=lambda kind, d: events.append(kind))
    assert events == ["skip", "skip"]
    assert len(find_se_files(out, solved_only=True)) == 2  # every refined SE counts
    with pytest.raises(UsageError, match="other settings"):
        refine_ses(se_set, out, seed=7, solved_only=False, generations=1, sigma=0.03)


def test_refine_ses_cli_passes_its_options(se_set, tmp_path, capsys):
    out = tmp_path / "refined"
    rc = main(["experiment", "refine-ses", "--ses", str(se_set), "--out", str(out), "--include-unsolved",
               "--generations", "1", "--lr", "0.3", "--agents-per-member", "1", "--target-score", "150",
               "--confirm-agents", "0", "--seed", "9"])
    assert rc == 0 and "2 SEs refined" in capsys.readouterr().out
    config = json.loads((out / "se_001" / "config.json").read_text())
    assert (config["es"]["sigma"], config["es"]["lr"], config["agents_per_member"]) == (0.02, 0.3, 1)
    assert (config["target_score"], config["confirm_agents"], config["seed"]) == (150, 0, 10)


def test_set_with_inner_agents_resumes(tmp_path):
    """Settings with tuples (--inner-agents) compare equal to their JSON copy in ses.json."""
    out = tmp_path / "ses"
    kw = dict(seed=3, generations=1, inner_agents=("ddqn",), **TINY)
    train_ses("CartPole-v0", 1, "varied", out, **kw)
    events = []
    train_ses("CartPole-v0", 1, "varied", out, on_event=lambda kind, d: events.append(kind), **kw)
    assert events == ["skip"]


def test_train_ses_cli_takes_a_config_file(se_set, tmp_path, capsys):
    """``train-ses --config``: the file's values reach every SE's config, the options win over it, and
    a key the set's own options give (here the seed) is refused with a line naming it. (The file
    changes nothing the generation step compiles, so it reuses ``se_set``'s compiled program.)"""
    config = tmp_path / "c.json"
    config.write_text(json.dumps({**TINY, "confirm_agents": 0, "target_score": 150.0, "inner_mix": "together"}))
    out = tmp_path / "ses"
    rc = main(["experiment", "train-ses", "--out", str(out), "--count", "1", "--generations", "1",
               "--seed", "5", "--config", str(config), "--inner-mix", "cycle"])
    assert rc == 0
    saved = json.loads((out / "se_000" / "config.json").read_text())
    assert (saved["es"]["population"], saved["confirm_agents"], saved["target_score"]) == (2, 0, 150.0)
    assert (saved["seed"], saved["generations"], saved["inner_mix"]) == (5, 1, "cycle")
    config.write_text(json.dumps({"seed": 3}))
    capsys.readouterr()
    assert main(["experiment", "train-ses", "--out", str(tmp_path / "other"), "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "seed is given by train-ses's --seed" in err[-1] and not (tmp_path / "other").exists()


def test_per_agent_ses_route_each_agent_to_its_se(se_set):
    """Stacked SEs: agent 1 of [SE a, SE b] gives exactly what agent 1 gives when both agents train on SE b."""
    a, b = (load_se(p) for p in find_se_files(se_set, solved_only=False))
    config = ddqn.resolve("small", proxy_max_steps=150)
    stacked = a.env.params_for(jax.tree.map(lambda x, y: np.stack([x, y]), a.weights, b.weights))
    args = (ddqn, config, a.env.task, a.env, "converged")
    mixed = train_and_test(*args, stacked, 2, 3, True, 0, per_agent_params=True)
    only_b = train_and_test(*args, b.env.default_params, 2, 3, True, 0)
    for k in ("returns", "steps", "episodes"):
        np.testing.assert_array_equal(mixed[k][1], only_b[k][1])


def test_transfer_study_outputs(se_set, tmp_path):
    out = tmp_path / "report"
    summary = transfer([se_set], ["ddqn"], out, agents_per_se=2, episodes=2, real=True, real_agents=2,
                       solved_only=False)
    cell, real = summary["settings"]["ses"]["ddqn"], summary["settings"][REAL]["ddqn"]
    assert cell["agents"] == 4 and cell["test_returns"] == 8 and real["agents"] == 2
    returns = json.loads((out / "returns.json").read_text())
    r = np.array(returns["ses"]["ddqn"]["returns"])
    assert r.shape == (4, 2) and cell["mean_return"] == pytest.approx(r.mean())
    assert cell["return_quantiles"]["0.5"] == pytest.approx(np.quantile(r, 0.5))
    assert real["train_steps_mean"] == pytest.approx(np.mean(returns[REAL]["ddqn"]["steps"]))
    # The baseline trains on the real task until the threshold or the episode cap, never to the step cap.
    assert np.all(np.array(returns[REAL]["ddqn"]["steps"]) < ddqn.PRESETS["small"].max_steps)
    assert np.all(np.array(returns[REAL]["ddqn"]["episodes"]) <= ddqn.PRESETS["small"].max_episodes)
    for f in ("summary.json", "densities.png", "steps.png", "report.md"):
        assert (out / f).stat().st_size > 0, f
    report = (out / "report.md").read_text()
    assert "| ddqn |" in report and "190.7; 16,888" in report  # ours and the paper's table


def test_solved_only_refuses_unsolved_set(se_set):
    if any(json.loads((se_set / SET_FILE).read_text())["runs"][i]["solved"] for i in range(2)):
        pytest.skip("a tiny SE solved CartPole")
    with pytest.raises(UsageError, match="no solved SE"):
        find_se_files(se_set, solved_only=True)


def test_curves(se_set, tmp_path):
    r = plot_curves([se_set], tmp_path / "c.png")
    assert r["runs"] == 2 and r["env"] == "CartPole-v0"
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_histograms(se_set, tmp_path):
    proxy = se_set / "se_000" / "se.safetensors"
    stats = transition_histograms(proxy, tmp_path / "h.png", agents=2, episodes=2)
    g = stats["groups"]
    assert set(g) == set(GROUPS)
    assert g[GROUPS[1]]["reward_mean"] == 1.0 and g[GROUPS[1]]["reward_std"] == 0.0  # real CartPole pays 1
    # The SE's outputs on the real pairs come from the SE, one per real test transition.
    assert g[GROUPS[2]]["transitions"] == g[GROUPS[1]]["transitions"]
    assert g[GROUPS[0]]["transitions"] <= 2 * 150
    assert json.loads((tmp_path / "h.json").read_text())["groups"] == g
    assert (tmp_path / "h.png").stat().st_size > 0


@pytest.mark.parametrize("argv, needle", [
    (["experiment", "transfer", "--ses", "/no/such/dir", "--out", "{tmp}/r"], "is not a directory"),
    (["experiment", "transfer", "--ses", "{set}", "--out", "{tmp}/r", "--agents", "nope"], "unknown agent"),
    (["experiment", "train-ses", "--out", "{tmp}/s", "--hparams", "sometimes"], "--hparams"),
    (["experiment", "train-ses", "--out", "{tmp}/s", "--env", "Nope-v0"], "Nope-v0"),
    (["experiment", "histograms", "--proxy", "{tmp}/missing.safetensors"], "missing.safetensors"),
    (["plot", "curves", "/no/such/run"], "neither a run folder"),
    (["experiment", "refine-ses", "--ses", "/no/such/dir", "--out", "{tmp}/s"], "is not a directory"),
    (["experiment", "refine-ses", "--ses", "{set}", "--out", "{tmp}/s", "--include-unsolved",
      "--sigma", "-1"], "sigma"),
    (["experiment", "refine-ses", "--ses", "{set}", "--out", "{tmp}/s", "--include-unsolved",
      "--inner-agents", "nope"], "nope"),
])
def test_cli_errors(argv, needle, se_set, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path, set=se_set) for a in argv]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert needle in err.strip().splitlines()[-1]
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()
