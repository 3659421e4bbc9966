"""Run one function over a population: split across devices, vmapped inside each device.

Each device runs its own ``while_loop``s (``shard_map``), so a device waits only for its own slowest
member, not for the slowest member of the whole population. With several processes
(``synthenv.distributed``) the devices are those of every process: each process runs the same program,
computes its own devices' share and receives the others' (the results are replicated everywhere).
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from synthenv.errors import UsageError


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


class Stratum(NamedTuple):
    """One shape stratum of a population (``synthenv.agents.hparams.strata``): ``member(flat, hp,
    key)`` allocated at the stratum's maximum shapes, and ``sample(key)``, its HP draw."""

    member: Callable
    sample: Callable


def make_stratified_runner(strata: Sequence[Stratum], n_devices: int | None = None):
    """``run(flats, hp_keys, agent_keys, draws)``: agent ``i`` trains on ``flats[i]`` with the HPs
    and seed of draw ``draws[i]`` (a static integer array), in stratum ``draws[i] % len(strata)``.

    Each stratum runs its agents as one population at its own shapes; a draw keeps its stratum
    wherever it is used, so agents that share a draw (common random numbers) share HPs and shapes.
    With one stratum this is ``make_runner`` over every agent.
    """
    runs = [(make_runner(s.member, n_devices), s.sample) for s in strata]

    def run(flats, hp_keys, agent_keys, draws):
        draws = np.asarray(draws)
        which = draws % len(runs)
        outs, order = [], []
        for s, (run_stratum, sample) in enumerate(runs):
            idx = np.flatnonzero(which == s)
            if idx.size:
                d = draws[idx]
                outs.append(run_stratum(flats[idx], jax.vmap(sample)(hp_keys[d]), agent_keys[d]))
                order.append(idx)
        inverse = np.argsort(np.concatenate(order))
        return jax.tree.map(lambda *xs: jnp.concatenate(xs)[inverse], *outs)

    return run
