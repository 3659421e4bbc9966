"""Test setup: two virtual CPU devices (set before jax is first imported), and a compilation cache
for this run only: many tests compile the same programs (the same tiny configs) through fresh
closures, which JAX's in-memory cache cannot reuse; the persistent cache keys on the program itself.
Each run starts with an empty cache, so CI times stay those of a clean machine. Stable-Baselines3
makes a log folder per ``learn`` call even when it logs nothing; they go to a folder of this run."""

import atexit
import os
import shutil
import tempfile

from synthenv import host_devices

host_devices.configure(2)
_CACHE = tempfile.mkdtemp(prefix="synthenv-test-jit-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE  # (read by JAX here and in the CLI's child processes)

import jax  # noqa: E402

jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

_SB3_LOGS = tempfile.mkdtemp(prefix="synthenv-test-sb3-logs-")
atexit.register(shutil.rmtree, _SB3_LOGS, ignore_errors=True)
os.environ["SB3_LOGDIR"] = _SB3_LOGS
