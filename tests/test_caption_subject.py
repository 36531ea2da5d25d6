"""The lean of a caption written from tags towards the people the tags count."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from presample import PresampleRequest
from presample.caption_subject import SUBJECT_STRENGTH, CaptionSubject
from presample.engine.backend import Generation, boost_additions
from presample.tagdb import TagDatabase

PROMPT = "rating: general\ntarget: <|short|> <|tag_to_long|>\ntag: 1girl, scenery\nlong:"


def lean(tags: list[str], strength: float = 4.0) -> CaptionSubject:
    subject = CaptionSubject.for_tags(tags, strength)
    assert subject is not None
    return subject


def test_tags_that_count_nobody_get_no_lean_towards_people() -> None:
    assert CaptionSubject.for_tags(["scenery", "mountain", "lake"], 4.0) is None
    assert CaptionSubject.for_tags(["1girl", "scenery"], 0.0) is None


def test_without_people_the_things_your_tags_name_lean() -> None:
    from presample.caption_subject import subject_words

    assert subject_words(["cat", "window", "scenery", "outdoors", "sunlight"]) == {
        "cat", "cats", "window", "windows",
    }  # fmt: skip
    # Tags that describe a person make her the subject, counted or not.
    assert subject_words(["jitome", "thong", "navel"]) == set()
    assert subject_words(["cat", "long hair"]) == set()
    # A pose fits a cat too.
    assert subject_words(["cat", "sitting", "window"]) == {"cat", "cats", "window", "windows"}
    subject = CaptionSubject.for_tags(["cat", "window", "laptop"], 4.0, yours=["cat", "window"])
    assert subject is not None and subject.unwanted == frozenset()
    text = PROMPT.replace("1girl, scenery", "cat, window, laptop")
    assert subject.boosts(text + " A", [" cat", " laptop", " woman", " cats"]) == [
        4.0, 0.0, 0.0, 4.0,
    ]  # fmt: skip
    assert subject.boosts(text + " A black cat sits by the", [" window", " door"]) == [0.0, 0.0]
    # People counted: the lean is towards them, not the things.
    people = CaptionSubject.for_tags(["1girl", "cat"], 4.0, yours=["1girl", "cat"])
    assert people is not None and "cat" not in people.wanted[0]


def test_the_counted_people_lean_up_and_the_uncounted_down() -> None:
    scores = lean(["1girl", "scenery"]).boosts(
        PROMPT + " A", [" woman", " girl", " man", " landscape", None, ".", " boy"]
    )
    assert scores == [4.0, 4.0, -4.0, 0.0, 0.0, 0.0, -4.0]


def test_plurals_and_the_start_of_a_noun_count() -> None:
    subject = lean(["2girls"])
    assert subject.boosts(PROMPT + " Two", [" women", " woma", " wo", " girls"]) == [
        4.0, 4.0, 0.0, 4.0,
    ]  # fmt: skip
    # A token that finishes the caption's unfinished word: "wo" + "man".
    assert subject.boosts(PROMPT + " A wo", ["man", "rld"]) == [4.0, 0.0]


def test_once_named_the_lean_stops_but_uncounted_people_stay_down() -> None:
    scores = lean(["1girl"]).boosts(PROMPT + " A woman stands by a", [" woman", " man", " tree"])
    assert scores == [0.0, -4.0, 0.0]


def test_each_kind_of_people_leans_until_it_is_named() -> None:
    subject = lean(["1girl", "1boy", "kimono"])
    assert subject.unwanted == frozenset()
    scores = subject.boosts(PROMPT + " A woman in a kimono beside a", [" woman", " man", " tree"])
    assert scores == [0.0, 4.0, 0.0]


def test_only_the_caption_line_leans() -> None:
    text = "rating: general\ntarget: <|short|> <|tag_to_long|>\ntag: 1girl, "
    assert lean(["1girl"]).boosts(text, [" woman", " man"]) == [None, None]


def test_the_lean_keeps_the_candidates_total_probability() -> None:
    import math

    scaled = [2.0, 1.5, 1.0, 0.5]
    scores = lean(["1girl"]).boosts(PROMPT + " A", [" field", " woman", " man", " tree"])
    adds = boost_additions(scaled, scores)
    before = sum(math.exp(x) for x in scaled)
    after = sum(math.exp(x + a) for x, a in zip(scaled, adds, strict=True))
    assert after == pytest.approx(before)
    assert scaled[1] + adds[1] > scaled[0] + adds[0]  # "woman" now leads "field"


def _jobs(request: Any, db: TagDatabase) -> list[Any]:
    """The jobs a TIPO run gives the model, each answered with nothing."""
    from presample.engine.sampling import Sampling
    from presample.prepare import prepare
    from presample.runs import RunOptions, tipo_run
    from presample.tag_prior import CooccurrenceTable

    with contextlib.closing(CooccurrenceTable()) as table:
        run = tipo_run(prepare(request, db), db, RunOptions(Sampling(), seed=1), table)
        jobs = [next(run)]
        empty = Generation(text="", prompt_tokens=1, new_tokens=0, finish="eos")
        try:
            while True:
                jobs.append(run.send(empty))
        except StopIteration:
            return jobs


def _caption_jobs(request: Any, db: TagDatabase) -> list[Any]:
    """The jobs that write a caption from tags alone."""
    return [job for job in _jobs(request, db) if job.prompt.endswith("long:")]


def test_a_caption_from_tags_leans_towards_its_people(db: TagDatabase) -> None:
    jobs = _caption_jobs(PresampleRequest(prompt="1girl, scenery", expand_tags=False), db)
    assert jobs
    assert all(isinstance(job.boost, CaptionSubject) for job in jobs)
    assert jobs[0].boost.strength == SUBJECT_STRENGTH
    assert len(jobs[0].boost.wanted) == 1  # girls: the one kind of people counted
    assert "woman" in jobs[0].boost.wanted[0]


def test_a_caption_of_tags_without_people_leans_to_your_things(db: TagDatabase) -> None:
    jobs = _caption_jobs(PresampleRequest(prompt="scenery, mountain, lake", tag_draw=1), db)
    assert jobs and "mountain, lake, " in jobs[0].prompt  # tags drawn onto the line
    for job in jobs:
        assert isinstance(job.boost, CaptionSubject)
        # Only your own tags: none the model added on the tag line before the caption.
        assert job.boost.wanted == (frozenset({"mountain", "mountains", "lake", "lakes"}),)
    request = PresampleRequest(prompt="scenery, outdoors", expand_tags=False)
    assert all(job.boost is None for job in _caption_jobs(request, db))


def test_the_lean_can_be_switched_off(db: TagDatabase) -> None:
    request = PresampleRequest(prompt="1girl, scenery", expand_tags=False, caption_people=False)
    jobs = _caption_jobs(request, db)
    assert jobs
    assert all(job.boost is None for job in jobs)


def test_a_users_own_sentence_is_not_leant_on(db: TagDatabase) -> None:
    request = PresampleRequest(prompt="1girl, a walk through the hills", expand_tags=False)
    jobs = _jobs(request, db)
    assert any("long: a walk through the hills" in job.prompt for job in jobs)
    assert not any(isinstance(job.boost, CaptionSubject) for job in jobs)


def _answered(request: Any, db: TagDatabase, captions: list[str]) -> tuple[list[Any], Any]:
    """A TIPO run whose caption calls are answered with ``captions`` in turn (every draw
    of a call alike) and its other calls with nothing: the jobs and the result."""
    from presample.engine.sampling import Sampling
    from presample.prepare import prepare
    from presample.runs import RunOptions, tipo_run

    run = tipo_run(prepare(request, db), db, RunOptions(Sampling(), seed=1), None)
    answers = iter(captions)
    jobs = [next(run)]
    try:
        while True:
            job = jobs[-1]
            text = next(answers) if job.prompt.endswith("long:") else ""
            draw = Generation(text=text, prompt_tokens=1, new_tokens=1, finish="eos")
            drawn = Generation(text=text, prompt_tokens=1, new_tokens=1, finish="eos",
                               alternatives=(draw,) * (job.samples - 1))  # fmt: skip
            jobs.append(run.send(drawn))
    except StopIteration as stop:
        return jobs, stop.value


FIELD = " A field of tall grass under a clear blue sky. The grass sways in the wind."
WOMAN = " A woman stands in a field of tall grass. She smiles at the viewer."


def test_a_caption_that_names_nobody_is_drawn_afresh_once(db: TagDatabase) -> None:
    request = PresampleRequest(prompt="1girl, scenery", expand_tags=False, nl_length="very_short")
    jobs, result = _answered(request, db, [FIELD, WOMAN])
    captions = [job for job in jobs if job.prompt.endswith("long:")]
    assert len(captions) == 2
    assert captions[0].prompt == captions[1].prompt  # afresh, not the field extended
    assert captions[1].seed == captions[0].seed + captions[0].samples  # new seeds
    assert result.generated.startswith("A woman stands")


def test_only_one_fresh_draw_is_made(db: TagDatabase) -> None:
    request = PresampleRequest(prompt="1girl, scenery", expand_tags=False, nl_length="very_short")
    jobs, result = _answered(request, db, [FIELD, FIELD, WOMAN])
    assert sum(job.prompt.endswith("long:") for job in jobs) == 2
    assert result.generated.startswith("A field of tall grass")


def test_no_fresh_draw_without_the_lean(db: TagDatabase) -> None:
    request = PresampleRequest(prompt="1girl, scenery", expand_tags=False,
                               nl_length="very_short", caption_people=False)  # fmt: skip
    jobs, result = _answered(request, db, [FIELD, WOMAN])
    assert sum(job.prompt.endswith("long:") for job in jobs) == 1
    assert result.generated.startswith("A field of tall grass")


def test_a_caption_names_its_people_or_else_your_things() -> None:
    from presample.caption_subject import names_subject

    # People counted: only they count, whatever things the caption names.
    assert names_subject("A cat by the window.", ["1girl", "cat"], ["1girl", "cat"]) is False
    assert names_subject("A woman holds a cat.", ["1girl", "cat"], ["1girl", "cat"]) is True
    # Nobody counted: one of the things your own tags name, plurals either way.
    tags = ["cat", "glass", "car"]
    assert names_subject("Two cats nap.", tags, ["cat", "glass"]) is True
    assert names_subject("Wine glasses on a table.", tags, ["cat", "glass"]) is True
    assert names_subject("A sedan parked on a street.", tags, ["cat", "glass"]) is False
    # The model's own "car" is not yours; scene words name nothing to look for.
    assert names_subject("A car.", tags, ["cat"]) is False
    assert names_subject("A sunny day.", ["scenery", "day"], ["scenery", "day"]) is None
