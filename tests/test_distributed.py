"""train-se on several processes (127.0.0.1, gloo): 2 processes x 1 device learn the same bytes as 1
process x 2 devices; a killed process stops the other with one line, and --resume continues the run
without process 1 ever seeing the run directory. Bad cluster options end as one line, exit 2."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synthenv.cli import main

TINY = {"es": {"population": 4}, "se": {"hidden": 8}, "agent": {"proxy_max_steps": 150, "proxy_min_steps": 0},
        "unperturbed_agents": 2, "confirm_agents": 0, "vary_hparams": False, "stop_when_solved": False,
        "generations": 8, "seed": 3}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Compiling dominates these runs: without LLVM's optimizations it takes half the time (every run here
# compiles alike, so the comparisons hold; the default flags are compared by hand, docs/distributed.md).
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def launch(args: list[str], cwd: Path, cache: Path) -> subprocess.Popen:
    """``synthenv train-se ARGS`` in its own process group, choosing its own device count (not
    conftest's). Process 0 writes and reads a persistent compile cache (the resumed run's process 0
    loads what the first one compiled; other processes always compile)."""
    env = {**os.environ, "XLA_FLAGS": FAST_COMPILE, "TMPDIR": str(cache.parent),  # runtime logs
           "JAX_COMPILATION_CACHE_DIR": str(cache),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "synthenv.cli", "train-se", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(p: subprocess.Popen, timeout: float = 180) -> tuple[int, str]:
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        raise
    return p.returncode, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("synthenv: error:")]


def metrics(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "wall_seconds"} for row in rows]


def pair(out: str, port: int, tmp: Path, *extra: str) -> list[subprocess.Popen]:
    """Processes 0 and 1 of a run: process 0 in ``tmp/p0``, process 1 in the empty ``tmp/p1``, both
    with the same relative ``--out``."""
    cluster = ["--devices", "1", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
    return [launch(["--out", out, *cluster, "--process-id", str(i), *extra], tmp / f"p{i}", tmp / "cache")
            for i in range(2)]


def test_two_processes_learn_the_bytes_of_two_devices_survive_a_kill_and_resume(tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    reference = launch(["--out", "ref", "--config", str(config), "--devices", "2"], tmp_path, tmp_path / "cache")
    first = pair("run", free_port(), tmp_path, "--config", str(config), "--heartbeat-timeout", "10")
    run = tmp_path / "p0" / "run"

    # Kill process 0 (and the coordination service it hosts) once it has written a generation.
    deadline = time.monotonic() + 180
    while not ((run / "metrics.jsonl").exists() and (run / "metrics.jsonl").read_text()):
        assert first[0].poll() is None and first[1].poll() is None, finish(first[0]) + finish(first[1])
        assert time.monotonic() < deadline, "no generation within 180 s"
        time.sleep(0.05)
    os.killpg(first[0].pid, signal.SIGKILL)
    killed = time.monotonic()
    code, err = finish(first[1], timeout=60)
    assert time.monotonic() - killed < 30, "the survivor took too long to stop"
    assert code == 1, err
    assert "Traceback" not in err and len(error_lines(err)) == 1, err
    assert "lost contact with the other processes" in error_lines(err)[0] and "--resume" in error_lines(err)[0]
    first[0].wait()
    done = len(metrics(run))
    assert 1 <= done < TINY["generations"], done
    assert not (tmp_path / "p1" / "run").exists()

    code, err = finish(reference)
    assert code == 0, err
    ref = tmp_path / "ref"

    # Resume on both processes (process 1 has no run directory: process 0 sends it config and state).
    resumed = pair("run", free_port(), tmp_path, "--resume")
    (code0, err0), (code1, err1) = finish(resumed[0]), finish(resumed[1])
    assert (code0, code1) == (0, 0), (err0, err1)
    assert "process 1 of 2 joined" in err1 and "generation" not in err1 and not error_lines(err1)
    assert "compiled the generation step" in err0
    assert not (tmp_path / "p1" / "run").exists()

    assert (run / "se.safetensors").read_bytes() == (ref / "se.safetensors").read_bytes()
    assert metrics(run) == metrics(ref) and len(metrics(ref)) == TINY["generations"]
    assert json.loads((run / "config.json").read_text()) == json.loads((ref / "config.json").read_text())
    assert not list(run.glob(".*.tmp"))


@pytest.fixture(scope="module", autouse=True)
def unreachable(tmp_path_factory):
    """Process 1 of a run whose coordinator nobody serves, started with the module so that its wait
    overlaps the other tests."""
    tmp = tmp_path_factory.mktemp("unreachable")
    p = launch(["--out", "run", "--coordinator", f"127.0.0.1:{free_port()}", "--num-processes", "2",
                "--process-id", "1", "--connect-timeout", "2"], tmp, tmp / "cache")
    yield p, tmp
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)


def test_unreachable_coordinator_is_one_line_and_exit_2(unreachable):
    p, tmp_path = unreachable
    code, err = finish(p, timeout=60)
    assert code == 2, err
    assert "Traceback" not in err and error_lines(err) == [err.strip()], err
    assert "not every process connected" in err and "within 2 s" in err
    log = Path(err.rsplit("log: ", 1)[1].rstrip(")\n"))  # JAX's runtime log, kept
    assert log.parent == tmp_path and "RegisterTask" in log.read_text()
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, needles", [
    (["--coordinator", "127.0.0.1:5000", "--num-processes", "2", "--process-id", "2"], ("--process-id", "below", "2")),
    (["--coordinator", "127.0.0.1:5000", "--num-processes", "2", "--process-id", "-1"], ("--process-id", ">= 0")),
    (["--coordinator", "127.0.0.1:5000", "--num-processes", "0", "--process-id", "0"], ("--num-processes", ">= 1")),
    (["--coordinator", "127.0.0.1:5000", "--num-processes", "2"], ("needs --num-processes and --process-id",)),
    (["--num-processes", "2", "--process-id", "0"], ("--num-processes needs --coordinator",)),
    (["--heartbeat-timeout", "30"], ("--heartbeat-timeout needs --coordinator",)),
    (["--coordinator", "localhost", "--num-processes", "2", "--process-id", "0"], ("HOST:PORT", "'localhost'")),
    (["--coordinator", "auto", "--connect-timeout", "0"], ("--connect-timeout", ">= 1")),
])
def test_bad_cluster_options_are_one_line(tmp_path, capsys, argv, needles):
    out = tmp_path / "run"
    assert main(["train-se", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert error_lines(err) == [err.strip()], err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not out.exists()
