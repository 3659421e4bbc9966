"""Seconds per generation of one train-se run on 2 processes x 1 device against 1 process x 2 devices
(the same config, the same machine), and whether both learn the same bytes.

Each layout runs ``synthenv train-se`` in fresh processes (on 127.0.0.1 for the two-process layout) and
reads its ``metrics.jsonl``. Prints one JSON line per layout (compile seconds, seconds per generation:
every generation, the median and the median after generation 0; wall seconds of the command), then
one line comparing them (median ratio, identical ``se.safetensors``, identical metrics apart from wall
time). Usage:

    python benchmarks/distributed.py --generations 4
    python benchmarks/distributed.py --generations 4 --args --population 8 --no-mirrored

``--args`` passes further options to every ``train-se`` (default: the default config, no stop when
solved).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_se(out: Path, args: list[str], processes: int) -> dict:
    """One layout: ``processes`` processes with ``2 // processes`` devices each."""
    devices = ["--devices", str(2 // processes)]
    cluster = ([] if processes == 1 else
               ["--coordinator", f"127.0.0.1:{free_port()}", "--num-processes", str(processes)])
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    t = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "synthenv.cli", "train-se", "--out", str(out), *args, *devices,
                               *cluster, *(["--process-id", str(i)] if cluster else [])],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for i in range(processes)]
    errs = [p.communicate()[1] for p in procs]
    wall = time.perf_counter() - t
    if any(p.returncode for p in procs):
        raise SystemExit(f"train-se failed ({processes} processes):\n" + "\n".join(errs))
    compiled = re.search(r"compiled the generation step in ([\d.]+) s", errs[0])
    per_gen = [json.loads(line)["wall_seconds"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"layout": f"{processes} process{'es' if processes > 1 else ''} x {2 // processes} device"
                      f"{'s' if processes == 1 else ''}",
            "compile_seconds": float(compiled.group(1)) if compiled else None,
            "seconds_per_generation": [round(s, 2) for s in per_gen],
            "median_seconds_per_generation": round(statistics.median(per_gen), 3),
            "median_after_generation_0": round(statistics.median(per_gen[1:]), 3) if len(per_gen) > 1 else None,
            "command_wall_seconds": round(wall, 1)}


def metrics(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "wall_seconds"} for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--args", nargs=argparse.REMAINDER, default=[], help="further train-se options")
    a = parser.parse_args()
    args = ["--generations", str(a.generations), "--stop-when-solved", "False", *a.args]
    with tempfile.TemporaryDirectory() as tmp:
        one, two = Path(tmp) / "one", Path(tmp) / "two"
        results = [train_se(one, args, 1), train_se(two, args, 2)]
        for r in results:
            print(json.dumps(r))
        print(json.dumps({
            "ratio_2x1_over_1x2": round(results[1]["median_seconds_per_generation"]
                                        / results[0]["median_seconds_per_generation"], 3),
            "same_se_bytes": (one / "se.safetensors").read_bytes() == (two / "se.safetensors").read_bytes(),
            "same_metrics_but_wall_time": metrics(one) == metrics(two)}))


if __name__ == "__main__":
    main()
