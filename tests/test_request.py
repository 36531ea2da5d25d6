"""The request and result models: JSON round trips and clear validation errors."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from presample.request import (
    MAX_TAGS,
    BanRule,
    PresampleRequest,
    PresampleResult,
    StepResult,
    TagSet,
    describe_validation_error,
)
from presample.tipo import Length, Task


def error_text(**kwargs: object) -> str:
    with pytest.raises(ValidationError) as info:
        PresampleRequest.model_validate(kwargs)
    return describe_validation_error(info.value)


def test_round_trip_through_json() -> None:
    req = PresampleRequest(
        prompt="1girl, (smile:1.2)",
        tags=TagSet(general=["long hair"], artist=["ningen mame"]),
        nl_prompt="A girl.",
        width=832,
        height=1216,
        tag_length="short",
        ban=[BanRule(kind="regex", pattern=r"^red "), BanRule(kind="category", pattern="artist")],
        seed=42,
        template="nl",
    )
    again = PresampleRequest.model_validate_json(req.model_dump_json())
    assert again == req
    assert again.tag_length is Length.SHORT
    assert again.effective_aspect_ratio() == pytest.approx(832 / 1216)

    result = PresampleResult(
        tags=TagSet(special=["1girl"]), prompt="1girl", seed=3,
        steps=[StepResult(task=Task.TAG_TO_LONG, length=Length.LONG, expand=False)],
    )  # fmt: skip
    assert PresampleResult.model_validate_json(result.model_dump_json()) == result
    assert json.loads(result.model_dump_json())["steps"][0]["task"] == "tag_to_long"


def test_tags_are_tidied_and_deduplicated() -> None:
    tags = TagSet(general=["  long   hair ", "long hair", "", "smile"])
    assert tags.general == ["long hair", "smile"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"tag_length": "medium"}, "tag_length: Input should be 'very_short'"),
        ({"prompt": "x" * 1_000_000}, "prompt: String should have at most 100000 characters"),
        ({"tags": {"general": [f"t{i}" for i in range(10_000)]}}, f"at most {MAX_TAGS} tags"),
        ({"tags": {"general": ["a, b"]}}, "cannot contain a comma"),
        ({"tags": {"generals": ["a"]}}, "tags.generals: Extra inputs are not permitted"),
        ({"seed": -5}, "seed: Input should be greater than or equal to -1"),
        ({"width": 512}, "give both width and height"),
        ({"width": 512, "height": 512, "aspect_ratio": 2.0}, "contradicts"),
        ({"ban": [{"kind": "regex", "pattern": "("}]}, "invalid regex"),
        ({"ban": [{"kind": "regex", "pattern": r"(a)\1"}]}, r"invalid regex '(a)\\1'"),
        ({"ban": [{"kind": "regex", "pattern": "(?<!x)hair"}]}, "no backreferences or lookaround"),
        ({"ban": [{"kind": "category", "pattern": "hair"}]}, "unknown category 'hair'"),
        ({"template": "fancy"}, "unknown template 'fancy'"),
        ({"nl_prompt": "a\x00b"}, "NUL"),
    ],
)
def test_validation_errors_name_the_field(payload: dict, message: str) -> None:
    assert message in error_text(**payload)


def test_schema_is_available_for_clients() -> None:
    schema = PresampleRequest.model_json_schema()
    assert "prompt" in schema["properties"]
    assert schema["additionalProperties"] is False


def test_the_public_api_is_small_and_the_layouts_have_their_own_module() -> None:
    import presample
    import presample.layouts

    assert len(presample.__all__) <= 20
    assert {"Presampler", "PresampleRequest", "PresampleResult", "PresampleError"} <= set(
        presample.__all__
    )
    for name in (*presample.__all__, *presample.layouts.__all__):
        assert hasattr(presample if name in presample.__all__ else presample.layouts, name)
