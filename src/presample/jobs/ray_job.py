"""A job's rows on Ray Data: one model per worker (a Ray actor), batches of rows
spread over the workers, results written by this process as they come back.

Without an address a local Ray starts inside this process (no cluster to set
up) and stops with it; with one, the job joins that cluster. The input is read
and the output written here, on the driver, through the same ``JobRun`` as the
one-process path: the model is a thousand times slower than the file work, so
one writer is never the bottleneck, and resuming stays one mechanism. Rows
reach workers in batches of ``batch_size`` and come back in the order they
finish; a row's seed is fixed before it leaves, and the engine gives a row
the same tokens in any batch, so its result does not depend on where it ran.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import socket
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from ..errors import InputError, RunError, install_hint
from ..request import PresampleRequest
from .files import result_row, written
from .job import JobRun

LOCAL_OBJECT_STORE_BYTES = 512 * 2**20
"""Rows are small JSON strings: the local object store needs little room, and Ray's
default (30% of memory) would be taken from what the models need."""
CONNECT_SECONDS = 5.0


@dataclass(frozen=True)
class Cluster:
    address: str | None = None
    """None: a local Ray in this process; else ``host:port`` or ``ray://host:port``."""
    workers: int | None = None
    """Model workers; None: one per ``cpus_per_worker`` of the cluster's CPUs."""
    cpus_per_worker: float | None = None
    """CPUs (and engine threads) per worker; None: the local CPUs shared out, or 1."""


def _ray() -> Any:
    try:
        import ray
        import ray.data  # the submodule: ray alone does not load it
    except ImportError:
        raise InputError(f"running on Ray needs Ray Data: {install_hint('ray')}") from None
    return ray


def check_reachable(address: str, seconds: float = CONNECT_SECONDS) -> None:
    """A plain TCP connect first: given an address nobody answers, Ray itself
    retries for minutes before it gives up."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--address {address!r}: expected host:port or ray://host:port")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=seconds):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, TimeoutError | socket.timeout):
            reason = f"no answer within {seconds:g} s"
        raise RunError(f"cannot reach the Ray cluster at {address}: {reason}") from None


@contextlib.contextmanager
def ray_console() -> Iterator[TextIO]:
    """Ray's own output to a log file; yields the terminal, for presample's progress.

    Ray prints to the process's standard output and error whatever its settings
    say (its C++ core's warnings, its node processes, the tracebacks of retried
    tasks forwarded to the driver), which would bury the progress bar under pages
    of tracebacks for one model that fails to load. Both go to a log during the
    job, at the file-descriptor level (for the C++ core and the processes Ray
    starts) and in ``sys`` (for its Python threads); a failure is still one
    line, naming the log.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    handle, name = tempfile.mkstemp(prefix="presample-ray-", suffix=".log")
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    terminal = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    log = os.fdopen(os.dup(handle), "w", buffering=1, encoding="utf-8", errors="replace")
    previous = sys.stdout, sys.stderr
    for fd in saved:
        os.dup2(handle, fd)
    os.close(handle)
    sys.stdout = sys.stderr = log
    failed = True
    try:
        yield terminal
        failed = False
    except RunError as exc:
        if os.path.getsize(name):  # an address nobody answers: Ray never started
            raise RunError(f"{exc} (Ray's own log: {name})") from None
        raise
    finally:
        sys.stdout, sys.stderr = previous
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        terminal.close()
        log.close()
        if not failed or not os.path.getsize(name):
            os.unlink(name)


