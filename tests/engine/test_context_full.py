"""A run whose own output fills the model's context ends with what it wrote."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FakeBackend

from presample import Presampler, PresampleRequest
from presample.engine.backend import ContextFull, GenerationJob, check_context
from presample.engine.sampling import Sampling
from presample.engine.scheduler import Run, run_all
from presample.prepare import prepare
from presample.request import PresampleResult, TagSet
from presample.runs import RunOptions, tipo_run
from presample.tagdb import TagDatabase

CAPTION = " A girl stands in a wide scenery of mountains."
TAGS = TagSet(special=["1girl"], general=["scenery", "mountain"])


def filling(calls_before_full: int) -> FakeBackend:
    """A backend that writes ``CAPTION`` until the context is full."""
    calls: list[GenerationJob] = []

    def answer(job: GenerationJob) -> str:
        calls.append(job)
        if len(calls) > calls_before_full:
            raise ContextFull(1030, 1024)
        return CAPTION

    return FakeBackend(answer, name="filling")


def long_caption_run(db: TagDatabase) -> Run:
    # A "long" caption: one sentence falls short, so the step retries (extends it).
    request = PresampleRequest(tags=TAGS, expand_tags=False, nl_length="long",
                               caption_candidates=1)  # fmt: skip
    return tipo_run(prepare(request, db), db, RunOptions(sampling=Sampling(), seed=0))


def test_the_caption_written_before_the_context_filled_is_kept(db: TagDatabase) -> None:
    (result,) = run_all(filling(calls_before_full=1), [long_caption_run(db)])
    assert isinstance(result, PresampleResult), result
    assert "mountains" in result.generated
    assert any("context (1024 tokens) filled up" in note for note in result.notes)
    assert result.steps[-1].reached_target is False


def test_an_input_too_long_from_the_start_is_the_users_error(db: TagDatabase) -> None:
    (result,) = run_all(filling(calls_before_full=0), [long_caption_run(db)])
    assert isinstance(result, ContextFull) and "shorten the prompt" in str(result)


def test_a_run_that_does_not_catch_the_refusal_fails_with_it() -> None:
    def plain() -> Run:
        yield GenerationJob("a", Sampling(), seed=0)
        return "never"

    (result,) = run_all(FakeBackend(lambda job: check_context(2048, 1024) or ""), [plain()])
    assert isinstance(result, ContextFull) and result.tokens == 2048


def test_check_context_leaves_room_to_write() -> None:
    check_context(1023, 1024)
    with pytest.raises(ContextFull, match="1024 tokens, longer than the model's context"):
        check_context(1024, 1024)


def test_streaming_keeps_what_was_written_too(tiny_model_dir: Path) -> None:
    presampler = Presampler(str(tiny_model_dir), loaded=filling(calls_before_full=1))
    request = PresampleRequest(tags=TAGS, expand_tags=False, nl_length="long",
                               caption_candidates=1)  # fmt: skip
    *steps, result = presampler.stream(request)
    assert isinstance(result, PresampleResult) and "mountains" in result.generated
    assert steps == result.steps and any("filled up" in note for note in result.notes)
