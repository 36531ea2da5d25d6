"""Where things go: boxes on the 90 grid, masks, layer order, the colour picture, conditions.

Every number here is Omost's (``lib_omost/canvas.py``, ``Canvas.process``),
restated in ``shared/spec/OMOST.md``; the tests pin the two seed transcripts
to values the original code produces. numpy and Pillow are imported inside
the functions that need them, so reading and validating canvases stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .model import AREA_WH, GRID, LOCATION_XY, OFFSET_XY, Area, Canvas, Location, Offset, sentence

if TYPE_CHECKING:
    import numpy as np

BLEND = 0.7
"""A region's colour weight over what lies below it in the composition image."""
BELOW = 0.3
"""The weight of what lies below. Not ``1 - BLEND``: that is 0.30000000000000004 in
floating point, and the composition must match Omost's bytes."""


@dataclass(frozen=True)
class Box:
    """A rectangle on the 90 grid: rows ``top..bottom-1``, columns ``left..right-1``."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    def normalised(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` in 0..1, the GLIGEN / ComfyUI convention."""
        return (self.left / GRID, self.top / GRID, self.right / GRID, self.bottom / GRID)

    def as_tuple(self) -> tuple[int, int, int, int]:
        """Omost's ``rect`` order: ``(top, bottom, left, right)``."""
        return (self.top, self.bottom, self.left, self.right)


FULL = Box(0, GRID, 0, GRID)
"""The global layer's box: the whole canvas."""


def _clamp(value: int) -> int:
    return max(0, min(GRID, value))


def region_box(location: Location | str, offset: Offset | str, area: Area | str) -> Box:
    """Omost's box: centre plus offset, half the size each way (integer halves), clamped."""
    x, y = LOCATION_XY[Location(location)]
    dx, dy = OFFSET_XY[Offset(offset)]
    w, h = AREA_WH[Area(area)]
    cx, cy = x + dx, y + dy
    return Box(
        top=_clamp(cy - h // 2),
        bottom=_clamp(cy + h // 2),
        left=_clamp(cx - w // 2),
        right=_clamp(cx + w // 2),
    )


def layer_order(canvas: Canvas) -> list[int]:
    """Region indexes far to near (largest ``distance_to_viewer`` first).

    Python's sort is stable with ``reverse=True`` too, so regions at the same
    distance keep the answer's order, as in Omost.
    """
    return sorted(
        range(len(canvas.regions)),
        key=lambda i: canvas.regions[i].distance_to_viewer,
        reverse=True,
    )


def _source_indices(size: int, source: int = GRID) -> np.ndarray:
    """For each output pixel, the source pixel nearest-exact resizing samples.

    PyTorch's ``nearest-exact`` takes source index ``floor((i + 0.5) * in / out)``;
    integer arithmetic here avoids its float rounding at exact boundaries.
    """
    import numpy as np

    if size < 1:
        raise ValueError(f"image size must be at least 1, got {size}")
    i = np.arange(size, dtype=np.int64)
    return np.minimum(((2 * i + 1) * source) // (2 * size), source - 1)


def resize_nearest_exact(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an ``H x W`` or ``H x W x C`` array with nearest-exact sampling."""
    import numpy as np

    rows = _source_indices(height, image.shape[0])
    cols = _source_indices(width, image.shape[1])
    return image[np.ix_(rows, cols)]


def box_mask(box: Box, width: int = GRID, height: int = GRID) -> np.ndarray:
    """A boolean ``height x width`` mask of ``box``, the 90-grid mask resized nearest-exact."""
    import numpy as np

    grid = np.zeros((GRID, GRID), dtype=bool)
    grid[box.top : box.bottom, box.left : box.right] = True
    if (width, height) == (GRID, GRID):
        return grid
    return resize_nearest_exact(grid, width, height)


def composition(canvas: Canvas) -> np.ndarray:
    """The 90 x 90 RGB colour picture of the layout (``uint8``), as Omost's initial latent.

    Global colour first, then each region far to near as
    ``0.7 * colour + 0.3 * below``. The arithmetic mirrors Omost's numpy types
    (a float32 canvas, each blend computed in float64 and stored back into
    float32, truncation to ``uint8`` at the end) so the bytes match.
    """
    import numpy as np

    image = np.zeros((GRID, GRID, 3), dtype=np.float32) + np.array(
        canvas.global_description.rgb, dtype=np.uint8
    )
    for index in layer_order(canvas):
        region = canvas.regions[index]
        box = region_box(region.location, region.offset, region.area)
        colour = np.array(region.rgb, dtype=np.uint8).astype(np.float64)
        patch = image[box.top : box.bottom, box.left : box.right]
        image[box.top : box.bottom, box.left : box.right] = BLEND * colour + BELOW * patch
    return image.clip(0, 255).astype(np.uint8)


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write an RGB (``H x W x 3``) or grey/boolean (``H x W``) array as PNG."""
    import numpy as np
    from PIL import Image

    array = np.asarray(image)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    target = Path(path)
    Image.fromarray(array.astype(np.uint8)).save(target, format="PNG")
    return target


@dataclass(frozen=True)
class Condition:
    """What a regional renderer receives for one layer.

    ``prefixes`` are repeated in front of every bag of ``suffixes`` (see
    ``tokens.py``); both are already normalised to sentences.
    """

    kind: Literal["global", "region"]
    region: int | None
    """The region's index in ``canvas.regions``; ``None`` for the global layer."""
    box: Box
    prefixes: tuple[str, ...]
    suffixes: tuple[str, ...]

    def mask(self, width: int = GRID, height: int = GRID) -> np.ndarray:
        return box_mask(self.box, width, height)

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "region": self.region,
            "box": list(self.box.as_tuple()),
            "prefixes": list(self.prefixes),
            "suffixes": list(self.suffixes),
        }


def conditions(canvas: Canvas) -> list[Condition]:
    """One condition per layer: the global one first, then the regions far to near.

    Global: prefixes = [description]; suffixes = detailed descriptions + [tags].
    Region: prefixes = [global description, description]; suffixes = detailed
    descriptions + [tags, atmosphere, style, quality_meta]. Every piece goes
    through ``sentence`` (Omost's ``safe_str``), empty ones included: Omost
    keeps them as ``"."``.
    """
    g = canvas.global_description
    head = sentence(g.description)
    layers = [
        Condition(
            kind="global",
            region=None,
            box=FULL,
            prefixes=(head,),
            suffixes=tuple(sentence(t) for t in [*g.detailed_descriptions, g.tags]),
        )
    ]
    for index in layer_order(canvas):
        r = canvas.regions[index]
        pieces = [*r.detailed_descriptions, r.tags, r.atmosphere, r.style, r.quality_meta]
        layers.append(
            Condition(
                kind="region",
                region=index,
                box=region_box(r.location, r.offset, r.area),
                prefixes=(head, sentence(r.description)),
                suffixes=tuple(sentence(t) for t in pieces),
            )
        )
    return layers
