"""``synthenv tune``: the objective (generations to solve, summed over seeds, with the penalty and the
pruning bound) and a study growing across calls, with scripted runs against hand computations; one tiny
real trial and its best config through ``train-se --config``; one-line errors for bad config files and
mismatched studies."""

from __future__ import annotations

import json
from types import SimpleNamespace

import optuna
import pytest

from synthenv.cli import main
from synthenv.experiments import tune as tune_mod
from synthenv.experiments.tune import PENALTY, SPACE, TuneSettings, open_study, run_cost, tune
from test_cli import help_lines, snapshot, usage_error

TINY = {"es": {"population": 2}, "se": {"hidden": 8}, "agent": {"proxy_max_steps": 100, "proxy_min_steps": 0},
        "unperturbed_agents": 2, "confirm_agents": 0}
"""A base config small enough that one generation is cheap (compiling it is most of the cost)."""


def trials_by_state(study_dir) -> dict[str, int]:
    study = optuna.load_study(study_name=tune_mod.STUDY_NAME, storage=f"sqlite:///{study_dir / 'study.db'}")
    states = [t.state.name for t in study.get_trials(deepcopy=False)]
    return {s: states.count(s) for s in set(states)}


def test_tune_help_shows_types_and_defaults(capsys, monkeypatch):
    h = help_lines(capsys, monkeypatch, ["tune"])
    assert h["--trials"].startswith("--trials INT") and "(required)" in h["--trials"]
    assert "(default: 3)" in h["--runs-per-trial"] and "(default: 50)" in h["--max-generations"]
    assert "(default: CartPole-v0)" in h["--env"] and "(default: none)" in h["--config"]


def test_run_cost():
    assert run_cost(7, True, 50) == 7
    assert run_cost(50, True, 50) == 50
    assert run_cost(50, False, 50) == PENALTY * 50 == 100


class ScriptedLearner:
    """Stands in for ``Learner``: run k (in construction order) solves after ``SCRIPT[k]`` generations
    (None: never); records each run's seed and generations."""

    SCRIPT: list = []
    made: list = []

    def __init__(self, config, n_devices=None):
        self.config, self.solve_at = config, self.SCRIPT[len(self.made)]
        self.made.append(self)
        self.advanced = 0

    def compile(self):
        return 0.0

    def initial_state(self):
        return SimpleNamespace(generations_done=0, solved=False)

    def finished(self, state):
        return state.generations_done >= self.config.generations or state.solved

    def advance(self, state):
        self.advanced += 1
        g = state.generations_done + 1
        new = SimpleNamespace(generations_done=g, solved=self.solve_at == g)
        return new, SimpleNamespace(to_json=lambda: {"generation": g - 1, "score_unperturbed": 0.0}), False


def test_objective_sums_generations_with_penalty_and_prunes_hopeless_trials(tmp_path, monkeypatch):
    # Cap 10: an unsolved run costs 20. Trial 0: seed 4 solves after 2 generations, seed 5 never, seed 6
    # after 1: 2 + 20 + 1.
    # Trial 1: seed 4 unsolved (20; with two runs to go, each at least 1, it can still reach 22 < 23); one
    # unsolved generation of seed 5 makes that run cost at least 2, so 20 + 2 + 1 = 23 >= 23: pruned.
    # Trial 2 solves after 1, 1 and 3 generations: 5, the new best.
    monkeypatch.setattr(ScriptedLearner, "SCRIPT", [2, None, 1, None, None, 1, 1, 3])
    monkeypatch.setattr(ScriptedLearner, "made", [])
    monkeypatch.setattr(tune_mod, "Learner", ScriptedLearner)
    settings = TuneSettings(max_generations=10, seed=4, base=TINY)
    events = []
    summary = tune(tmp_path / "s", 3, settings, on_event=lambda kind, d: events.append((kind, d)))

    made = ScriptedLearner.made
    assert [m.config.seed for m in made] == [4, 5, 6, 4, 5, 4, 5, 6]
    assert [m.advanced for m in made] == [2, 10, 1, 10, 1, 1, 1, 3]
    study = optuna.load_study(study_name=tune_mod.STUDY_NAME, storage=f"sqlite:///{tmp_path / 's' / 'study.db'}")
    t0, t1, t2 = study.get_trials()
    assert t0.state.name == "COMPLETE" and t0.value == 2 + 20 + 1
    assert t0.intermediate_values == {0: 2, 1: 22, 2: 23}
    assert t1.state.name == "PRUNED" and t1.intermediate_values == {0: 20, 1: 22}
    assert t2.state.name == "COMPLETE" and t2.value == 1 + 1 + 3
    assert [r["cost"] for r in t0.user_attrs["runs"]] == [2, 20, 1]
    assert summary["best_value"] == 5 and summary["best_trial"] == 2 and summary["finished"] == 3
    assert [k for k, _ in events].count("pruned") == 1

    # The searched parameters come from the paper's space and reach the config (gamma = 1 - one_minus_gamma).
    p = t2.params
    assert set(p) == set(SPACE) and 0.01 <= p["es.sigma"] <= 1 and 48 <= p["agent.hidden"] <= 192
    c = made[-1].config
    assert (c.es.strategy, c.es.sigma, c.es.lr, c.es.score_transform, c.es.mirrored) == (
        "nes", p["es.sigma"], p["es.lr"], p["es.score_transform"], p["es.mirrored"])
    assert c.agent.gamma == pytest.approx(1 - p["agent.one_minus_gamma"])
    assert (c.agent.hidden, c.agent.layers, c.agent.activation, c.agent.batch_size) == (
        p["agent.hidden"], p["agent.layers"], p["agent.activation"], p["agent.batch_size"])
    assert c.vary_hparams is False and c.stop_when_solved and c.generations == 10 and c.es.population == 2
    best = json.loads((tmp_path / "s" / "best_config.json").read_text())
    assert best["es"]["sigma"] == p["es.sigma"] and best["agent"]["gamma"] == c.agent.gamma
    assert best["es"]["population"] == 2 and best["env"] == "CartPole-v0"

    # More trials add to the study; a trial left running by a killed process neither counts nor blocks.
    monkeypatch.setattr(ScriptedLearner, "SCRIPT", [*ScriptedLearner.SCRIPT, 1, 1, 1])
    study.ask()
    assert tune(tmp_path / "s", 4, settings)["finished"] == 4 and len(made) == 11
    assert trials_by_state(tmp_path / "s") == {"COMPLETE": 3, "PRUNED": 1, "RUNNING": 1}
    assert study.get_trials()[-1].value == 3 and study.best_trial.number == 4
    assert tune(tmp_path / "s", 4, settings)["finished"] == 4 and len(made) == 11  # nothing to add


