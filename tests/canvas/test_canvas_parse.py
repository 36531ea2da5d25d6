"""Reading answers: the seed transcripts, argument forms, repairs, and lenient salvage."""

from __future__ import annotations

import pytest

from presample.canvas import (
    Area,
    CanvasParseError,
    Location,
    Offset,
    parse_answer,
    parse_canvas,
)

from .answers import GLOBAL, INIT, SEED_ANSWERS, answer, fenced, region, seed_answer


@pytest.mark.parametrize("name", SEED_ANSWERS)
def test_seed_transcripts_parse_strictly(name: str) -> None:
    parsed = parse_answer(seed_answer(name))
    canvas = parsed.canvas
    assert parsed.problems == () and parsed.repairs == ()
    assert parsed.code_line == 2
    assert [r.description for r in canvas.regions] == [
        "A group of fierce warriors.",
        "A mighty dragon." if "dragon" in name else "A mighty dinosaur.",
        "A stormy sky with flashes of lightning.",
        "A debris-covered battlefield.",
    ]
    assert [r.distance_to_viewer for r in canvas.regions] == [5.0, 7.0, 10.0, 5.0]
    assert canvas.regions[0].location is Location.LEFT
    assert canvas.regions[2].area is Area.LARGE_HORIZONTAL
    assert canvas.global_description.color == "darkslategray"
    assert len(canvas.global_description.detailed_descriptions) == 8
    # Both quote styles and the curly apostrophe survive as written.
    details = canvas.regions[1].detailed_descriptions
    assert details[2].startswith("The dragon's eyes" if "dragon" in name else "The dinosaur's")
    if "dragon" in name:
        assert details[4].startswith("The dragon’s body")
    assert parsed.region_lines == (21, 42, 63, 83)


def test_positional_arguments_as_the_signatures_allow() -> None:
    text = fenced(
        INIT,
        "canvas.set_global_description('A room.', ['Quiet.'], 'room', 'white')",
        "canvas.add_local_description('on the left', 'no offset', 'a small vertical area', 3, "
        "'A lamp.', ['Bright.'], 'lamp', 'Warm.', 'Photo.', 'Sharp.', 'gold')",
        "canvas.add_local_description('on the right', 'no offset', 'a small vertical area', "
        "distance_to_viewer=2.5, description='A chair.', detailed_descriptions=[], tags='chair',"
        " atmosphere='', style='', quality_meta='', HTML_web_color_name='brown')",
    )
    canvas = parse_canvas(text)
    assert canvas.global_description.tags == "room"
    assert canvas.regions[0].area is Area.SMALL_VERTICAL
    assert canvas.regions[0].distance_to_viewer == 3.0
    assert canvas.regions[1].description == "A chair."


def test_implicit_string_concatenation_is_one_literal() -> None:
    text = fenced(INIT, GLOBAL.replace("'A cat and a dog.'", "'A cat '\n    'and a dog.'"))
    assert parse_canvas(text).global_description.description == "A cat and a dog."


def test_comments_and_blank_lines_are_fine() -> None:
    text = fenced("# start", "", INIT, "# the whole picture", GLOBAL, "  # trailing comment")
    assert parse_canvas(text).regions == []


