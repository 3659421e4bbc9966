"""The CLI in-process: one-line errors with exit code 2 on bad input, and a tiny real train/evaluate run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import synthenv
from synthenv.cli import main
from synthenv.errors import UsageError

METRIC_FIELDS = ("generation", "fitness_mean", "fitness_max", "score_unperturbed", "real_env_steps", "wall_seconds")


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (to check that nothing was touched)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def usage_error(capsys, argv: list[str], *needles: str) -> str:
    """Run the CLI, expect exit code 2 and a one-line ``synthenv: error:`` naming every needle."""
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "no error message"
    error_lines = [line for line in lines if line.startswith("synthenv: error:")]
    assert len(error_lines) == 1 and lines[-1] == error_lines[0], err
    for needle in needles:
        assert needle in error_lines[0], (needle, err)
    return err


def assert_absent_or_empty(folder: Path) -> None:
    assert not folder.exists() or not any(folder.iterdir()), sorted(folder.iterdir())


# ---------------------------------------------------------------------------------------------- --help

def help_lines(capsys, monkeypatch, argv: list[str]) -> dict[str, str]:
    """``synthenv ARGV --help`` (exit code 0): each option's entry (its name, type and help, joined over
    wrapped lines) by option name."""
    monkeypatch.setenv("COLUMNS", "200")  # one line per entry where possible
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "{None" not in out and "(default: None)" not in out, out
    entries: dict[str, str] = {}
    name = None
    for line in out.splitlines():
        text = line.strip("│ ").strip()
        if text.startswith("--"):
            name = text.split()[0].rstrip(",")
            entries[name] = text
        elif name is not None and text and not text.startswith(("╰", "╭")):
            entries[name] += " " + text
    return entries


def test_train_se_help_shows_types_and_real_defaults(capsys, monkeypatch):
    h = help_lines(capsys, monkeypatch, ["train-se"])
    assert h["--seed"].startswith("--seed INT") and "(default: 0)" in h["--seed"]
    assert "INT" in h["--generations"] and "(default: 200; CartPole-v1: 300" in h["--generations"]
    assert "FLOAT" in h["--sigma"] and "(default: 0.05" in h["--sigma"] and "Acrobot" not in h["--sigma"]
    assert "(default: 1.0" in h["--lr"] and "Acrobot" not in h["--lr"]  # Acrobot's bandit takes CartPole's step
    assert "(default: se; CartPole-v1: bandit; Acrobot-v1: bandit" in h["--proxy-kind"]
    assert "(default: 16)" in h["--population"] and "(default: 128; Acrobot-v1: 64" in h["--confirm-agents"]
    assert "(default: 83; Acrobot-v1: 167)" in h["--se-hidden"]
    assert "(default: CartPole-v0)" in h["--env"] and "(default: small)" in h["--preset"]
    assert "(default: ddqn)" in h["--inner-agents"] and "(default: cycle)" in h["--inner-mix"]
    assert "(default: 197.0; CartPole-v1: 475.0; Acrobot-v1: -90.0" in h["--target-score"]
    assert "(default: 1000; CartPole-v1: 2000; Acrobot-v1: 2000; Cliff-v0: 2000" in h["--proxy-max-steps"]
    assert "(default: 1000; CartPole-v1: 2000; Acrobot-v1: 2000" in h["--proxy-min-steps"]
    assert "(default: 2;" in h["--agents-per-member"]
    assert "(default: layers,hidden)" in h["--shape-strata"]
    for flag in ("--mirrored", "--vary-hparams", "--stop-when-solved"):
        assert h[flag].startswith(f"{flag}, --no-{flag[2:]}") and "(default: True)" in h[flag], h[flag]


def test_evaluate_help_shows_types_and_real_defaults(capsys, monkeypatch):
    h = help_lines(capsys, monkeypatch, ["evaluate"])
    assert h["--proxy"].startswith("--proxy PATH") and h["--env"].startswith("--env STR")
    assert h["--seed"].startswith("--seed INT") and "(default: 0)" in h["--seed"]
    assert "(default: 16)" in h["--agents"] and "(default: ddqn)" in h["--agent"]
    assert h["--devices"].startswith("--devices INT") and "(default: one per core)" in h["--devices"]
    assert h["--json"].startswith("--json PATH") and "(default: on the real task small" in h["--preset"]
    assert h["--vary-hparams"].startswith("--vary-hparams, --no-vary-hparams")


@pytest.mark.parametrize("argv", [["experiment", "train-ses"], ["experiment", "refine-ses"],
                                  ["experiment", "transfer"], ["experiment", "histograms"], ["plot", "curves"],
                                  ["train-rn"], ["experiment", "rn-curves"]])
def test_other_helps_show_no_none(capsys, monkeypatch, argv):
    h = help_lines(capsys, monkeypatch, argv)
    assert "(default: one per core)" in h.get("--devices", "(default: one per core)")


def test_optional_bools_are_flags_that_stay_unset_when_absent():
    from synthenv.cli import _parse

    a = _parse(["train-se", "--out", "r"])
    assert (a.mirrored, a.vary_hparams, a.stop_when_solved, a.seed, a.sigma) == (None,) * 5  # not given
    a = _parse(["train-se", "--out", "r", "--no-mirrored", "--vary-hparams", "--stop-when-solved", "False"])
    assert (a.mirrored, a.vary_hparams, a.stop_when_solved) == (False, True, False)
    a = _parse(["train-se", "--out", "r", "--stop-when-solved=True", "--mirrored", "false"])
    assert (a.stop_when_solved, a.mirrored, a.vary_hparams) == (True, False, None)


# ---------------------------------------------------------------------------------------------- train-se errors

def test_unknown_env(tmp_path, capsys):
    out = tmp_path / "r"
    err = usage_error(capsys, ["train-se", "--out", str(out), "--env", "Nope-v0"], "'Nope-v0'")
    assert len(err.strip().splitlines()) == 1, err
    assert "CartPole-v0" in err  # the known ids are listed
    assert_absent_or_empty(out)


def test_unknown_preset(tmp_path, capsys):
    out = tmp_path / "r"
    usage_error(capsys, ["train-se", "--out", str(out), "--preset", "huge"], "'huge'", "preset")
    assert_absent_or_empty(out)


@pytest.mark.parametrize("argv, needles", [
    (["--population", "1"], ("population", ">= 2", "1")),
    (["--sigma", "0"], ("sigma", "> 0")),
    (["--sigma", "-1"], ("sigma",)),
    (["--lr", "0"], ("lr",)),
    (["--strategy", "cma"], ("'cma'",)),
    (["--score-transform", "8"], ("score transform", "8")),
    (["--strategy", "open_es", "--population", "3"], ("open_es", "even")),
    (["--generations", "0"], ("generations",)),
    (["--se-hidden", "0"], ("hidden",)),
    (["--se-activation", "swish"], ("'swish'",)),
    (["--confirm-agents", "-1"], ("confirm_agents", ">= 0")),
    (["--target-score", "-600", "--env", "Acrobot-v1"], ("target_score", "-500", "Acrobot-v1")),
    (["--target-score", "nan"], ("target_score", "nan")),
    (["--inner-agents", "ddqn,ppo", "--inner-mix", "alternate"], ("inner_mix", "'alternate'")),
    (["--inner-agents", "ddqn,ppo,ddqn"], ("inner_agents", "twice")),
    (["--protocol", "nature"], ("protocol", "'nature'")),
    (["--proxy-kind", "rn"], ("proxy_kind", "'rn'", "bandit")),
    (["--common-draws", "all"], ("common_draws", "'all'")),
    (["--shape-strata", "layers,depth"], ("shape_strata", "'depth'", "hidden")),
    (["--common-draws", "population"], ("common_draws 'population'", "shape_strata")),
    (["--proxy-max-steps", "0"], ("proxy_max_steps",)),
    (["--proxy-min-steps", "-1"], ("proxy_min_steps",)),
    (["--restart-after", "-1"], ("restart_after", ">= 0")),
    (["--env", "CartPole-v1", "--fitness-horizon", "500"], ("fitness_horizon", "499")),
    (["--fitness-horizon", "100", "--fitness-target", "90", "--confirm-agents", "0"],
     ("fitness_horizon", "confirm_agents")),
    (["--fitness-target", "100"], ("fitness_target", "fitness_horizon")),
    (["--fitness-horizon", "100"], ("fitness_horizon", "fitness_target")),
])
def test_invalid_values(tmp_path, capsys, argv, needles):
    out = tmp_path / "r"
    usage_error(capsys, ["train-se", "--out", str(out), *argv], *needles)
    assert_absent_or_empty(out)


def test_paper_protocol_is_one_option_away():
    """``--protocol paper`` starts from the paper's tuned NES and DDQN with fixed HPs and its single
    solved test; given options still override it."""
    from synthenv.meta.config import make_config

    for env, sigma, lr, preset in (("CartPole-v0", 0.0124, 0.148, "cartpole"), ("Acrobot-v1", 0.0114, 0.727, "acrobot")):
        c = make_config(env=env, protocol="paper")
        assert (c.es.strategy, c.es.sigma, c.es.lr, c.es.score_transform, c.es.mirrored) == ("nes", sigma, lr, 3, True)
        assert (c.preset, c.vary_hparams, c.confirm_agents, c.agents_per_member, c.agent.proxy_min_steps) == (
            preset, False, 0, 1, 0)
    assert make_config(protocol="paper", es={"sigma": 0.2}, vary_hparams=True).es.sigma == 0.2
    assert make_config(protocol="synthenv") == make_config()


def test_the_difference_update_default_gives_way_to_other_strategies():
    """CartPole's default ``mirrored_update="difference"`` needs mirrored NES; choosing another strategy
    or no mirroring drops it (nothing to weigh pairs with), asking for it explicitly is an error."""
    from synthenv.errors import UsageError
    from synthenv.meta.config import make_config

    assert make_config().es.mirrored_update == "difference"
    assert make_config(es={"strategy": "open_es"}).es.mirrored_update == "best_sign"
    assert make_config(es={"mirrored": False}).es.mirrored_update == "best_sign"
    with pytest.raises(UsageError, match="mirrored_update"):
        make_config(es={"strategy": "snes", "mirrored_update": "difference"})


def test_restarts_give_way_to_an_initial_se(tmp_path):
    """A run from ``--init-se`` does not take CartPole's restart default (a restart starts from a
    random SE); asking for both is an error."""
    from synthenv.errors import UsageError
    from synthenv.meta.config import make_config

    se = make_config()
    assert se.restart_after > 0 and make_config(protocol="paper").restart_after == 0
    path = Path("models/cartpole-v0-invariant.safetensors")
    assert make_config(init_se=str(path)).restart_after == 0
    with pytest.raises(UsageError, match="restart_after"):
        make_config(init_se=str(path), restart_after=10)


def test_inner_budget_options_reach_the_config(tmp_path):
    from synthenv.cli import _parse, _train_se_config

    c = _train_se_config(_parse(["train-se", "--out", str(tmp_path / "r"), "--proxy-max-steps", "1500",
                                 "--proxy-min-steps", "0"]))
    assert (c.agent.proxy_max_steps, c.agent.proxy_min_steps) == (1500, 0)
    c = _train_se_config(_parse(["train-se", "--out", str(tmp_path / "r")]))
    assert (c.agent.proxy_max_steps, c.agent.proxy_min_steps, c.agents_per_member) == (1000, 1000, 2)


def test_protocol_does_not_resume(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "config.json").write_text("{}")
    before = snapshot(out)
    usage_error(capsys, ["train-se", "--out", str(out), "--resume", "--protocol", "paper"], "--protocol")
    assert snapshot(out) == before


@pytest.mark.parametrize("out_exists", [False, True])
def test_resume_with_nothing_to_resume(tmp_path, capsys, out_exists):
    out = tmp_path / "r"
    if out_exists:
        out.mkdir()
    usage_error(capsys, ["train-se", "--out", str(out), "--resume"], "nothing to resume")
    assert_absent_or_empty(out)


@pytest.mark.parametrize("devices", ["3", "-1"])  # conftest gives this process 2 devices
def test_bad_device_count(tmp_path, capsys, devices):
    out = tmp_path / "r"
    usage_error(capsys, ["train-se", "--out", str(out), "--population", "2", "--se-hidden", "8",
                         "--devices", devices], "devices")
    assert_absent_or_empty(out)


def test_out_holding_another_run_is_not_touched(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "config.json").write_text("{}\n")
    (out / "metrics.jsonl").write_text('{"generation": 0}\n')
    before = snapshot(out)
    usage_error(capsys, ["train-se", "--out", str(out)], str(out), "already holds a run", "--resume")
    assert snapshot(out) == before
    # Resuming it fails too: its config is not a synthenv run config.
    usage_error(capsys, ["train-se", "--out", str(out), "--resume"], "not a valid synthenv run config")
    assert snapshot(out) == before


def test_out_not_empty(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    before = snapshot(out)
    usage_error(capsys, ["train-se", "--out", str(out)], "not empty")
    assert snapshot(out) == before


def test_debug_raises_the_usage_error(tmp_path, capsys):
    with pytest.raises(UsageError, match="Nope-v0"):
        main(["train-se", "--out", str(tmp_path / "r"), "--env", "Nope-v0", "--debug"])
    with pytest.raises(UsageError, match="unknown agent"):
        main(["evaluate", "--env", "CartPole-v0", "--agent", "nope", "--debug"])


# ---------------------------------------------------------------------------------------------- evaluate errors

def test_evaluate_unknown_agent(capsys):
    usage_error(capsys, ["evaluate", "--env", "CartPole-v0", "--agent", "nope"], "'nope'", "ddqn")


def test_evaluate_needs_proxy_or_env(capsys):
    usage_error(capsys, ["evaluate"], "--proxy", "--env")


def test_evaluate_unknown_env(capsys):
    usage_error(capsys, ["evaluate", "--env", "Nope-v0"], "'Nope-v0'")


def test_evaluate_bad_counts(capsys):
    usage_error(capsys, ["evaluate", "--env", "CartPole-v0", "--agents", "0"], "--agents")
    usage_error(capsys, ["evaluate", "--env", "CartPole-v0", "--episodes", "0"], "--episodes")
    usage_error(capsys, ["evaluate", "--env", "CartPole-v0", "--steps", "0"], "--steps")


def test_evaluate_corrupt_or_missing_proxy(tmp_path, capsys):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(np.random.default_rng(0).bytes(1000))
    json_out = tmp_path / "j.json"
    usage_error(capsys, ["evaluate", "--proxy", str(junk), "--json", str(json_out)], str(junk), "not a valid")
    assert not json_out.exists()
    usage_error(capsys, ["evaluate", "--proxy", str(tmp_path / "none.safetensors")], "does not exist")


# ---------------------------------------------------------------------------------------------- a real tiny run

def test_train_then_evaluate_end_to_end(tmp_path, capsys):
    run = tmp_path / "R"
    rc = main(["train-se", "--out", str(run), "--generations", "2", "--population", "2", "--se-hidden", "8",
               "--vary-hparams", "False", "--stop-when-solved", "False", "--seed", "3"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "Traceback" not in err and "error" not in err

    assert {"config.json", "metrics.jsonl", "se.safetensors", "state.safetensors"} <= set(snapshot(run))
    assert not list(run.glob("*.tmp")) and not list(run.glob(".*.tmp"))
    config = json.loads((run / "config.json").read_text())
    assert config["env"] == "CartPole-v0" and config["generations"] == 2 and config["seed"] == 3
    assert config["es"]["population"] == 2 and config["se"]["hidden"] == 8 and config["vary_hparams"] is False

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for i, row in enumerate(rows):
        for field in METRIC_FIELDS:
            assert field in row, field
        assert row["generation"] == i
        assert row["fitness_max"] >= row["fitness_mean"]
        assert 0.0 <= row["score_unperturbed"] <= 200.0
        assert row["wall_seconds"] > 0
    assert 0 < rows[0]["real_env_steps"] < rows[1]["real_env_steps"]  # cumulative

    se = synthenv.load(run / "se.safetensors", env_id="CartPole-v0")
    assert se.env.config.hidden == 8
    best = max(rows, key=lambda r: r["score_unperturbed"])
    assert se.metadata["score"] == pytest.approx(best["score_unperturbed"])
    assert se.metadata["training_config"] == config

    # The finished run refuses to be overwritten, and a resume with a changed setting is refused.
    before = snapshot(run)
    usage_error(capsys, ["train-se", "--out", str(run)], "already holds a run")
    usage_error(capsys, ["train-se", "--out", str(run), "--resume", "--seed", "4"], "seed=3")
    usage_error(capsys, ["train-se", "--out", str(run), "--resume", "--env", "Acrobot-v1"], "Acrobot-v1")
    assert snapshot(run) == before

    # evaluate --proxy with the wrong env is refused; then a real evaluation.
    usage_error(capsys, ["evaluate", "--proxy", str(run / "se.safetensors"), "--env", "Acrobot-v1"],
                "CartPole-v0", "Acrobot-v1")
    j = tmp_path / "J.json"
    rc = main(["evaluate", "--proxy", str(run / "se.safetensors"), "--agents", "2", "--episodes", "2",
               "--json", str(j)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    result = json.loads(j.read_text())
    assert len(result["returns"]) == 4
    assert all(0.0 <= r <= 200.0 for r in result["returns"])
    assert result["mean_return"] == pytest.approx(np.mean(result["returns"]))
    assert len(result["train_steps"]) == 2 and all(s > 0 for s in result["train_steps"])
    assert len(result["train_episodes"]) == 2
    assert 0.0 <= result["solved_fraction"] <= 1.0
    assert result["env"] == "CartPole-v0" and result["proxy"] == str(run / "se.safetensors")
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
