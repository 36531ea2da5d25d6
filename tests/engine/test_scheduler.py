"""The one batcher: runs advance together, join and leave between calls, fail alone."""

from __future__ import annotations

import pytest
from conftest import FakeBackend

from presample.engine.backend import GenerationJob, ModelError
from presample.engine.sampling import Sampling
from presample.engine.scheduler import Batcher, Run, run_all


def echo(job: GenerationJob) -> str:
    """The prompt upper-cased; "long" is refused (as a model refuses an input past its
    context) and "bug" breaks."""
    if "long" in job.prompt:
        raise ModelError(f"{job.prompt}: longer than the context")
    if "bug" in job.prompt:
        raise TypeError("a bug in a rule")
    return job.prompt.upper()


def Echo() -> FakeBackend:
    return FakeBackend(echo, name="echo")


def steps(*prompts: str) -> Run:
    """A run of one model call per prompt; returns the answers joined."""
    answers = []
    for prompt in prompts:
        generation = yield GenerationJob(prompt, Sampling(), seed=0)
        answers.append(generation.text)
    return " ".join(answers)


def no_model() -> Run:
    return "done at once"
    yield  # a generator that never asks for the model


def test_run_all_shares_calls_and_ends_each_run_on_its_own() -> None:
    backend = Echo()
    done: list[int] = []
    results = run_all(
        backend,
        [steps("a", "b", "c"), steps("x"), no_model()],
        on_done=lambda index, _: done.append(index),
    )
    assert results == ["A B C", "X", "done at once"]
    assert backend.calls == [["a", "x"], ["b"], ["c"]]
    assert done == [2, 1, 0]  # as each ends, not at the end


def test_a_job_the_model_refuses_fails_only_its_run() -> None:
    backend = Echo()
    results = run_all(backend, [steps("a", "too long"), steps("b", "c"), steps("bug")])
    assert results[1] == "B C"
    assert isinstance(results[0], ModelError) and "longer than the context" in str(results[0])
    # Any failure of the shared call is narrowed down the same way; a bug's message
    # says what broke (its traceback goes to the log).
    assert isinstance(results[2], ModelError) and "TypeError: a bug in a rule" in str(results[2])


def test_a_run_that_raises_fails_alone() -> None:
    def broken() -> Run:
        yield GenerationJob("a", Sampling(), seed=0)
        raise ValueError("bad request")

    results = run_all(Echo(), [broken(), steps("b", "c")])
    assert isinstance(results[0], ValueError) and results[1] == "B C"


def test_runs_join_and_leave_between_calls() -> None:
    backend = Echo()
    batcher: Batcher[str] = Batcher(backend)
    assert batcher.add("first", steps("a", "b", "c")) is None
    assert batcher.add("now", no_model()) == ("now", "done at once")
    assert batcher.step() == [] and batcher.rows() == 1
    batcher.add("second", steps("x"))
    batcher.add("gone", steps("y", "z"))
    batcher.drop("gone")  # its client left: never decoded again
    assert batcher.step() == [("second", "X")]
    assert batcher.step() == [("first", "A B C")]
    assert not batcher and backend.calls == [["a"], ["b", "x"], ["c"]]
    with pytest.raises(ValueError, match="already active"):
        batcher.add("k", steps("a"))
        batcher.add("k", steps("b"))
