"""An Omost canvas as plain, validated data.

Omost models answer with Python code against a virtual ``Canvas``; ``parse.py``
reads that code without running it and builds the models below. They hold the
answer's text as written (normalisation to sentences happens when conditions
are built) and the loose values (location, offset, area, colour) already
repaired to Omost's allowed values, so a canvas always lays out.

The enums, the 90-grid numbers and the repair rule are Omost's
(``lib_omost/canvas.py``), checked against ``shared/spec/OMOST.md``.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from ..request import describe_validation_error
from .colors import COLORS

GRID = 90
"""Omost lays every canvas out on a 90 x 90 grid."""

# Generous for real answers (a sub-prompt is under 75 CLIP tokens, a tag line a
# few hundred characters), small enough that a hostile answer cannot make us
# hold or tokenise megabytes.
MAX_TEXT_CHARS = 4000
MAX_DETAILS = 64
MAX_REGIONS = 64

Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
Distance = Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)]


class Location(str, Enum):
    """Where a region's centre sits (3 x 3 cells)."""

    CENTER = "in the center"
    LEFT = "on the left"
    RIGHT = "on the right"
    TOP = "on the top"
    BOTTOM = "on the bottom"
    TOP_LEFT = "on the top-left"
    TOP_RIGHT = "on the top-right"
    BOTTOM_LEFT = "on the bottom-left"
    BOTTOM_RIGHT = "on the bottom-right"

    def __str__(self) -> str:
        return self.value


class Offset(str, Enum):
    """A nudge of the centre by 10 grid cells."""

    NONE = "no offset"
    LEFT = "slightly to the left"
    RIGHT = "slightly to the right"
    UPPER = "slightly to the upper"
    LOWER = "slightly to the lower"
    UPPER_LEFT = "slightly to the upper-left"
    UPPER_RIGHT = "slightly to the upper-right"
    LOWER_LEFT = "slightly to the lower-left"
    LOWER_RIGHT = "slightly to the lower-right"

    def __str__(self) -> str:
        return self.value


class Area(str, Enum):
    """The size and shape of a region's box."""

    SMALL_SQUARE = "a small square area"
    SMALL_VERTICAL = "a small vertical area"
    SMALL_HORIZONTAL = "a small horizontal area"
    MEDIUM_SQUARE = "a medium-sized square area"
    MEDIUM_VERTICAL = "a medium-sized vertical area"
    MEDIUM_HORIZONTAL = "a medium-sized horizontal area"
    LARGE_SQUARE = "a large square area"
    LARGE_VERTICAL = "a large vertical area"
    LARGE_HORIZONTAL = "a large horizontal area"

    def __str__(self) -> str:
        return self.value


# Centre (x, y), offset (dx, dy) and size (w, h), all in grid cells.
LOCATION_XY: dict[Location, tuple[int, int]] = {
    Location.CENTER: (45, 45),
    Location.LEFT: (15, 45),
    Location.RIGHT: (75, 45),
    Location.TOP: (45, 15),
    Location.BOTTOM: (45, 75),
    Location.TOP_LEFT: (15, 15),
    Location.TOP_RIGHT: (75, 15),
    Location.BOTTOM_LEFT: (15, 75),
    Location.BOTTOM_RIGHT: (75, 75),
}
OFFSET_XY: dict[Offset, tuple[int, int]] = {
    Offset.NONE: (0, 0),
    Offset.LEFT: (-10, 0),
    Offset.RIGHT: (10, 0),
    Offset.UPPER: (0, -10),
    Offset.LOWER: (0, 10),
    Offset.UPPER_LEFT: (-10, -10),
    Offset.UPPER_RIGHT: (10, -10),
    Offset.LOWER_LEFT: (-10, 10),
    Offset.LOWER_RIGHT: (10, 10),
}
AREA_WH: dict[Area, tuple[int, int]] = {
    Area.SMALL_SQUARE: (50, 50),
    Area.SMALL_VERTICAL: (40, 60),
    Area.SMALL_HORIZONTAL: (60, 40),
    Area.MEDIUM_SQUARE: (60, 60),
    Area.MEDIUM_VERTICAL: (50, 80),
    Area.MEDIUM_HORIZONTAL: (80, 50),
    Area.LARGE_SQUARE: (70, 70),
    Area.LARGE_VERTICAL: (60, 90),
    Area.LARGE_HORIZONTAL: (90, 60),
}

