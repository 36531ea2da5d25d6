"""One loaded model behind a queue: concurrent requests share forward passes.

Every model call of a model goes through one worker thread, so presample
batches and refine rounds never fight over the CPU and the backend is never
entered from two threads. Presample requests wait in a bounded
``asyncio.Queue``. The batcher keeps a set of active runs (a run is one
request's pipeline: steps and retries, each a model call) and loops: take
newly queued requests (after a short window when idle), then make ONE model
call with the next job of every active run, so requests of different lengths,
tasks and seeds advance together. A request joins at the next model call
instead of waiting for the whole previous batch (``engine.scheduler.run_all``
drives a fixed set of runs to the end, which would make a short request wait
for the slowest one), and each is answered as soon as its own run ends.
Requests whose client gave up (disconnect, timeout) are dropped, before they
start or between model calls. Refine rounds queue their candidates' runs here
too (``run_many``), so a round shares model calls with everyone else's work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

from ..engine.backend import Generation, ModelError
from ..engine.sampling import Sampling
from ..engine.scheduler import Batcher, Plan, resume
from ..engine.scheduler import Run as AnyRun
from ..presampler import Presampler
from ..request import PresampleRequest, PresampleResult
from ..runs import Run

log = logging.getLogger("presample.server")
T = TypeVar("T")


class QueueFull(Exception):
    """The engine has more waiting work than the server accepts."""


@dataclass
class EngineStats:
    calls: int = 0
    """Model calls (forward batches) made for presample requests."""
    jobs: int = 0
    """Jobs in those calls: one per active request per call."""
    largest_batch: int = 0
    """Most jobs (different requests) in one model call."""
    requests: int = 0
    """Runs started: presample requests and refine candidates (dropped-before-start
    ones are not counted)."""
    dropped: int = 0
    """Requests dropped because their client had gone."""
    busy_seconds: float = 0.0

    def to_dict(self) -> dict[str, float | int]:
        return {
            "calls": self.calls,
            "jobs": self.jobs,
            "largest_batch": self.largest_batch,
            "requests": self.requests,
            "dropped": self.dropped,
            "busy_seconds": round(self.busy_seconds, 3),
        }


@dataclass(eq=False)  # a key of the batcher: by identity
class _Item:
    start: Callable[[], AnyRun]
    """Makes the run, on the worker thread (an invalid request fails there, alone)."""
    future: asyncio.Future[Any] = field(repr=False)


def with_sampling(run: Run, sampling: Sampling) -> Run:
    """The same run with every model call drawn with ``sampling``.

    Lets one batch mix requests with different sampling settings (the backend
    takes sampling per job) without touching the shared ``Presampler``.
    """
    try:
        job = next(run)
    except StopIteration as stop:
        return stop.value
    while True:
        outcome: Generation | Exception
        try:
            outcome = yield replace(job, sampling=sampling)
        except Exception as exc:  # the model refused the job: the inner run decides
            outcome = exc
        try:
            job = resume(run, outcome)
        except StopIteration as stop:
            return stop.value


class Engine:
    """A ``Presampler`` with its worker thread and presample batcher."""

    def __init__(
        self,
        presampler: Presampler,
        *,
        queue_size: int,
        window_seconds: float,
        max_merged: int,
    ) -> None:
        self.presampler = presampler
        self.name = presampler.source.name
        self.stats = EngineStats()
        self._window = window_seconds
        self._max_merged = max_merged
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(queue_size)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"engine-{self.name}")
        self._task: asyncio.Task[None] | None = None
        # Used only in the worker thread, or while it is idle.
        self._batcher: Batcher[_Item] = Batcher(presampler.backend)

    # lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._batches())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        stopping = ModelError("the server is shutting down")
        for item in self._batcher:
            _settle(item.future, stopping)
        while not self._queue.empty():
            _settle(self._queue.get_nowait().future, stopping)
        self._thread.shutdown(wait=True, cancel_futures=True)
        self.presampler.close()

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    # presampling ---------------------------------------------------------------
    def submit(
        self, requests: list[tuple[PresampleRequest, Sampling | None]]
    ) -> list[asyncio.Future[PresampleResult]]:
        """Queue requests, all or none; ``QueueFull`` when they do not fit."""
        return self._enqueue([partial(self._request_run, *work) for work in requests])

    async def run_many(self, runs: list[AnyRun]) -> list[object]:
        """Drive runs through the queue, beside every other request; each run's
        result or exception, in order (``Presampler.run_many`` on a server)."""
        futures = self._enqueue([partial(_ready, run) for run in runs])
        try:
            return await asyncio.gather(*futures, return_exceptions=True)
        finally:  # given up on (timeout): the batcher drops what is still running
            for future in futures:
                future.cancel()

    async def drive(self, plan: Plan[T]) -> T:
        """Carry out a plan (a refine round): its own steps on the worker thread,
        the runs it asks for through the queue."""
        step = await self.call(_advance, plan, None)
        while isinstance(step, list):
            step = await self.call(_advance, plan, await self.run_many(step))
        return step.value

    def _enqueue(self, starts: list[Callable[[], AnyRun]]) -> list[asyncio.Future[Any]]:
        free = self._queue.maxsize - self._queue.qsize()
        if len(starts) > free:
            raise QueueFull(f"{self._queue.qsize()} requests are waiting for {self.name}")
        loop = asyncio.get_running_loop()
        futures = []
        for start in starts:
            future: asyncio.Future[Any] = loop.create_future()
            self._queue.put_nowait(_Item(start, future))
            futures.append(future)
        return futures

    def _request_run(self, request: PresampleRequest, sampling: Sampling | None) -> AnyRun:
        run = self.presampler.run_for(request)
        return run if sampling is None else with_sampling(run, sampling)

    async def _batches(self) -> None:
        loop = asyncio.get_running_loop()
        batcher = self._batcher
        while True:
            items: list[_Item] = []
            if not batcher:
                items.append(await self._queue.get())
                if self._window > 0:  # idle: give simultaneous requests a moment to arrive
                    await asyncio.sleep(self._window)
            while len(batcher) + len(items) < self._max_merged and not self._queue.empty():
                items.append(self._queue.get_nowait())
            fresh = [item for item in items if not item.future.done()]
            gone = [item for item in batcher if item.future.done()]
            for item in gone:
                batcher.drop(item)
            self.stats.dropped += len(items) - len(fresh) + len(gone)
            if not fresh and not batcher:
                continue
            try:
                await self.call(self._round, fresh, loop)
            except Exception as exc:  # the round as a whole failed: fail its requests
                log.exception("model call failed", extra={"event": "call_failed"})
                for item in [*batcher, *fresh]:
                    batcher.drop(item)
                    _settle(item.future, exc)

    def _round(self, fresh: list[_Item], loop: asyncio.AbstractEventLoop) -> None:
        """In the worker thread: start new runs, then one model call for every active run."""
        started = time.perf_counter()
        batcher = self._batcher
        ended: list[tuple[_Item, object]] = []
        for item in fresh:
            self.stats.requests += 1
            try:
                run = item.start()
            except (ValueError, ModelError) as exc:  # an invalid request fails alone
                ended.append((item, exc))
                continue
            if (done := batcher.add(item, run)) is not None:
                ended.append(done)
        rows = batcher.rows()
        if batcher:
            ended += batcher.step()
        for item, value in ended:
            loop.call_soon_threadsafe(_settle, item.future, value)
        if not rows:
            return
        seconds = time.perf_counter() - started
        self.stats.calls += 1
        self.stats.jobs += rows
        self.stats.largest_batch = max(self.stats.largest_batch, rows)
        self.stats.busy_seconds += seconds
        log.info(
            "model call",
            extra={"event": "call", "model": self.name, "jobs": rows,
                   "seconds": round(seconds, 3)},
        )  # fmt: skip

    # any other model work (refine rounds) ---------------------------------------
    async def call(self, function: Callable[..., T], *args: object) -> T:
        """Run ``function(*args)`` on the model's worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, function, *args)


@dataclass(frozen=True)
class _Done:
    value: Any


def _advance(plan: Plan[Any], results: list[object] | None) -> list[AnyRun] | _Done:
    """One step of a plan, as a value: a ``StopIteration`` cannot cross into a future."""
    try:
        return next(plan) if results is None else plan.send(results)
    except StopIteration as stop:
        return _Done(stop.value)


def _ready(run: AnyRun) -> AnyRun:
    return run


def _settle(future: asyncio.Future[Any], value: object) -> None:
    if future.done():  # the client went away; nobody reads this
        return
    if isinstance(value, BaseException):
        future.set_exception(value)
    else:
        future.set_result(value)  # type: ignore[arg-type]
