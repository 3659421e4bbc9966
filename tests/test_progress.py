"""The progress lines of a run: which algorithm decided a confirmation, and when an attempt restarts."""

from __future__ import annotations

from synthenv.meta.config import make_config
from synthenv.progress import GenerationProgress

ROW = dict(generations=10, total_wall_seconds=1.0, fitness_mean=1.0, fitness_max=2.0, score_unperturbed=480.0,
           real_env_steps=5, wall_seconds=1.0, solved=False, inner_agent="ddqn", unperturbed_by_agent={"ddqn": 480.0})


def test_names_the_deciding_algorithm_and_each_restart(capsys):
    with GenerationProgress(make_config(env="CartPole-v1")) as progress:
        progress.event("compiled", {"compile_seconds": 1.0, "generations_done": 0})
        progress.event("generation", dict(ROW, generation=0, generations_done=1, attempt=0, score_confirmed=300.0,
                                          confirmed_by_agent={"ddqn": 480.0, "ppo": 300.0}))
        progress.event("generation", dict(ROW, generation=1, generations_done=2, attempt=0, score_confirmed=470.0,
                                          confirmed_by_agent={"ddqn": 470.0}))
        progress.event("generation", dict(ROW, generation=2, generations_done=3, attempt=1, restarted=True))
        progress.event("generation", dict(ROW, generation=3, generations_done=4, attempt=1))
    err = " ".join(capsys.readouterr().err.split())
    assert "learning a synthetic bandit for CartPole-v1" in err
    assert "confirmed 300.00 (ppo)" in err  # DDQN alone confirmed generation 1: no name
    assert "confirmed 470.00" in err and "confirmed 470.00 (" not in err
    assert err.count("restart 1 at generation 2: attempt 0 did not solve") == 1


def test_a_resumed_run_announces_the_restart_it_resumes_at(capsys):
    """A run resumed right where a new attempt begins shows that restart, though it never showed the
    attempt before it."""
    with GenerationProgress(make_config(env="CartPole-v1")) as progress:
        progress.event("compiled", {"compile_seconds": 1.0, "generations_done": 5})
        progress.event("generation", dict(ROW, generation=5, generations_done=6, attempt=2, restarted=True))
    err = " ".join(capsys.readouterr().err.split())
    assert "restart 2 at generation 5: attempt 1 did not solve" in err