def test_tiny_study_and_its_best_config_trains(tmp_path, capsys):
    """A real (tiny) trial end to end, then train-se on the best config (the study's growth across
    calls is tested above, with scripted runs)."""
    base, study = tmp_path / "base.json", tmp_path / "study"
    base.write_text(json.dumps(TINY))
    assert main(["tune", "--study", str(study), "--runs-per-trial", "1", "--max-generations", "1",
                 "--config", str(base), "--trials", "1"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert trials_by_state(study) == {"COMPLETE": 1} and "best: trial 0" in out
    (trial,) = optuna.load_study(study_name=tune_mod.STUDY_NAME, storage=f"sqlite:///{study / 'study.db'}").trials
    (r,) = trial.user_attrs["runs"]
    assert trial.value == r["cost"] == (1 if r["solved"] else 2) and r["generations"] == 1 and r["seed"] == 0
    for name in ("history.png", "importances.png"):
        assert (study / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The best config trains with train-se --config; options on the command line override the file.
    best = json.loads((study / "best_config.json").read_text())
    assert best["es"]["sigma"] == trial.params["es.sigma"] and best["agent"]["hidden"] == trial.params["agent.hidden"]
    run = tmp_path / "run"
    assert main(["train-se", "--config", str(study / "best_config.json"), "--out", str(run), "--generations", "1",
                 "--sigma", "0.123"]) == 0, capsys.readouterr().err
    config = json.loads((run / "config.json").read_text())
    assert config["es"]["sigma"] == 0.123
    assert {k: config["es"][k] for k in best["es"] if k != "sigma"} == {k: v for k, v in best["es"].items()
                                                                         if k != "sigma"}
    assert {k: config["agent"][k] for k in best["agent"]} == best["agent"]
    assert config["se"]["hidden"] == 8 and config["vary_hparams"] is False and config["generations"] == 1
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize("content,needles", [
    ({"es": {"sigmaa": 0.1}}, ("FILE", "unknown key", "es.sigmaa")),
    ({"populaton": 3}, ("FILE", "unknown key", "populaton")),
    ({"agent": {"hidden": 8.5}}, ("FILE", "agent.hidden", "wrong type")),
    ([1, 2], ("FILE", "JSON object")),
    ({"es": {"sigma": -1.0}}, ("sigma", "> 0")),  # make_config validates the merged values
])
def test_train_se_config_file_errors(tmp_path, capsys, content, needles):
    f, out = tmp_path / "c.json", tmp_path / "out"
    f.write_text(json.dumps(content))
    usage_error(capsys, ["train-se", "--config", str(f), "--out", str(out)],
                *(str(f) if n == "FILE" else n for n in needles))
    assert not out.exists()


def test_train_se_config_file_missing_or_with_resume(tmp_path, capsys):
    usage_error(capsys, ["train-se", "--config", str(tmp_path / "none.json"), "--out", str(tmp_path / "o")],
                "does not exist")
    (tmp_path / "bad.json").write_text("{not json")
    usage_error(capsys, ["train-se", "--config", str(tmp_path / "bad.json"), "--out", str(tmp_path / "o")],
                "not valid JSON")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    usage_error(capsys, ["train-se", "--config", str(tmp_path / "bad.json"), "--out", str(run), "--resume"],
                "--config", "resume")


def test_tune_refuses_a_study_of_other_settings_and_bad_base_configs(tmp_path, capsys):
    study = tmp_path / "study"
    open_study(study, TuneSettings(env="Acrobot-v1"))
    before = snapshot(study)
    usage_error(capsys, ["tune", "--study", str(study), "--trials", "1"], "env='Acrobot-v1'", "CartPole-v0")
    usage_error(capsys, ["tune", "--study", str(study), "--trials", "1", "--env", "Acrobot-v1",
                         "--runs-per-trial", "2"], "runs_per_trial=3", "2")
    assert snapshot(study) == before

    base = tmp_path / "base.json"
    base.write_text(json.dumps({"es": {"sigma": 0.1}}))
    usage_error(capsys, ["tune", "--study", str(tmp_path / "s2"), "--trials", "1", "--config", str(base)],
                "es.sigma", "tune sets")
    usage_error(capsys, ["tune", "--study", str(tmp_path / "s2"), "--trials", "0"], "--trials", ">= 1")
    usage_error(capsys, ["tune", "--study", str(tmp_path / "s2"), "--trials", "1", "--max-generations", "0"],
                "--max-generations")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "study.db").write_text("not a database")
    usage_error(capsys, ["tune", "--study", str(junk), "--trials", "1"], "study.db", "not an Optuna study")