CHOICES: dict[str, tuple[str, ...]] = {
    "location": tuple(m.value for m in Location),
    "offset": tuple(m.value for m in Offset),
    "area": tuple(m.value for m in Area),
    "color": tuple(COLORS),
}
"""The allowed values of each loose field, in Omost's order."""


def closest_choice(value: str, choices: Sequence[str], what: str = "value") -> str:
    """Omost's repair of a loose value: lower-case, then the closest allowed value.

    Same rule as Omost's ``closest_name``: ``difflib.get_close_matches`` with
    cutoff 0.5 (``left`` -> ``on the left``, ``Dark Grey`` -> ``darkgrey``).
    Raises ``ValueError`` when nothing is close enough.
    """
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {type(value).__name__}")
    lowered = value.lower()
    if lowered in choices:
        return lowered
    # difflib's ratio is 2*M/(len(a)+len(b)) with M <= the shorter length, so a
    # value over 3x the longest choice can never reach 0.5: skip the (quadratic)
    # matcher for it. This changes no answer, it only bounds the work.
    longest = max(len(c) for c in choices)
    match = (
        difflib.get_close_matches(lowered, list(choices), n=1, cutoff=0.5)
        if len(lowered) <= 3 * longest
        else []
    )
    if not match:
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise ValueError(f"{what} {shown!r} is not close to any allowed value")
    return match[0]


def sentence(text: str) -> str:
    """Omost's ``safe_str``: strip ``,. `` at both ends and end with exactly one period."""
    return text.strip(",. ") + "."


class _Model(BaseModel):
    # Unknown keys are errors: a misspelt "detailed_description" must not vanish.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _repair(value: Any, field: str) -> Any:
    if isinstance(value, Enum):
        return value
    if not isinstance(value, str):
        return value  # let pydantic say what type it wanted
    return closest_choice(value, CHOICES[field], field)


_COLOR_ALIASES = AliasChoices("color", "HTML_web_color_name")


class GlobalDescription(_Model):
    """The whole image: Omost's ``set_global_description``; the farthest layer."""

    description: Text
    detailed_descriptions: list[Text] = Field(default_factory=list, max_length=MAX_DETAILS)
    tags: Text = ""
    color: str = Field(validation_alias=_COLOR_ALIASES, description="one of the 149 names")

    @field_validator("color", mode="before")
    @classmethod
    def _color(cls, value: Any) -> Any:
        return _repair(value, "color")

    @property
    def rgb(self) -> tuple[int, int, int]:
        return COLORS[self.color]


class Region(_Model):
    """One part of the image: Omost's ``add_local_description``."""

    location: Location
    offset: Offset
    area: Area
    distance_to_viewer: Distance = Field(description="only orders layers; larger is farther")
    description: Text
    detailed_descriptions: list[Text] = Field(default_factory=list, max_length=MAX_DETAILS)
    tags: Text = ""
    atmosphere: Text = ""
    style: Text = ""
    quality_meta: Text = ""
    color: str = Field(validation_alias=_COLOR_ALIASES, description="one of the 149 names")

    @field_validator("location", "offset", "area", "color", mode="before")
    @classmethod
    def _loose(cls, value: Any, info: ValidationInfo) -> Any:
        return _repair(value, str(info.field_name))

    @property
    def rgb(self) -> tuple[int, int, int]:
        return COLORS[self.color]


class Canvas(_Model):
    """A global description plus regions, in the order the answer gave them."""

    global_description: GlobalDescription
    regions: list[Region] = Field(default_factory=list, max_length=MAX_REGIONS)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Canvas:
        """Validate plain data; every problem in one ``ValueError`` naming its field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ValueError(f"invalid canvas: {describe_validation_error(exc)}") from None

    @classmethod
    def from_json(cls, text: str) -> Canvas:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"canvas is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        if not isinstance(data, dict):
            raise ValueError(f"canvas must be a JSON object, got {type(data).__name__}")
        return cls.from_dict(data)
