"""Templates and escaping, pinned to tipo-kgen 0.3.1's formatter."""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURES, read_jsonl

from presample.formatting import (
    PLACEHOLDERS,
    REFERENCE_TEMPLATE_NAMES,
    TEMPLATES,
    Target,
    apply_template,
    escape,
    resolve_template,
)

KGEN = FIXTURES / "kgen_0.3.1"
CASES = read_jsonl(KGEN / "format.jsonl")


def test_templates_equal_the_reference() -> None:
    reference = json.loads((KGEN / "templates.json").read_text(encoding="utf-8"))
    formats = reference.get("TIPO_DEFAULT_FORMAT", reference)
    for ref_name, ours in REFERENCE_TEMPLATE_NAMES.items():
        assert TEMPLATES[ours] == formats[ref_name]


def _empty_text_placeholder(case: dict) -> bool:
    # Documented deviation: an empty <|extended|>./<|generated|>. leaves no "."
    values = case["tag_map"]
    template = case["template"]
    text_empty = not values.get("extended") and not values.get("generated")
    gen_empty = not values.get("generated")
    return ("<|extended|>." in template and text_empty) or (
        "<|generated|>." in template and gen_empty
    )


@pytest.mark.parametrize("case", [c for c in CASES if not _empty_text_placeholder(c)])
def test_matches_reference(case: dict) -> None:
    assert apply_template(case["tag_map"], case["template"]) == case["expected"]


def test_enough_reference_cases() -> None:
    assert len([c for c in CASES if not _empty_text_placeholder(c)]) >= 30


def test_empty_caption_leaves_no_stray_full_stop() -> None:
    values: dict[str, object] = {key: [] for key in PLACEHOLDERS}
    values.update(
        special=["1girl"], general=["smile"], quality=["masterpiece"], extended="", generated=""
    )
    assert apply_template(values, TEMPLATES["both_tag_first"]) == (
        # The space before the newline is the reference's; harmless to CLIP.
        "1girl, \n\nsmile,\n\nmasterpiece"
    )


def test_extended_falls_back_to_generated() -> None:
    values = {"general": ["cat"], "extended": "", "generated": "A cat sleeps"}
    assert apply_template(values, TEMPLATES["nl"]) == "A cat sleeps."


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (Target.A1111, r"ganyu \(genshin impact\), \[draft\], \m/, end\\"),
        (Target.COMFYUI, r"ganyu \(genshin impact\), [draft], \m/, end\\"),
        (Target.PLAIN, "ganyu (genshin impact), [draft], \\m/, end\\"),
    ],
)
def test_escape_per_target(target: Target, expected: str) -> None:
    assert escape("ganyu (genshin impact), [draft], \\m/, end\\", target) == expected


def test_resolve_template() -> None:
    assert resolve_template("nl") == "<|extended|>."
    assert resolve_template("Both, tag first (recommend)") == TEMPLATES["both_tag_first"]
    assert resolve_template("<|general|> -- <|extended|>") == "<|general|> -- <|extended|>"
    with pytest.raises(ValueError, match="unknown template"):
        resolve_template("fancy")
    with pytest.raises(ValueError, match=r"unknown placeholder\(s\) <\|artists\|>"):
        resolve_template("<|artists|>, <|general|>")
