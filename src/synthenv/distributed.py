"""One run on several processes (hosts): the ``jax.distributed`` setup, what the processes share, and
how a process ends when another one dies.

Every process runs the same program on the same ES state and keys; ``synthenv.meta.population`` shards
the population over the devices of every process. Process 0 (the writer) alone reads and writes files
and shows progress; what it reads reaches the others through :func:`from_writer`, so no shared disk
is needed.

Failures. When a peer's connection closes (the peer was killed or crashed), a collective fails at
once with a Python exception. Everything else ends a process inside JAX's runtime, with an abort and
a multi-line log: a coordinator that cannot be reached within ``connect_timeout``; process 0 (which
hosts the coordination service) gone; a peer that sent no heartbeat for ``heartbeat_timeout`` seconds
(a frozen or unreachable host). So :func:`supervise` runs the work in a child process whose runtime
log goes to a file, and turns each of these ends into one line and an exit code. Heartbeats come from
a thread of their own: a busy process keeps sending them, so a slow peer is never taken for a dead one.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import numpy as np

from synthenv.errors import UsageError

T = TypeVar("T")

AUTO = "auto"
"""``--coordinator auto``: JAX's cluster detection (SLURM, Open MPI, ...) gives the coordinator, the
number of processes and this process's id."""


@dataclass(frozen=True)
class Cluster:
    """How this process joins a run on several processes."""

    coordinator: str
    """``HOST:PORT`` of process 0's coordination service (the same on every process), or ``auto``."""
    num_processes: int | None = None
    """None: detected (``auto`` only)."""
    process_id: int | None = None
    """None: detected (``auto`` only)."""
    connect_timeout: int = 120
    """Seconds every process may take to connect (processes started by hand may start minutes apart)."""
    heartbeat_timeout: int = 60
    """Seconds without a heartbeat after which a process counts as dead and the run stops."""

    def validate(self) -> None:
        """Raise ``UsageError`` naming the first bad value (before any process connects)."""
        if self.coordinator != AUTO:
            host, _, port = self.coordinator.rpartition(":")
            if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise UsageError(f"--coordinator must be HOST:PORT (a port 1-65535) or {AUTO}, "
                                 f"got {self.coordinator!r}")
            if self.num_processes is None or self.process_id is None:
                raise UsageError(f"--coordinator {self.coordinator} needs --num-processes and --process-id "
                                 f"(or use --coordinator {AUTO} under SLURM or Open MPI)")
        if self.num_processes is not None and self.num_processes < 1:
            raise UsageError(f"--num-processes must be >= 1, got {self.num_processes}")
        if self.process_id is not None:
            if self.process_id < 0:
                raise UsageError(f"--process-id must be >= 0, got {self.process_id}")
            if self.num_processes is not None and self.process_id >= self.num_processes:
                raise UsageError(f"--process-id must be below --num-processes ({self.num_processes}), "
                                 f"got {self.process_id}")
        for name, value in (("connect", self.connect_timeout), ("heartbeat", self.heartbeat_timeout)):
            if value < 1:
                raise UsageError(f"--{name}-timeout must be >= 1 second, got {value}")

    def describe(self) -> str:
        return "the detected coordinator" if self.coordinator == AUTO else f"the coordinator {self.coordinator}"


def initialize(cluster: Cluster) -> None:
    """Join the run: ``jax.distributed.initialize`` with gloo CPU collectives. Call it before any
    other JAX use (``XLA_FLAGS``, e.g. the host device count, must be set before). Raises
    ``UsageError`` for what Python sees (no cluster detected, bad ids, the port taken); an unreachable
    coordinator ends the process inside JAX (see :func:`supervise`)."""
    cluster.validate()
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            None if cluster.coordinator == AUTO else cluster.coordinator, cluster.num_processes,
            cluster.process_id, initialization_timeout=cluster.connect_timeout,
            heartbeat_timeout_seconds=cluster.heartbeat_timeout,
            # At the end every process waits for the others; they finish the same generation together.
            shutdown_timeout_seconds=cluster.heartbeat_timeout)
    except (ValueError, TypeError, RuntimeError) as e:
        detail = " ".join(str(e).split())[:200]
        if cluster.coordinator == AUTO and "should be defined" in detail:
            raise UsageError(f"--coordinator {AUTO} detected no cluster (SLURM, Open MPI, ...) ({detail}); "
                             "give HOST:PORT, --num-processes and --process-id") from None
        raise UsageError(f"cannot join the run through {cluster.describe()}: {detail}") from None