def run_on_ray(run: JobRun, settings: Any, cluster: Cluster, *, batch_size: int) -> None:
    """Every row left in ``run``, on Ray; ``settings`` is a ``LoadSettings``."""
    ray = _ray()
    settings.check()  # an unknown model or a bad setting: one line here, not in every worker
    valid = run.requests()
    if not valid:
        return
    started = _connect(ray, cluster)
    try:
        workers, cpus = _shape(ray, cluster, rows=len(valid), batch_size=batch_size)
        items = [{"line": n, "request": wire(r)} for n, r in valid]
        dataset = ray.data.from_items(items, override_num_blocks=math.ceil(len(items) / batch_size))
        dataset = dataset.map_batches(
            Worker,
            fn_constructor_kwargs={"settings": settings, "threads": max(1, int(cpus))},
            batch_size=batch_size,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=cpus,
        )
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for row in batch["row"]:
                run.record_row(json.loads(row))
    except ray.exceptions.RayError as exc:
        raise RunError(f"the Ray job failed: {_cause(exc)}") from None
    finally:
        if started:
            ray.shutdown()


def _connect(ray: Any, cluster: Cluster) -> bool:
    """Join the cluster, or start a local Ray; whether this process started it."""
    # Ray's own progress lines, warnings and tracebacks would bury presample's
    # progress bar; what fails in a worker comes back as an exception, said in one line.
    logging.getLogger("ray").setLevel(logging.CRITICAL)
    if ray.is_initialized():
        return False
    common = {"log_to_driver": False, "logging_level": logging.CRITICAL}
    if cluster.address is not None:
        check_reachable(cluster.address)
        try:
            ray.init(address=cluster.address, **common)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RunError(f"cannot join the Ray cluster at {cluster.address}: {exc}") from None
        _quiet(ray)
        return False
    ray.init(include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES, **common)
    _quiet(ray)
    return True


def _quiet(ray: Any) -> None:
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def _shape(ray: Any, cluster: Cluster, *, rows: int, batch_size: int) -> tuple[int, float]:
    """Workers and CPUs per worker that fit the cluster (Ray would wait forever for
    actors that cannot be placed)."""
    total = float(ray.cluster_resources().get("CPU", 0))
    if total <= 0:
        raise RunError("the Ray cluster has no CPUs to run workers on")
    cpus = cluster.cpus_per_worker
    workers = cluster.workers
    if cpus is None:
        cpus = max(1.0, math.floor(total / workers)) if workers and cluster.address is None else 1.0
    if workers is None:
        workers = max(1, int(total // cpus))
    workers = min(workers, math.ceil(rows / batch_size))  # an idle worker only loads a model
    if workers * cpus > total:
        if cluster.cpus_per_worker is not None:
            raise InputError(
                f"{workers} workers x {cpus:g} CPUs do not fit the Ray cluster's {total:g} CPUs; "
                "ask for fewer --workers or --cpus-per-worker"
            )
        cpus = total / workers  # more workers than CPUs: they share, one thread each
    return workers, cpus


def _cause(exc: BaseException) -> str:
    """The first line of what went wrong inside a worker, not Ray's wrapping."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and cause is not exc:
        return _cause(cause)
    text = str(exc).strip().splitlines()
    # A worker's exception comes back as "module.SomeError: message": the message.
    return re.sub(r"^[\w.]+(Error|Exception): ", "", text[-1]) if text else type(exc).__name__


def wire(request: PresampleRequest) -> str:
    """A request as it travels to a worker: only the fields it sets, so the worker's
    model fills the rest from its card as it would in one process."""
    return request.model_dump_json(exclude_unset=True)


class Worker:
    """One loaded model in a Ray actor, answering batches of rows."""

    def __init__(self, settings: Any, threads: int) -> None:
        # The engines size their thread pools from this (engine/backend.usable_cores).
        os.environ["OMP_NUM_THREADS"] = str(threads)
        self.presampler = settings.open()  # a LoadSettings

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        lines = [int(n) for n in batch["line"]]
        requests = [PresampleRequest.model_validate_json(r) for r in batch["request"]]
        rows = []
        for line, value in zip(lines, self.presampler.presample_many(requests), strict=True):
            rows.append(json.dumps(result_row(line, written(value)), ensure_ascii=False))
        return {"row": np.array(rows, dtype=object)}
