"""The command line's persistent compilation cache: our default where the user set nothing, JAX's
own variables otherwise (checked in fresh processes: JAX reads them when first imported)."""

import json
import os
import subprocess
import sys

PROBE = """
import json, sys
from synthenv import compilation_cache
compilation_cache.configure()
import jax, jax.numpy as jnp
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.jit(lambda x: jnp.sin(x) * 2)(jnp.ones(3)).block_until_ready()
print(json.dumps([jax.config.jax_compilation_cache_dir, jax.config.jax_compilation_cache_max_size]))
"""


def probe(tmp_path, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**base, "XDG_CACHE_HOME": str(tmp_path), **env},
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def test_programs_are_cached_in_the_user_cache_by_default(tmp_path):
    where, cap = probe(tmp_path)
    assert where == str(tmp_path / "synthenv" / "jax") and cap == 2 * 1024**3
    assert any(p.name.endswith("-cache") for p in (tmp_path / "synthenv" / "jax").iterdir())


def test_jax_variables_move_the_cache_or_turn_it_off(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    assert probe(tmp_path, JAX_COMPILATION_CACHE_DIR=str(elsewhere), JAX_COMPILATION_CACHE_MAX_SIZE="-1") == [
        str(elsewhere), -1]
    assert any(p.name.endswith("-cache") for p in elsewhere.iterdir())
    assert probe(tmp_path / "off", JAX_COMPILATION_CACHE_DIR="")[0] == ""
    assert not (tmp_path / "off").exists()
