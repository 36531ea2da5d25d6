"""Captions may not loop: no word twice in a row, no short phrase three times."""

from __future__ import annotations

import pytest

from presample import PresampleRequest
from presample.caption_loops import NoLoops, loops
from presample.engine.backend import Generation, GenerationJob
from presample.engine.sampling import Sampling
from presample.prepare import prepare
from presample.runs import RunOptions, tipo_run
from presample.tagdb import TagDatabase

RULE = NoLoops(frozenset({"short", "long"}))


@pytest.mark.parametrize(
    "text",
    [
        "The temple is a Buddhist Buddhist",
        "A hot, hot",
        "the cat sat the cat sat the cat sat",
        "A cat sat. A cat sat. A cat sat.",
    ],
)
def test_a_word_twice_or_a_phrase_three_times_in_a_row_loops(text: str) -> None:
    assert loops(text)


@pytest.mark.parametrize(
    "text",
    [
        "A very happy, very calm dog",
        "the cat sat the cat sat",
        "A black and white cat sits beside a black and white dog and a black and white bowl",
        "Buddhist",
        "A bench in the park. Park benches are green",
        "It waits... and waits!!",
        # Longer than four words: out of the rule's reach, on purpose (rare, and costly to check).
        "a girl in a red dress, a girl in a red dress, a girl in a red dress",
    ],
)
def test_real_captions_do_not_loop(text: str) -> None:
    assert not loops(text)


def test_the_token_that_would_close_a_loop_is_refused() -> None:
    text = "tag: 1girl, scenery\nlong: A view of the temple. The temple is a Buddhist"
    pieces = [" Buddhist", " temple", "hist", None, ".", "\n"]
    assert RULE.allowed(text, pieces) == [False, True, True, True, True, True]
    # A word written in pieces is refused when the piece that completes it comes.
    assert RULE.allowed(text + " Budd", ["hist", "ha", " hall"]) == [False, True, True]
    assert RULE.allowed("long: A hot,", [" hot", " air"]) == [False, True]
    assert RULE.allowed("long: a cat sat a cat sat a cat", [" sat", " ran"]) == [False, True]


def test_other_lines_and_the_users_own_loop_are_left_alone() -> None:
    assert RULE.allowed("tag: ha", [", ha"]) == [True]
    # The user's own text already loops: continuing it is not refused.
    assert RULE.allowed("short: ha ha", [" ha"]) == [True]


def test_every_caption_line_of_a_run_carries_the_rule(db: TagDatabase) -> None:
    # Even with the length floors off (the reference's behaviour).
    request = PresampleRequest(
        prompt="1girl, scenery", fill_tag_length=False, known_tags_only=False,
        fill_nl_length=False,
    )  # fmt: skip
    run = tipo_run(prepare(request, db), db, RunOptions(sampling=Sampling(), seed=0))
    jobs: list[GenerationJob] = [next(run)]
    try:
        while True:
            jobs.append(run.send(Generation(text="", prompt_tokens=1, new_tokens=0, finish="eos")))
    except StopIteration:
        pass
    captions = [j for j in jobs if j.prompt.rstrip().endswith("long:")]
    assert captions
    for job in captions:
        assert job.constraint is not None
        text = job.prompt + " A red"
        assert job.constraint.allowed(text, [" red", " rose"]) == [False, True]
