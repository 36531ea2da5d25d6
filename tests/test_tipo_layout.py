"""The TIPO layout, pinned byte-for-byte to strings captured from tipo-kgen 0.3.1.

The fixtures in ``fixtures/kgen_0.3.1`` were produced by
``tools/capture_kgen_fixtures.py`` running the reference itself.
"""

from __future__ import annotations

import pytest
from conftest import FIXTURES, read_jsonl

from presample.categories import Category
from presample.tagdb import TagDatabase
from presample.tipo import (
    SPECIAL_TOKENS,
    Length,
    Step,
    Task,
    build_meta,
    parse_tipo_output,
    plan_steps,
    strip_special,
    tag_line,
    tipo_input,
)

KGEN = FIXTURES / "kgen_0.3.1"
INPUT_CASES = read_jsonl(KGEN / "tipo_inputs.jsonl")
PLAN_CASES = read_jsonl(KGEN / "tipo_operations.jsonl")
PARSE_CASES = read_jsonl(KGEN / "tipo_parse.jsonl")


def test_fixtures_cover_every_trained_task_mode_and_gen_meta() -> None:
    assert len(INPUT_CASES) >= 200
    seen = {(c["task"] or "tag", c["expand"], c["gen_meta"]) for c in INPUT_CASES}
    for task in Task:
        for expand in (True, False):
            for gen_meta in (True, False):
                assert (task.value, expand, gen_meta) in seen


@pytest.mark.parametrize("case", INPUT_CASES, ids=lambda c: f"{c['task']}-{c['length']}")
def test_input_matches_reference(case: dict) -> None:
    meta = build_meta(case["tag_map"], case["aspect_ratio"], add_quality=case["add_quality"])
    text = tipo_input(
        meta,
        tag_line(case["tag_map"]),
        case["nl_prompt"],
        Task.parse(case["task"]),
        Length(case["length"]),
        expand=case["expand"],
        gen_meta=case["gen_meta"],
    )
    assert text == case["expected"]


def test_spec_example() -> None:
    tags = {
        "special": ["1girl"], "characters": ["hatsune miku"], "copyrights": ["vocaloid"],
        "artist": ["ningen mame"], "quality": ["masterpiece", "newest"], "meta": ["absurdres"],
        "rating": ["sensitive"], "general": ["long hair", "twintails", "smile"],
    }  # fmt: skip
    meta = build_meta(tags, 0.7)
    head = (
        "meta: absurdres\nrating: sensitive\nartist: ningen mame\ncharacters: hatsune miku\n"
        "copyrights: vocaloid\nquality: masterpiece, newest\naspect_ratio: 0.7\n"
    )
    assert tipo_input(meta, tag_line(tags), "", Task.TAG, Length.LONG, expand=True) == (
        head + "target: <|long|>\ntag: 1girl, long hair, twintails, smile"
    )
    caption = tipo_input(
        meta, tag_line(tags), "", Task.TAG_TO_LONG, Length.SHORT, expand=False, gen_meta=True
    )
    assert caption == (
        head + "target: <|short|> <|tag_to_long|> <|gen_meta|>\n"
        "tag: 1girl, long hair, twintails, smile\nlong:"
    )


def _plan(case: dict) -> list[list]:
    tags = case["tag_map"]
    steps = plan_steps(
        has_tags=bool(tag_line(tags).strip()),
        has_nl=bool(case["nl_prompt"].strip()),
        expand_tags=case["expand_tags"],
        expand_nl=case["expand_prompt"],
        generate_nl=case["generate_extra_nl_prompt"],
        tag_first=case["tag_first"],
        tag_length=Length(case["tag_length_target"] or "long"),
        nl_length=Length(case["nl_length_target"] or "long"),
    )
    return [[None if s.task is Task.TAG else s.task.value, s.length.value, s.expand] for s in steps]


@pytest.mark.parametrize("case", PLAN_CASES)
def test_automatic_plan_matches_reference(case: dict) -> None:
    assert _plan(case) == case["expected"]


def test_plan_examples_from_the_spec() -> None:
    def plan(**kw: bool) -> list[Step]:
        return plan_steps(tag_length=Length.LONG, nl_length=Length.SHORT, **kw)

    assert plan(has_tags=False, has_nl=False) == [
        Step(Task.TAG, Length.LONG, True),
        Step(Task.TAG_TO_LONG, Length.SHORT, True),
    ]
    assert plan(has_tags=True, has_nl=False) == [
        Step(Task.TAG, Length.LONG, True),
        Step(Task.TAG_TO_LONG, Length.SHORT, False),
    ]
    assert plan(has_tags=False, has_nl=True) == [
        Step(Task.LONG_TO_TAG, Length.LONG, True),
        Step(Task.SHORT_TO_TAG_TO_LONG, Length.SHORT, False),
    ]
    assert plan(has_tags=True, has_nl=True) == [
        Step(Task.SHORT_TO_TAG, Length.LONG, True),
        Step(Task.TAG_TO_LONG, Length.SHORT, True),
        Step(Task.SHORT_TO_TAG_TO_LONG, Length.SHORT, False),
    ]


@pytest.mark.parametrize("case", PARSE_CASES, ids=lambda c: str(len(c["output"])))
def test_parse_matches_reference(case: dict, db: TagDatabase) -> None:
    out = parse_tipo_output(case["output"], db.categorize)
    expected = case["expected"]
    assert out.tags == expected.get("tag", [])
    assert out.extended == expected.get("extended", "")
    assert out.generated == expected.get("generated", "")
    for category in Category:
        want = expected.get(category.value, [])
        if isinstance(want, str):
            want = [want]
        want = list(dict.fromkeys(want))  # the reference keeps duplicates, we do not
        got = out.categories[category]
        # Deviation (documented in parse_tipo_output): meta lines written after
        # the tag line are merged instead of dropped, so ours may hold more.
        assert got[: len(want)] == want, category


def test_strip_special_keeps_letters() -> None:
    # The reference's str.strip("</s>") would turn "dress" into "dre".
    assert strip_special("<s> tag: 1girl, dress</s>") == "tag: 1girl, dress"
    assert strip_special("tag: glasses") == "tag: glasses"


def test_gen_meta_lines_after_tags_are_kept(db: TagDatabase) -> None:
    text = (
        "rating: general\ntarget: <|long|> <|tag_to_long|> <|gen_meta|>\n"
        "tag: 1girl, long hair\nlong: A girl with long hair.\nartist: ningen mame\n"
        "characters: hatsune miku</s>"
    )
    out = parse_tipo_output(text, db.categorize)
    assert out.categories[Category.ARTIST] == ["ningen mame"]
    assert out.categories[Category.CHARACTERS] == ["hatsune miku"]
    assert out.categories[Category.SPECIAL] == ["1girl"]
    assert out.generated == "A girl with long hair."


def test_special_tokens_have_the_published_ids() -> None:
    assert len(SPECIAL_TOKENS) == 13
    assert SPECIAL_TOKENS[0] == "<|empty|>"
    assert SPECIAL_TOKENS[4] == "<|very_long|>"
    assert SPECIAL_TOKENS[5] == "<|tag_to_long|>"
    assert SPECIAL_TOKENS[11] == "<|short_to_long_to_tag|>"
    assert SPECIAL_TOKENS[12] == "<|gen_meta|>"


def test_unknown_task_names_are_clear() -> None:
    with pytest.raises(ValueError, match="unknown task 'tag_to_short'"):
        Task.parse("tag_to_short")
    assert Task.parse(None) is Task.TAG
    assert Task.parse("None") is Task.TAG
