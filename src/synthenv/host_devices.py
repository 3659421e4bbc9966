"""XLA host-device setup, applied before JAX is imported.

The population is split across XLA host devices (one per core) with ``shard_map``; gathering the
results is a collective. XLA's CPU runtime aborts the process when one device waits more than 40 s
for another at a collective, and the devices of a generation may finish minutes apart (each runs its
own agents until they stop), so we lift that timeout; likewise the 30-minute timeout of collectives
between processes (gloo, ``synthenv.distributed``), where a dead peer is found by heartbeats instead.
"""

from __future__ import annotations

import os

NO_COLLECTIVE_TIMEOUT = ("--xla_cpu_collective_call_terminate_timeout_seconds=86400",
                         "--xla_cpu_collective_call_warn_stuck_timeout_seconds=86400",
                         "--xla_cpu_collective_timeout_seconds=86400")


def configure(n_devices: int | None = None) -> None:
    """Set ``XLA_FLAGS`` for ``n_devices`` host devices (default: all cores) unless a device count is
    already set, and lift the collective timeout. Has no effect once JAX has been imported."""
    flags = os.environ.get("XLA_FLAGS", "").split()
    if not any(f.startswith("--xla_force_host_platform_device_count") for f in flags):
        flags.append(f"--xla_force_host_platform_device_count={n_devices or os.cpu_count() or 1}")
    for f in NO_COLLECTIVE_TIMEOUT:
        if not any(g.split("=")[0] == f.split("=")[0] for g in flags):
            flags.append(f)
    os.environ["XLA_FLAGS"] = " ".join(flags)