def is_distributed() -> bool:
    """Whether this process is one of several (after :func:`initialize`)."""
    import jax

    return jax.distributed.is_initialized() and jax.process_count() > 1


def is_writer() -> bool:
    """Whether this process reads and writes files and shows progress: process 0, or the only one."""
    import jax

    return not jax.distributed.is_initialized() or jax.process_index() == 0


def from_writer(read: Callable[[], T], pack: Callable[[T], tuple[dict, Any]] | None = None,
                unpack: Callable[[dict, Any], T] | None = None) -> T:
    """``read()`` on process 0 only; every process gets its result, or raises its ``UsageError``.

    With one process this is ``read()``. Otherwise the result travels as numpy arrays and JSON data,
    bit for bit: ``pack(result) -> ({name: array}, data)`` and ``unpack(arrays, data) -> result``
    (default: the result is JSON data). Every process, process 0 too, returns the unpacked copy.
    """
    if not is_distributed():
        return read()
    blob = b""
    if is_writer():
        try:
            arrays, data = pack(read()) if pack else ({}, read())
            message = {"data": data}
        except UsageError as e:
            arrays, message = {}, {"error": str(e)}
        blob = _encode(arrays, message)
    arrays, message = _decode(broadcast_bytes(blob))
    if "error" in message:
        raise UsageError(message["error"])
    return unpack(arrays, message["data"]) if unpack else message["data"]


def _encode(arrays: dict, message: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, **{"": np.frombuffer(json.dumps(message).encode(), np.uint8)})
    return buffer.getvalue()


def _decode(blob: bytes) -> tuple[dict, dict]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return arrays, json.loads(arrays.pop("").tobytes())


def broadcast_bytes(blob: bytes) -> bytes:
    """Process 0's ``blob`` on every process (the others pass anything, e.g. ``b""``)."""
    size = int(_broadcast(np.frombuffer(np.int64(len(blob)).tobytes(), np.uint8)).view(np.int64)[0])
    return _broadcast(np.frombuffer(blob.ljust(size, b"\0")[:size], np.uint8)).tobytes()


def _broadcast(row: np.ndarray) -> np.ndarray:
    """Process 0's ``row`` (uint8, the same length everywhere) on every process: one row per device
    of a mesh over every process, the first row of process 0 copied to all. (``multihost_utils.
    broadcast_one_to_all`` needs the same number of devices on every process; this does not.)"""
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    devices = jax.devices()
    mesh = Mesh(np.array(devices), ("p",))
    mine = row if is_writer() else np.zeros_like(row)
    shards = [jax.device_put(mine[None], d) for d in jax.local_devices()]
    rows = jax.make_array_from_single_device_arrays((len(devices), row.size), NamedSharding(mesh, P("p")), shards)
    source = next(i for i, d in enumerate(devices) if d.process_index == 0)
    out = jax.jit(lambda x: x[source], out_shardings=NamedSharding(mesh, P()))(rows)
    return np.asarray(out)


# ------------------------------------------------------------------------------ supervision

CONNECTED, REPORTED = b"c", b"r"  # child -> parent: joined the run; printed its own final message


