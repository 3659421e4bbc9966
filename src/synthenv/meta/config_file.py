"""A partial train-se config as a JSON file (``train-se --config``, ``tune``'s ``best_config.json``).

The file holds a nested subset of ``TrainSEConfig.to_dict()``, e.g. ``{"es": {"sigma": 0.1},
"agent": {"gamma": 0.99}}``; a run's whole ``config.json`` is one too. :func:`read_config_file`
checks every key and value type (one-line ``UsageError`` naming the key); :func:`merge` lays options
over it, and the result goes to ``make_config`` as keyword arguments, so the task defaults, the preset
and validation apply as for options on the command line.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import fields
from pathlib import Path

from synthenv.errors import UsageError
from synthenv.meta.config import TrainSEConfig

SECTIONS = ("es", "se", "bandit", "agent")
"""The nested dataclass sections of a config; every other key is a top-level field."""


def _hints(cls) -> dict:
    return {f.name: typing.get_type_hints(cls)[f.name] for f in fields(cls)}


def _accepts(hint, value) -> bool:
    """Whether the JSON ``value`` fits the field type ``hint`` (ints count as floats; lists as tuples)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for t in options:
        if value is None and t is type(None):
            return True
        if typing.get_origin(t) is tuple:
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return True
        elif t in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
            if t is float or isinstance(value, int):
                return True
        elif t in (bool, str) and isinstance(value, t):
            return True
    return False


def check_partial(d, source: str) -> dict:
    """``d`` if it is a valid partial config, else a ``UsageError`` naming ``source`` and the key."""
    if not isinstance(d, dict):
        raise UsageError(f"{source}: expected a JSON object of config keys, got {type(d).__name__}")
    top = _hints(TrainSEConfig)
    for key, value in d.items():
        if key not in top:
            raise UsageError(f"{source}: unknown key {key!r}")
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise UsageError(f"{source}: {key} must be an object of {key} settings")
            section = _hints(top[key])
            for sub, v in value.items():
                if sub not in section:
                    raise UsageError(f"{source}: unknown key '{key}.{sub}'")
                if not _accepts(section[sub], v):
                    raise UsageError(f"{source}: {key}.{sub} has the wrong type ({v!r})")
        elif not _accepts(top[key], value):
            raise UsageError(f"{source}: {key} has the wrong type ({value!r})")
    return d


def read_config_file(path: str | Path) -> dict:
    """The checked partial config in the JSON file ``path``."""
    try:
        d = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"config file {path} is not valid JSON ({e})") from None
    return check_partial(d, str(path))


def merge(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``; the sections merge key by key."""
    out = {**base, **over}
    for s in SECTIONS:
        if s in base or s in over:
            out[s] = {**base.get(s, {}), **over.get(s, {})}
    return out