def test_loose_values_are_repaired_and_reported_with_positions() -> None:
    text = fenced(INIT, GLOBAL, region(location="left", offset="Slightly Upper", color="Dark Grey"))
    parsed = parse_answer(text)
    r = parsed.canvas.regions[0]
    assert (r.location, r.offset, r.color) == (Location.LEFT, Offset.UPPER, "darkgrey")
    assert [str(p) for p in parsed.repairs] == [
        "line 12, column 14: location 'left' read as 'on the left'",
        "line 13, column 12: offset 'Slightly Upper' read as 'slightly to the upper'",
        "line 22, column 25: HTML_web_color_name 'Dark Grey' read as 'darkgrey'",
    ]
    assert parsed.problems == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the answer has no ```python code block"),
        ("Just prose, no code.", "the answer has no ```python code block"),
        (fenced(INIT), "never calls canvas.set_global_description"),
        (fenced(GLOBAL), "line 4, column 1: canvas.set_global_description(...) before canvas = "),
        (fenced(INIT, GLOBAL, INIT), "line 11, column 1: canvas = Canvas() appears twice"),
        (
            fenced(INIT, GLOBAL, GLOBAL),
            "line 11, column 1: set_global_description called again (line 5 already did)",
        ),
        (fenced(INIT, region(), GLOBAL), "line 5, column 1: add_local_description before set_"),
        (fenced(INIT, "canvas.process()"), "Canvas has no method 'process'"),
        (fenced(INIT, "canvas.set_global_description('a', [], 'b')"), "missing argument 'HTML_"),
        (
            fenced(INIT, "canvas.set_global_description('a', [], 'b', 'red', 'x')"),
            "line 5, column 52: set_global_description takes 4 arguments, got 5 positional",
        ),
        (
            fenced(INIT, GLOBAL.replace("tags=", "tag=")),
            "line 8, column 9: set_global_description has no argument 'tag' (did you mean 'tags'?)",
        ),
        (
            fenced(INIT, "canvas.set_global_description('a', [], 'b', 'red', tags='c')"),
            "got argument 'tags' twice",
        ),
        (
            fenced(INIT, GLOBAL.replace("['The cat sleeps.', 'The dog watches.']", "'x'")),
            "line 7, column 27: detailed_descriptions must be a list of strings, found a str",
        ),
        (
            fenced(INIT, GLOBAL.replace("'The dog watches.'", "42")),
            "line 7, column 47: detailed_descriptions[1] must be a string literal, "
            "found an int literal",
        ),
        (
            fenced(INIT, GLOBAL.replace("'The dog watches.'", "('a', 'b')")),
            "line 7, column 47: brackets nested deeper than 2 levels (nested lists?)",
        ),
        (fenced(INIT, GLOBAL, region(distance="0")), "distance_to_viewer must be greater than 0"),
        (fenced(INIT, GLOBAL, region(area="huge")), "area 'huge' is not close to any allowed"),
    ],
)
def test_strict_errors_say_what_and_where(text: str, message: str) -> None:
    with pytest.raises(CanvasParseError) as info:
        parse_answer(text)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_the_error_lists_every_problem() -> None:
    text = fenced(INIT, GLOBAL, region(area="huge"), region(color="zzzzzz"))
    with pytest.raises(CanvasParseError) as info:
        parse_answer(text)
    # Strict mode stops at the first problem: nothing after it is trusted.
    assert len(info.value.problems) == 1
    assert info.value.problems[0].line == 14


def test_problem_lines_and_columns_count_characters_not_bytes() -> None:
    text = fenced(INIT, GLOBAL.replace("'The cat sleeps.'", "'Ünïcødé ✓ 😺', x"))
    with pytest.raises(CanvasParseError) as info:
        parse_answer(text)
    problem = info.value.problems[0]
    line = text.split("\n")[problem.line - 1]
    assert line[problem.column - 1 :].startswith("x")


# --- lenient mode -------------------------------------------------------------------------


def test_lenient_without_fences_reads_the_answer_as_code() -> None:
    text = "Sure! Here it is.\n" + "\n".join([INIT, GLOBAL, region()]) + "\nHope this helps!\n"
    with pytest.raises(CanvasParseError, match="no ```python code block"):
        parse_answer(text)
    parsed = parse_answer(text, lenient=True)
    assert len(parsed.canvas.regions) == 1
    assert str(parsed.problems[0]) == "line 2: no ```python code block: reading the answer as code"
    assert parsed.code_line == 2
    # The trailing prose is reported and skipped, not executed or fatal.
    assert parsed.problems[-1].line == 22


