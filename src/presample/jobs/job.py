"""A job: every request of a file answered in an output file, resumably.

``Job.open()`` reads the requests and what the output already answers; the
rows left are then run here (``run_local``, one process) or on Ray
(``jobs/ray_job.py``), both writing through the same ``JobRun.record``. A
row's seed is its request's, or the job's ``seed`` when the request leaves it
random, so a row gives the same result whichever way, worker or batch it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..request import PresampleRequest, PresampleResult
from .files import Output, open_output, read_requests, written

MAX_BATCH = 256


@dataclass(frozen=True)
class Job:
    requests: Path
    output: Path
    batch_size: int = 32
    """Requests sharing forward passes at once (per worker on Ray)."""
    seed: int | None = None
    """The seed of every request that leaves it random."""

    def open(self) -> JobRun:
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise InputError(f"--batch-size must be between 1 and {MAX_BATCH}")
        if self.requests.resolve() == self.output.resolve():
            raise InputError("the output file must not be the input file")
        requests = read_requests(self.requests)
        output = open_output(self.output)
        done = output.answered()
        todo = [(n, r) for n, r in requests.rows if n not in done]
        if self.seed is not None:
            todo = [
                (n, r.model_copy(update={"seed": self.seed}) if isinstance(r, PresampleRequest)
                 and r.seed < 0 else r)
                for n, r in todo
            ]  # fmt: skip
        return JobRun(
            output=output,
            total=len(requests.rows),
            todo=todo,
            # Error rows from an earlier attempt still count: the summary says
            # whether the output, as it stands at the end, answers every request.
            failed=sum(1 for n, _ in requests.rows if done.get(n)),
            ignored_columns=requests.ignored_columns,
        )


@dataclass
class JobRun:
    """One run of a job: the rows left, and the output they go to."""

    output: Output
    total: int
    todo: list[tuple[int, PresampleRequest | str]]
    failed: int
    ignored_columns: list[str] = field(default_factory=list)
    on_row: Callable[[int, bool], None] | None = None
    """Called as each row is recorded: its line, whether it failed (progress bars)."""

    @property
    def skipped(self) -> int:
        """Rows an earlier run answered."""
        return self.total - len(self.todo)

    def requests(self) -> list[tuple[int, PresampleRequest]]:
        """The valid requests left; the invalid rows are recorded as errors first."""
        valid = []
        for line, item in self.todo:
            if isinstance(item, str):
                self.record(line, item)
            else:
                valid.append((line, item))
        return valid

    def record(self, line: int, value: PresampleResult | Exception | str) -> None:
        value = written(value)
        self.output.write(line, value)
        self._count(line, isinstance(value, str))

    def record_row(self, row: dict[str, Any]) -> None:
        """A finished row as a worker wrote it (``files.result_row``)."""
        self.output.write_row(row)
        self._count(row["line"], "error" in row)

    def _count(self, line: int, failed: bool) -> None:
        self.failed += failed
        if self.on_row is not None:
            self.on_row(line, failed)

    def close(self) -> None:
        self.output.close()


def run_local(run: JobRun, presampler: Any, *, batch_size: int) -> None:
    """The rows left, in this process, ``batch_size`` at a time in shared model calls."""
    valid = run.requests()
    for start in range(0, len(valid), batch_size):
        chunk = valid[start : start + batch_size]

        def finished(index: int, value: object, chunk: list = chunk) -> None:
            run.record(chunk[index][0], value)  # type: ignore[arg-type]

        presampler.presample_many([r for _, r in chunk], on_result=finished)
