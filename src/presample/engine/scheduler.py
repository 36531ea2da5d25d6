"""Running many runs over one backend, sharing forward passes.

A ``Batcher`` holds the active runs; each ``step`` is one model call with the
next job of every one of them, so requests with different lengths, tasks and
seeds advance together, and a run can join or leave between calls (the
server adds requests as they arrive and drops those whose client has gone).
``run_all`` drives a fixed set of runs to the end. Both share one failure
policy: a run that fails is reported and the others go on; when the model
call as a whole fails, each job is retried alone and only the jobs that fail
alone fail their runs.

Work that needs several rounds of runs, each planned from the results of the
last (a refine round draws again for duplicates), is a ``Plan``: whoever holds
the model drives it, ``drive`` with ``run_all``, the server by queueing each
round's runs beside other requests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Hashable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from .backend import Backend, Generation, GenerationJob, ModelError, first_line, generate_samples

log = logging.getLogger(__name__)

Run = Generator[GenerationJob, Generation, Any]
"""A run (``presample/runs.py``): yields jobs, receives their generations, returns
its result. The scheduler needs nothing else of it."""

OnDone = Callable[[int, object], None]
"""Called as soon as run ``index`` ends, with its result or its exception."""

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

Plan = Generator[list[Run], list[object], T]
"""Yields the runs it needs next, receives their results or exceptions (in order,
as ``run_all`` gives them), returns its own result."""

RunMany = Callable[[list[Run]], list[object]]


def resume(run: Run, outcome: Generation | Exception) -> GenerationJob:
    """Give a run its job's outcome: the generation, or the exception the model
    raised for that job, thrown in at its ``yield`` so the run can end with what it
    has (a context the run's own output filled) or let it fail the run."""
    if isinstance(outcome, Exception):
        return run.throw(outcome)
    return run.send(outcome)


class Batcher(Generic[K]):
    """Active runs, by a key of the caller's choosing, advanced one model call at a time."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._jobs: dict[K, tuple[Run, GenerationJob]] = {}

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[K]:
        """The active runs' keys (a snapshot: dropping while iterating is fine)."""
        return iter(list(self._jobs))

    def rows(self) -> int:
        """Rows the next call decodes: a job drawing several samples counts each."""
        return sum(max(job.samples, 1) for _, job in self._jobs.values())

    def add(self, key: K, run: Run) -> tuple[K, object] | None:
        """Start ``run``; ``(key, result or exception)`` when it ends before asking for
        the model (or fails to start), else ``None``."""
        if key in self._jobs:
            raise ValueError(f"a run with key {key!r} is already active")
        return self._advance(key, run, None)

    def drop(self, key: K) -> None:
        """Forget a run (its caller no longer wants the result)."""
        self._jobs.pop(key, None)

    def step(self) -> list[tuple[K, object]]:
        """One model call for every active run; the runs that ended, with their result
        or exception."""
        keys = list(self._jobs)
        if not keys:
            return []
        jobs = [self._jobs[k][1] for k in keys]
        try:
            generations: list[Generation | Exception] = list(generate_samples(self.backend, jobs))
        except Exception:
            generations = [self._alone(job) for job in jobs]
        ended: list[tuple[K, object]] = []
        for key, generation in zip(keys, generations, strict=True):
            run, _ = self._jobs.pop(key)
            if (done := self._advance(key, run, generation)) is not None:
                ended.append(done)
        return ended

    def _alone(self, job: GenerationJob) -> Generation | Exception:
        """The job in a call of its own: which job the model refused (too long for its
        context, a sampler failing on odd settings)."""
        try:
            (generation,) = generate_samples(self.backend, [job])
        except ModelError as exc:
            return exc
        except Exception as exc:  # a bug, not the request: keep its traceback in the log
            log.exception("model call failed", extra={"event": "call_failed"})
            return ModelError(f"the model call failed: {type(exc).__name__}: {first_line(exc)}")
        return generation

    def _advance(
        self, key: K, run: Run, outcome: Generation | Exception | None
    ) -> tuple[K, object] | None:
        try:
            job = next(run) if outcome is None else resume(run, outcome)
        except StopIteration as stop:
            return key, stop.value
        except Exception as exc:  # one bad request must not sink the batch
            return key, exc
        self._jobs[key] = (run, job)
        return None


def run_all(
    backend: Backend,
    runs: Sequence[Run],
    *,
    on_done: OnDone | None = None,
) -> list[object]:
    """Drive every run to the end; returns each run's result or exception."""
    results: list[object] = [None] * len(runs)
    batcher: Batcher[int] = Batcher(backend)

    def finish(ended: tuple[int, object] | None) -> None:
        if ended is not None:
            index, value = ended
            results[index] = value
            if on_done is not None:
                on_done(index, value)

    for index, run in enumerate(runs):
        finish(batcher.add(index, run))
    while batcher:
        for ended in batcher.step():
            finish(ended)
    return results


def drive(plan: Plan[T], run_many: RunMany) -> T:
    """Carry out ``plan``, handing each of its rounds of runs to ``run_many``."""
    try:
        runs = next(plan)
        while True:
            runs = plan.send(run_many(runs))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
