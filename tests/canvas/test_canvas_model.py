"""The canvas as data: enums, colours, Omost's repair and sentence rules, JSON, validation."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from presample.canvas import (
    COLORS,
    Area,
    Canvas,
    GlobalDescription,
    Location,
    Offset,
    Region,
    canvas_answer,
    closest_choice,
    parse_answer,
    sentence,
)
from presample.canvas.model import CHOICES, MAX_REGIONS, MAX_TEXT_CHARS

from .answers import FIXTURES, SEED_ANSWERS, seed_answer

REFERENCE = json.loads((FIXTURES / "reference.json").read_text(encoding="utf-8"))


def test_enums_are_omosts_values() -> None:
    assert [m.value for m in Location] == [
        "in the center", "on the left", "on the right", "on the top", "on the bottom",
        "on the top-left", "on the top-right", "on the bottom-left", "on the bottom-right",
    ]  # fmt: skip
    assert len(Offset) == 9 and Offset.NONE.value == "no offset"
    assert len(Area) == 9 and Area.LARGE_HORIZONTAL.value == "a large horizontal area"


def test_colour_table_has_149_names_with_both_greys_and_navyblue() -> None:
    assert len(COLORS) == 149
    assert COLORS["darkgray"] == COLORS["darkgrey"] == (169, 169, 169)
    assert COLORS["navyblue"] == COLORS["navy"] == (0, 0, 128)
    assert COLORS["rebeccapurple"] == (102, 51, 153)
    assert all(len(rgb) == 3 and all(0 <= c <= 255 for c in rgb) for rgb in COLORS.values())


def test_colour_table_equals_the_seed(shared_data) -> None:  # type: ignore[no-untyped-def]
    seed = shared_data.parent / "seeds" / "003_d8fc8913ba4bb648.txt"
    if not seed.is_file():
        pytest.skip("seed 003 not found")
    text = seed.read_text(encoding="utf-8")
    literal = re.search(r"possible_HTML_web_color_names = (\{.*?\n\})", text, re.S)
    assert literal is not None
    # The seed's table is a dict display of literals; strip its comment and read it.
    table = ast.literal_eval(re.sub(r"#[^\n]*", "", literal.group(1)))
    assert table == COLORS
    assert list(table) == list(COLORS)


@pytest.mark.parametrize(("value", "expected"), sorted(REFERENCE["repairs"].items()))
def test_closest_choice_repairs_like_omost(value: str, expected: str | None) -> None:
    # The reference ran Omost's closest_name against the field each value was meant for;
    # here the field is whichever table the expected value lives in.
    fields = [f for f, options in CHOICES.items() if expected in options] or list(CHOICES)
    if expected is None:
        original = {"xyz": "color", "middle": "location"}[value]
        with pytest.raises(ValueError, match="not close to any allowed value"):
            closest_choice(value, CHOICES[original], original)
    else:
        assert closest_choice(value, CHOICES[fields[0]], fields[0]) == expected


def test_closest_choice_examples_from_the_spec() -> None:
    assert closest_choice("left", CHOICES["location"]) == "on the left"
    assert closest_choice("Dark Grey", CHOICES["color"]) == "darkgrey"
    assert closest_choice("ON THE LEFT", CHOICES["location"]) == "on the left"
    with pytest.raises(ValueError, match="location 'somewhere' is not close"):
        closest_choice("somewhere", CHOICES["location"], "location")
    # A value far longer than any choice cannot match; it fails fast with a short message.
    with pytest.raises(ValueError, match=r"\.\.\.' is not close"):
        closest_choice("x" * 100_000, CHOICES["color"], "color")


def test_sentence_normalisation() -> None:
    assert sentence("A cat") == "A cat."
    assert sentence("A cat.") == "A cat."
    assert sentence(" A cat... ") == "A cat."
    assert sentence(",.A cat,") == "A cat."
    assert sentence("") == "."
    assert sentence("Is it?") == "Is it?."  # Omost only strips ',. '
    assert sentence(sentence("x")) == "x."


def test_models_repair_loose_values_and_accept_omost_names() -> None:
    g = GlobalDescription(description="A room.", HTML_web_color_name="Dark Grey")
    assert g.color == "darkgrey" and g.rgb == (169, 169, 169)
    r = Region.model_validate(
        {
            "location": "left",
            "offset": "slightly upper",
            "area": "large square",
            "distance_to_viewer": 3,
            "description": "A lamp.",
            "color": "gold",
        }
    )
    assert r.location is Location.LEFT and r.offset is Offset.UPPER
    assert r.area is Area.LARGE_SQUARE and r.distance_to_viewer == 3.0


def _seed_canvas() -> Canvas:
    return parse_answer(seed_answer(SEED_ANSWERS[0])).canvas


def test_json_round_trip() -> None:
    canvas = _seed_canvas()
    text = canvas.to_json()
    data = json.loads(text)
    assert data["regions"][0]["location"] == "on the left"
    assert data["global_description"]["color"] == "darkslategray"
    assert Canvas.from_json(text) == canvas
    assert Canvas.from_dict(canvas.to_dict()) == canvas


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "global_description: Field required"),
        (
            {"global_description": {"description": "x", "color": "red"}, "regions": [{}]},
            "regions.0.location: Field required",
        ),
        (
            {"global_description": {"description": "x", "color": "nocolour"}},
            "global_description.color: Value error, color 'nocolour' is not close",
        ),
        (
            {"global_description": {"description": "x", "color": "red", "colour": "red"}},
            "global_description.colour: Extra inputs are not permitted",
        ),
        (
            {"global_description": {"description": "x" * (MAX_TEXT_CHARS + 1), "color": "red"}},
            f"at most {MAX_TEXT_CHARS} characters",
        ),
    ],
)
def test_validation_messages_name_the_field(data: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        Canvas.from_dict(data)
    assert str(info.value).startswith("invalid canvas: ")
    assert message.replace("Value error, ", "") in str(info.value)


def test_region_distance_must_be_a_positive_finite_number() -> None:
    base = {"location": "in the center", "offset": "no offset", "area": "a small square area",
            "description": "x", "color": "red"}  # fmt: skip
    cases = [(0, "greater than 0"), (-1, "greater than 0"), (float("inf"), "finite"),
             ("5", "valid number"), (True, "valid number")]  # fmt: skip
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            Region.model_validate({**base, "distance_to_viewer": bad})


def test_too_many_regions() -> None:
    canvas = _seed_canvas()
    data = canvas.to_dict()
    data["regions"] = data["regions"][:1] * (MAX_REGIONS + 1)
    with pytest.raises(ValueError, match=f"at most {MAX_REGIONS} items"):
        Canvas.from_dict(data)


def test_from_json_errors_are_one_line() -> None:
    with pytest.raises(ValueError, match=r"not valid JSON: .* at line 1 column 2"):
        Canvas.from_json("{")
    with pytest.raises(ValueError, match="must be a JSON object, got list"):
        Canvas.from_json("[]")


texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@st.composite
def canvases(draw: st.DrawFn) -> Canvas:
    colour = st.sampled_from(sorted(COLORS))
    regions = [
        Region(
            location=draw(st.sampled_from(list(Location))),
            offset=draw(st.sampled_from(list(Offset))),
            area=draw(st.sampled_from(list(Area))),
            distance_to_viewer=draw(st.floats(0.001, 1e6)),
            description=draw(texts),
            detailed_descriptions=draw(st.lists(texts, max_size=3)),
            tags=draw(texts),
            atmosphere=draw(texts),
            style=draw(texts),
            quality_meta=draw(texts),
            color=draw(colour),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    g = GlobalDescription(
        description=draw(texts),
        detailed_descriptions=draw(st.lists(texts, max_size=3)),
        tags=draw(texts),
        color=draw(colour),
    )
    return Canvas(global_description=g, regions=regions)


@settings(max_examples=60, deadline=None)
@given(canvases())
def test_written_code_reads_back_to_the_same_canvas(canvas: Canvas) -> None:
    # Any text survives as a literal: quotes, backslashes, newlines, control characters.
    parsed = parse_answer(canvas_answer(canvas))
    assert parsed.canvas == canvas
    assert parsed.problems == () and parsed.repairs == ()
    assert Canvas.from_json(canvas.to_json()) == canvas


def test_importing_presample_or_the_canvas_package_does_not_load_numpy() -> None:
    code = (
        "import sys, presample, presample.canvas, presample.cli.canvas\n"
        "heavy = [m for m in ('numpy', 'PIL', 'instant_clip_tokenizer') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
