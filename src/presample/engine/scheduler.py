"""Running many runs over one backend, sharing forward passes.

Each round collects the next job of every unfinished run and hands them to the
backend as one batch, so requests with different lengths, tasks and seeds
advance together. A run that fails is reported and the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

from .backend import Backend, Generation, GenerationJob, ModelError, generate_samples

Run = Generator[GenerationJob, Generation, Any]
"""A run (``presample/runs.py``): yields jobs, receives their generations, returns
its result. The scheduler needs nothing else of it."""

OnDone = Callable[[int, object], None]
"""Called as soon as run ``index`` ends, with its result or its exception."""


def run_all(
    backend: Backend,
    runs: Sequence[Run],
    *,
    on_done: OnDone | None = None,
) -> list[object]:
    """Drive every run to the end; returns each run's result or exception."""
    results: list[object] = [None] * len(runs)
    pending: dict[int, GenerationJob] = {}

    def advance(index: int, generation: Generation | None) -> None:
        run = runs[index]
        try:
            job = next(run) if generation is None else run.send(generation)
        except StopIteration as stop:
            finish(index, stop.value)
        except Exception as exc:  # one bad request must not sink the batch
            finish(index, exc)
        else:
            pending[index] = job

    def finish(index: int, value: object) -> None:
        pending.pop(index, None)
        results[index] = value
        if on_done is not None:
            on_done(index, value)

    for index in range(len(runs)):
        advance(index, None)
    while pending:
        indices = list(pending)
        try:
            generations = generate_samples(backend, [pending[i] for i in indices])
        except ModelError:
            # Find the job the model refused (too long, say) and fail only its run.
            for index in indices:
                try:
                    (generation,) = generate_samples(backend, [pending[index]])
                except ModelError as exc:
                    finish(index, exc)
                else:
                    advance(index, generation)
            continue
        for index, generation in zip(indices, generations, strict=True):
            advance(index, generation)
    return results
