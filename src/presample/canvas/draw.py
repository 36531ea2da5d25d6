"""Pictures of a canvas for people: the labelled layout, and mask files for other tools.

Needs numpy and Pillow (the ``canvas`` extra), imported here only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .layout import GRID, composition, conditions, resize_nearest_exact, save_png
from .model import Canvas

if TYPE_CHECKING:
    from PIL import Image as PILImage

LABEL_CHARS = 48


def _ink(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``rgb`` (Rec. 601 luma)."""
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (0, 0, 0) if luma > 140 else (255, 255, 255)


def layout_image(canvas: Canvas, width: int = 720, height: int = 720) -> PILImage.Image:
    """The colour composition upscaled, each region's box outlined and labelled.

    Labels are numbered like the layers (1 = the farthest region) and carry the
    region's description, so the picture reads against ``canvas parse``.
    """
    from PIL import Image, ImageDraw, ImageFont

    picture = Image.fromarray(resize_nearest_exact(composition(canvas), width, height))
    draw = ImageDraw.Draw(picture)
    size = max(10, min(width, height) // 48)
    try:
        font = ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType
    except (TypeError, AttributeError, OSError):
        font = ImageFont.load_default()
    sx, sy = width / GRID, height / GRID
    used: dict[tuple[int, int], int] = {}
    for number, layer in enumerate(conditions(canvas)[1:], start=1):
        assert layer.region is not None
        region = canvas.regions[layer.region]
        box = layer.box
        x0, y0 = round(box.left * sx), round(box.top * sy)
        x1, y1 = max(x0, round(box.right * sx) - 1), max(y0, round(box.bottom * sy) - 1)
        # A dark then a light line: visible on any colour underneath.
        draw.rectangle((x0, y0, x1, y1), outline=(0, 0, 0), width=3)
        draw.rectangle((x0 + 1, y0 + 1, x1 - 1, y1 - 1), outline=(255, 255, 255), width=1)
        text = " ".join(region.description.split())
        if len(text) > LABEL_CHARS:
            text = text[: LABEL_CHARS - 3] + "..."
        label = f"{number}. {text}"
        # Stack labels that would start at the same corner instead of overprinting.
        stack = used.get((x0, y0), 0)
        used[(x0, y0)] = stack + 1
        tx, ty = x0 + 5, y0 + 5 + stack * (size + 6)
        left, top, right, bottom = draw.textbbox((tx, ty), label, font=font)
        draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=region.rgb)
        draw.text((tx, ty), label, fill=_ink(region.rgb), font=font)
    return picture


def write_masks(canvas: Canvas, directory: str | Path, width: int, height: int) -> list[Path]:
    """One mask PNG per layer, ``composition.png`` and ``layers.json`` describing them.

    Masks are white inside the layer's box, resized nearest-exact to
    ``width x height``; files are numbered in layer order (global first, then
    regions far to near), so a directory listing is the paint order.
    """
    out = Path(directory)
    written: list[Path] = []
    described = []
    for number, layer in enumerate(conditions(canvas)):
        name = "global" if layer.region is None else f"region{layer.region}"
        path = out / f"{number:02d}_{name}.png"
        written.append(save_png(layer.mask(width, height), path))
        described.append(
            {
                "file": path.name,
                **layer.to_dict(),
                "box_normalised": [round(v, 6) for v in layer.box.normalised()],
            }
        )
    picture = resize_nearest_exact(composition(canvas), width, height)
    written.append(save_png(np.ascontiguousarray(picture), out / "composition.png"))
    index = out / "layers.json"
    document = {"width": width, "height": height, "grid": GRID, "layers": described}
    index.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written.append(index)
    return written
