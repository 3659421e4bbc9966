"""Run one function over a population: split across devices, vmapped inside each device.

Each device runs its own ``while_loop``s (``shard_map``), so a device waits only for its own slowest
member, not for the slowest member of the whole population. With several processes
(``synthenv.distributed``) the devices are those of every process: each process runs the same program,
computes its own devices' share and receives the others' (the results are replicated everywhere).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from synthenv.errors import UsageError
from jax.sharding import NamedSharding, PartitionSpec as P


def _devices(n_devices: int | None) -> list:
    """The first ``n_devices`` local devices (default: all); with several processes, every device of
    every process (``n_devices`` may then only name this process's device count)."""
    available = jax.local_device_count()
    if jax.process_count() > 1:
        if n_devices not in (None, available):
            raise UsageError(f"with several processes every local device is used (here {available}; --devices "
                             f"sets how many), got n_devices={n_devices}")
        return jax.devices()
    n_devices = n_devices or available
    if not 1 <= n_devices <= available:
        raise UsageError(f"--devices must be between 1 and {available} (the local devices JAX sees), got {n_devices}")
    return jax.local_devices()[:n_devices]


def make_runner(fn, n_devices: int | None = None):
    """``run(*args)`` maps ``fn`` over the leading axis of every argument."""
    devices = _devices(n_devices)
    n_devices = len(devices)
    if n_devices == 1:
        return jax.vmap(fn)
    mesh = jax.make_mesh((n_devices,), ("d",), devices=devices)
    sharded = jax.shard_map(jax.vmap(fn), mesh=mesh, in_specs=P("d"), out_specs=P("d"),
                            check_vma=False)

    def run(*args):
        size = jax.tree.leaves(args)[0].shape[0]
        pad = (-size) % n_devices
        if pad:
            args = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]), args)
        args = jax.reshard(args, NamedSharding(mesh, P("d")))
        out = jax.reshard(sharded(*args), NamedSharding(mesh, P()))
        return jax.tree.map(lambda x: x[:size], out)

    return run
