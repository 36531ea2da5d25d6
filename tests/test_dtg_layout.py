"""The DanTagGen layout, pinned to strings captured from tipo-kgen 0.3.1."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, read_jsonl

from presample.dtg import DTG_SPECIAL_TOKENS, dtg_input, parse_dtg_output
from presample.tipo import Length

CASES = read_jsonl(FIXTURES / "kgen_0.3.1" / "dtg_inputs.jsonl")


def _is_deviation(case: dict) -> bool:
    tags = case["tag_map"]
    # Documented deviations: the reference's "general: , x" / dangling "x, " line,
    # and its empty quality line for a present-but-empty quality list.
    one_side_empty = not tags.get("special") or not tags.get("general")
    empty_quality = case["have_quality"] and "quality" in tags and not tags["quality"]
    return one_side_empty or empty_quality


@pytest.mark.parametrize("case", [c for c in CASES if not _is_deviation(c)])
def test_matches_reference(case: dict) -> None:
    text = dtg_input(
        case["tag_map"],
        Length(case["target"] or "long"),
        case["aspect_ratio"],
        quality=case["have_quality"],
    )
    assert text == case["expected"]


def test_enough_reference_cases_compared() -> None:
    assert len([c for c in CASES if not _is_deviation(c)]) >= 50


@pytest.mark.parametrize("case", [c for c in CASES if _is_deviation(c)])
def test_deviations_differ_only_where_documented(case: dict) -> None:
    ours = dtg_input(
        case["tag_map"],
        Length(case["target"] or "long"),
        case["aspect_ratio"],
        quality=case["have_quality"],
    )
    ref = case["expected"]
    ref = ref.replace("general: , ", "general: ").replace(", <|input_end|>", "<|input_end|>")
    ref = ref.replace("general: ,<|input_end|>", "general: <|input_end|>")
    ref = ref.replace("quality: \n", "quality: masterpiece\n")
    assert ours == ref


def test_spec_example() -> None:
    tags = {"special": ["1girl"], "general": ["solo", "dragon girl", "dragon horns"],
            "rating": ["safe"], "quality": ["masterpiece"]}  # fmt: skip
    assert dtg_input(tags, Length.LONG, 1.0, quality=True) == (
        "quality: masterpiece\nrating: safe\nartist: <|empty|>\ncharacters: <|empty|>\n"
        "copyrights: <|empty|>\naspect ratio: 1.0\ntarget: <|long|>\n"
        "general: 1girl, solo, dragon girl, dragon horns<|input_end|>"
    )


def test_parse_output_returns_new_tags_once() -> None:
    text = "<s> general: 1girl, solo<|input_end|>, red eyes, horns, red eyes, dress</s>"
    assert parse_dtg_output(text) == ["red eyes", "horns", "dress"]
    assert parse_dtg_output("no marker") == []


def test_special_token_ids() -> None:
    assert DTG_SPECIAL_TOKENS[0] == "<|input_end|>"
    assert DTG_SPECIAL_TOKENS[1] == "<|empty|>"
    assert DTG_SPECIAL_TOKENS[5] == "<|very_long|>"