def test_lenient_takes_an_unlabelled_fence() -> None:
    text = "```\n" + "\n".join([INIT, GLOBAL]) + "\n```\n"
    parsed = parse_answer(text, lenient=True)
    assert str(parsed.problems[0]) == "line 1: the code block is not marked ```python"
    assert parsed.canvas.global_description.description == "A cat and a dog."


def test_lenient_truncated_answer_keeps_complete_statements() -> None:
    full = fenced(INIT, GLOBAL, region("A cat."), region("A dog.", "on the right"))
    cut = full[: full.index("A dog.") + 3]  # the model hit its token limit mid-region
    with pytest.raises(CanvasParseError, match="never closed"):
        parse_answer(cut)
    parsed = parse_answer(cut, lenient=True)
    assert [r.description for r in parsed.canvas.regions] == ["A cat."]
    assert [str(p) for p in parsed.problems] == [
        "line 3: the ```python block is never closed (the answer looks truncated)",
        "line 24: the code ends inside this statement (the answer looks truncated)",
    ]


def test_lenient_skips_one_bad_region_and_reads_on() -> None:
    bad = region("A bird.", location="nowhere at all")
    broken = region("A fish.").replace("offset='no offset',", "offset='no offset'")
    text = fenced(INIT, GLOBAL, region("A cat."), bad, broken, region("A dog.", "on the right"))
    parsed = parse_answer(text, lenient=True)
    assert [r.description for r in parsed.canvas.regions] == ["A cat.", "A dog."]
    assert [str(p) for p in parsed.problems] == [
        "line 25, column 14: location 'nowhere at all' is not close to any allowed value",
        "line 39, column 12: syntax error: invalid syntax. Perhaps you forgot a comma?",
    ]
    assert parsed.region_lines == (11, 50)


def test_lenient_reads_an_indented_block() -> None:
    code = "\n".join("    " + line for line in "\n".join([INIT, GLOBAL, region()]).split("\n"))
    text = "```python\n" + code + "\n```\n"
    with pytest.raises(CanvasParseError, match="syntax error: unexpected indent"):
        parse_answer(text)
    parsed = parse_answer(text, lenient=True)
    assert len(parsed.canvas.regions) == 1
    assert str(parsed.problems[0]) == "line 2: the code is indented by 4; read it dedented"


def test_lenient_still_needs_a_global_description() -> None:
    with pytest.raises(CanvasParseError, match=r"never calls canvas\.set_global_description"):
        parse_answer(fenced(INIT, region()), lenient=True)


def test_lenient_keeps_the_first_global_description() -> None:
    second = GLOBAL.replace("A cat and a dog.", "Something else.")
    parsed = parse_answer(fenced(INIT, GLOBAL, second, region()), lenient=True)
    assert parsed.canvas.global_description.description == "A cat and a dog."
    assert "called again (line 5 already did)" in str(parsed.problems[0])


def test_crlf_answers_read_like_lf() -> None:
    text = answer()
    assert parse_canvas(text.replace("\n", "\r\n")) == parse_canvas(text)


def test_a_second_python_block_is_reported_not_silently_ignored() -> None:
    from presample.canvas.parse import CanvasParseError, parse_answer

    block = (
        "```python\ncanvas = Canvas()\ncanvas.set_global_description(description='a {0}', "
        "detailed_descriptions=['x'], tags='x', HTML_web_color_name='red')\n```\n"
    )
    answer = "Here it is:\n" + block.format("cat") + "\nOr:\n" + block.format("dog")
    lenient = parse_answer(answer, lenient=True)
    assert lenient.canvas.global_description.description == "a cat"
    assert any("2 ```python blocks" in p.message for p in lenient.problems)
    try:
        parse_answer(answer)
    except CanvasParseError as exc:
        assert "only the first is read" in str(exc)
    else:
        raise AssertionError("strict parsing accepted an ambiguous answer")
