"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename over."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable


def write_atomic(path: str | Path, write: Callable[[str], None]) -> None:
    """``write(tmp_path)`` fills a temporary file, which then atomically replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files a killed writer left in ``folder`` (a SIGKILL skips the clean-up
    above); the files they were meant to replace are intact. Returns what was removed."""
    stale = [p for p in Path(folder).glob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def write_text_atomic(path: str | Path, text: str) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)

    write_atomic(path, write)


def write_json_atomic(path: str | Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