def supervise(cluster: Cluster, work: Callable[[], int], lost_hint: str) -> int:
    """Join the run in a child process, run ``work()`` there and return its exit code; call it before
    JAX is imported. If JAX's runtime aborts the child (see the module doc), print one line and return
    2 (it never connected: bad address, a process missing) or 1 (it lost its peers; ``lost_hint``
    says what to do). The child's runtime log goes to a file, named in that line and kept. A signal
    that ends this process (SIGTERM) is passed to the child; the child ends when this process dies."""
    cluster.validate()
    log = tempfile.NamedTemporaryFile(prefix="synthenv-process-", suffix=".log", delete=False)
    log.close()
    report_read, report_write = os.pipe()
    alive_read, alive_write = os.pipe()
    sys.stdout.flush(), sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(report_read), os.close(alive_write)
        _child(cluster, work, lost_hint, log.name, report_write, alive_read)  # never returns
    os.close(report_write), os.close(alive_read)
    forwarded = []

    def forward(signum, _frame):
        forwarded.append(signum)
        os.kill(pid, signum)

    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),  # the child gets Ctrl-C too
                signal.SIGTERM: signal.signal(signal.SIGTERM, forward)}
    try:
        status = os.waitpid(pid, 0)[1]
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        os.close(alive_write)
    with os.fdopen(report_read, "rb") as pipe:
        said = pipe.read()
    if os.WIFEXITED(status):
        os.unlink(log.name)
        return os.WEXITSTATUS(status)
    signum = os.WTERMSIG(status)
    if signum != signal.SIGABRT or forwarded:  # killed from outside, not ended by JAX's runtime
        if not forwarded:
            print(f"synthenv: error: the process was ended by {signal.Signals(signum).name} "
                  f"(JAX's runtime log: {log.name})", file=sys.stderr)
        return 128 + signum
    code = 1 if CONNECTED in said else 2
    if REPORTED not in said:
        what = (f"lost contact with the other processes (JAX's runtime ended this one; log: {log.name}); "
                f"{lost_hint}" if code == 1 else
                f"not every process connected to {cluster.describe()} within {cluster.connect_timeout} s "
                f"(is process 0 running, are the address and port right, are all processes started? "
                f"log: {log.name})")
        print(f"synthenv: error: {what}", file=sys.stderr)
    return code


def _child(cluster: Cluster, work: Callable[[], int], lost_hint: str, log: str, report: int,
           alive: int) -> None:
    """The child of :func:`supervise`: runtime log (file descriptor 2) to ``log``, Python's stderr
    stays where it was; ``report`` tells the parent how far it got; ``alive`` closes when the parent
    dies. Ends the process; it waits for its peers only after a clean end (codes 0 and 2, the latter
    from an error every process raised alike)."""
    threading.Thread(target=lambda: (os.read(alive, 1), os._exit(1)), daemon=True).start()
    code = 1
    try:
        sys.stderr = os.fdopen(os.dup(2), "w", buffering=1)
        fd = os.open(log, os.O_WRONLY | os.O_APPEND)
        os.dup2(fd, 2)
        os.close(fd)
        try:
            initialize(cluster)
        except UsageError as e:
            os.write(report, REPORTED)
            print(f"synthenv: error: {e}", file=sys.stderr)
            code = 2
            return
        os.write(report, CONNECTED)
        import jax

        if not is_writer():
            print(f"synthenv: process {jax.process_index()} of {jax.process_count()} joined "
                  f"({jax.local_device_count()} of {jax.device_count()} devices here); progress and files "
                  "are on process 0", file=sys.stderr)
        try:
            code = work()
        except jax.errors.JaxRuntimeError as e:
            os.write(report, REPORTED)
            detail = " ".join(str(e).split())[:160]
            print(f"synthenv: error: lost contact with the other processes: a collective failed ({detail}); "
                  f"{lost_hint}", file=sys.stderr)
            code = 1
            return
        if code in (0, 2):
            jax.distributed.shutdown()
    except KeyboardInterrupt:  # before the work started (it handles its own)
        code = 130
    except BaseException:
        os.write(report, REPORTED)
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
