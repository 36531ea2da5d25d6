"""One loaded model behind a queue: concurrent requests become shared batches.

Every model call of a model goes through one worker thread, so a batch of
presamples and a refine round never fight over the CPU and the backend is
never entered from two threads. Presample requests wait in a bounded
``asyncio.Queue``; the batcher takes the first, waits a short window for
company, and runs everything queued (up to ``max_merged``) as one scheduler
batch: each request's runs advance together in shared forward passes, as in
``Presampler.presample_many``. A request whose client gave up (disconnect,
timeout) before its batch started is dropped without running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TypeVar

from ..engine.backend import ModelError
from ..engine.pipeline import Run
from ..engine.sampling import Sampling
from ..engine.scheduler import run_all
from ..presampler import Presampler
from ..request import PresampleRequest, PresampleResult

log = logging.getLogger("presample.server")
T = TypeVar("T")


class QueueFull(Exception):
    """The engine has more waiting work than the server accepts."""


@dataclass
class EngineStats:
    batches: int = 0
    """Engine batches run for presample requests."""
    requests: int = 0
    """Presample requests run (dropped ones are not counted)."""
    largest_batch: int = 0
    dropped: int = 0
    """Requests dropped before running because their client had gone."""
    busy_seconds: float = 0.0

    def to_dict(self) -> dict[str, float | int]:
        return {
            "batches": self.batches,
            "requests": self.requests,
            "largest_batch": self.largest_batch,
            "dropped": self.dropped,
            "busy_seconds": round(self.busy_seconds, 3),
        }


@dataclass
class _Item:
    request: PresampleRequest
    sampling: Sampling | None
    future: asyncio.Future[PresampleResult] = field(repr=False)


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
        generation = yield replace(job, sampling=sampling)
        try:
            job = run.send(generation)
        except StopIteration as stop:
            return stop.value


def _failed(exc: Exception) -> Run:
    raise exc
    yield  # a generator that fails on its first step


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

    # lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._batches())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.future.done():
                item.future.set_exception(ModelError("the server is shutting down"))
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
        free = self._queue.maxsize - self._queue.qsize()
        if len(requests) > free:
            raise QueueFull(f"{self._queue.qsize()} requests are waiting for {self.name}")
        loop = asyncio.get_running_loop()
        futures = []
        for request, sampling in requests:
            future: asyncio.Future[PresampleResult] = loop.create_future()
            self._queue.put_nowait(_Item(request, sampling, future))
            futures.append(future)
        return futures

    async def _batches(self) -> None:
        while True:
            items = [await self._queue.get()]
            if self._window > 0:
                await asyncio.sleep(self._window)
            while len(items) < self._max_merged and not self._queue.empty():
                items.append(self._queue.get_nowait())
            live = [item for item in items if not item.future.done()]
            self.stats.dropped += len(items) - len(live)
            if not live:
                continue
            try:
                await self.call(self._run_batch, live, asyncio.get_running_loop())
            except Exception as exc:  # the batch as a whole failed: fail its requests
                log.exception("batch failed", extra={"event": "batch_failed"})
                for item in live:
                    _settle(item.future, exc)

    def _run_batch(self, items: list[_Item], loop: asyncio.AbstractEventLoop) -> None:
        """In the worker thread: one scheduler batch; each future settles as its run ends."""
        started = time.perf_counter()
        runs: list[Run] = []
        for item in items:
            try:
                run = self.presampler.run_for(item.request)
                runs.append(with_sampling(run, item.sampling) if item.sampling else run)
            except (ValueError, ModelError) as exc:  # an invalid request fails alone
                runs.append(_failed(exc))

        def done(index: int, value: object) -> None:
            loop.call_soon_threadsafe(_settle, items[index].future, value)

        run_all(self.presampler.backend, runs, on_done=done)
        seconds = time.perf_counter() - started
        self.stats.batches += 1
        self.stats.requests += len(items)
        self.stats.largest_batch = max(self.stats.largest_batch, len(items))
        self.stats.busy_seconds += seconds
        log.info(
            "batch",
            extra={"event": "batch", "model": self.name, "size": len(items),
                   "seconds": round(seconds, 3)},
        )  # fmt: skip

    # any other model work (refine rounds) ---------------------------------------
    async def call(self, function: Callable[..., T], *args: object) -> T:
        """Run ``function(*args)`` on the model's worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, function, *args)


def _settle(future: asyncio.Future[PresampleResult], value: object) -> None:
    if future.done():  # the client went away; nobody reads this
        return
    if isinstance(value, BaseException):
        future.set_exception(value)
    else:
        future.set_result(value)  # type: ignore[arg-type]
