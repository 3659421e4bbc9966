"""Model files: safetensors tensors plus one JSON metadata entry (never pickles).

Metadata (``synthenv`` key, JSON): ``format_version``, ``kind``, ``env_id``, ``observation_space``,
``action_space``, ``architecture``, ``training_config``, ``generation``, ``score``. Loading checks
it and raises :class:`UsageError` with one line on a corrupt file, another kind, a newer format or
an env mismatch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from synthenv.errors import UsageError
from synthenv.io.atomic import write_atomic

FORMAT_VERSION = 1
META_KEY = "synthenv"


def save(path: str | Path, tensors: dict[str, np.ndarray], metadata: dict[str, Any]) -> None:
    from safetensors.numpy import save_file

    meta = {"format_version": FORMAT_VERSION, **metadata}
    arrays = {k: np.ascontiguousarray(np.asarray(v)) for k, v in tensors.items()}
    write_atomic(path, lambda tmp: save_file(arrays, tmp, metadata={META_KEY: json.dumps(meta, sort_keys=True)}))


def read_metadata(path: str | Path) -> dict[str, Any]:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"model file {path} does not exist")
    try:
        with safe_open(str(path), "np") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except Exception as e:  # safetensors raises several types on a damaged header
        raise UsageError(f"{path} is not a valid safetensors file ({type(e).__name__}: {str(e)[:80]})") from None
    if raw is None:
        raise UsageError(f"{path} is a safetensors file but not a synthenv model file (no '{META_KEY}' metadata)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise UsageError(f"{path} has corrupt synthenv metadata (not JSON)") from None
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise UsageError(f"{path} has no format_version in its metadata")
    if version > FORMAT_VERSION:
        raise UsageError(f"{path} has format version {version}, newer than this synthenv reads "
                         f"({FORMAT_VERSION}); upgrade synthenv")
    return meta


def load(path: str | Path, kind: str | None = None, env_id: str | None = None):
    """Returns ``(tensors, metadata)`` after checking kind and env id."""
    from safetensors.numpy import load_file

    meta = read_metadata(path)
    if kind is not None and meta.get("kind") != kind:
        raise UsageError(f"{path} holds a {meta.get('kind')!r}, not a {kind!r}")
    if env_id is not None and meta.get("env_id") != env_id:
        raise UsageError(f"{path} was learned for {meta.get('env_id')}, not {env_id}")
    try:
        tensors = load_file(str(path))
    except Exception as e:
        raise UsageError(f"{path} is corrupt: cannot read its tensors ({type(e).__name__})") from None
    return tensors, meta
