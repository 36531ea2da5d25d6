"""A canvas for the regional renderers people already use: ComfyUI, Regional Prompter, GLIGEN.

Omost's own renderer is one way to honour a canvas; ``shared/spec/OMOST.md``
("Other regional methods the same canvas can feed") lists the others this
module feeds, each from the same layers ``layout.conditions`` builds (global
first, then regions far to near):

- ComfyUI: one ``ConditioningSetMask`` entry per layer (prompt, float mask,
  strength), the global / region strengths of the community port
  (huchenlei/ComfyUI_omost: 0.2 / 0.8) and its two ways of sharing overlaps,
  plus ``ConditioningSetAreaPercentage`` fractions for area conditioning.
- A1111 Regional Prompter, mask mode: ``ADDCOMM`` / ``BREAK`` prompt and the
  colour-coded mask its mask tab reads.
- GLIGEN: one short phrase and one normalised box per region.
- MultiDiffusion: one binary mask per prompt, the background taking the rest.

Everything here is plain data and pure functions; numpy (and Pillow for the
files) load inside the functions, as in the other canvas modules.
"""

from __future__ import annotations

import colorsys
import json
import math
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..formatting import Target, escape
from .layout import Box, Condition, conditions, resize_nearest_exact, save_png
from .model import GRID, Canvas, sentence

if TYPE_CHECKING:
    import numpy as np

    from .tokens import Encode

Overlap = Literal["overlay", "average"]
Resolution = Literal["latent", "pixel"]

GLOBAL_WEIGHT = 0.2
"""The community ComfyUI port's default strength of the global layer."""
REGION_WEIGHT = 0.8
"""... and of every region."""
LATENT_FACTOR = 8
"""Pixels per latent cell for SD 1.5, SDXL, SD3 and Flux VAEs."""
FORMATS = ("comfyui", "regional-prompter", "gligen", "multidiffusion")


# --- text ---------------------------------------------------------------------------------


def layer_text(condition: Condition, *, global_prefix: bool = True) -> str:
    """One layer as one prompt: its prefixes and suffixes joined by spaces.

    Omost keeps an empty field as the sentence ``"."`` (so its bags match the
    original); a text box gains nothing from a lone period, so those go.
    ``global_prefix=False`` drops a region's first prefix (the global
    description), as the ComfyUI port does and as a shared-text scheme
    (Regional Prompter's ``ADDCOMM``) needs to avoid saying it twice.
    """
    prefixes = condition.prefixes
    if not global_prefix and condition.kind == "region":
        prefixes = prefixes[1:]
    return " ".join(p for p in (*prefixes, *condition.suffixes) if p != ".")


def _positive_int(value: Any) -> bool:
    # operator.index accepts numpy integers too; bool is an int but never a size.
    try:
        return not isinstance(value, bool) and operator.index(value) >= 1
    except TypeError:
        return False


def _validate_size(width: int, height: int) -> None:
    for name, value in (("width", width), ("height", height)):
        if not _positive_int(value):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _grid_masks(layers: Sequence[Condition]) -> np.ndarray:
    """The layers' box masks on the 90 grid, stacked ``(layers, 90, 90)`` as float32."""
    import numpy as np

    stack = np.zeros((len(layers), GRID, GRID), dtype=np.float32)
    for i, layer in enumerate(layers):
        box = layer.box
        stack[i, box.top : box.bottom, box.left : box.right] = 1.0
    return stack


def _resize_stack(stack: np.ndarray, width: int, height: int) -> np.ndarray:
    # Nearest-exact resizing only picks source pixels, so it commutes with the
    # per-pixel overlap arithmetic: doing that on the 90 grid first is exact and cheap.
    if (width, height) == (GRID, GRID):
        return stack
    import numpy as np

    resized = resize_nearest_exact(stack.transpose(1, 2, 0), width, height)
    return np.ascontiguousarray(resized.transpose(2, 0, 1))


# --- (b) ComfyUI --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ComfyLayer:
    """One ``ConditioningSetMask`` (or ``ConditioningSetAreaPercentage``) input."""

    kind: Literal["global", "region"]
    region: int | None
    """The region's index in ``canvas.regions``; ``None`` for the global layer."""
    box: Box
    text: str
    """The whole layer as one prompt (escaped for ComfyUI unless asked not to)."""
    bags: tuple[str, ...] | None
    """Omost's sub-prompt bags, one ``CLIPTextEncode`` each, joined with
    ``ConditioningConcat`` for a lossless encoding; ``None`` unless requested."""
    mask: np.ndarray
    """float32 ``mask_height x mask_width`` in [0, 1] after overlap handling."""
    strength: float
    area_percentage: tuple[float, float, float, float]
    """``(width, height, x, y)`` as fractions of the image: the box, ignoring overlaps
    (area conditioning cannot cut holes)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "region": self.region,
            "box": list(self.box.as_tuple()),
            "text": self.text,
            "bags": None if self.bags is None else list(self.bags),
            "strength": self.strength,
            "set_cond_area": "default",
            "area_percentage": dict(
                zip(("width", "height", "x", "y"), self.area_percentage, strict=True)
            ),
            "mask_sum": float(self.mask.sum(dtype="float64")),
        }


@dataclass(frozen=True, eq=False)
class ComfyConditioning:
    """Everything a ComfyUI graph needs to rebuild Omost's regional conditioning."""

    width: int
    height: int
    mask_width: int
    mask_height: int
    resolution: Resolution
    overlap: Overlap
    global_weight: float
    region_weight: float
    layers: tuple[ComfyLayer, ...]

    def to_dict(self, mask_files: Sequence[str] | None = None) -> dict[str, Any]:
        layers = [layer.to_dict() for layer in self.layers]
        if mask_files is not None:
            for layer, name in zip(layers, mask_files, strict=True):
                layer["mask_file"] = name
        return {
            "format": "comfyui",
            "width": self.width,
            "height": self.height,
            "mask_width": self.mask_width,
            "mask_height": self.mask_height,
            "resolution": self.resolution,
            "overlap": self.overlap,
            "global_weight": self.global_weight,
            "region_weight": self.region_weight,
            "layers": layers,
        }


def area_percentage(box: Box) -> tuple[float, float, float, float]:
    """``ConditioningSetAreaPercentage``'s ``(width, height, x, y)`` for a 90-grid box."""
    return (box.width / GRID, box.height / GRID, box.left / GRID, box.top / GRID)


def mask_size(
    width: int, height: int, resolution: Resolution = "latent", latent_factor: int = LATENT_FACTOR
) -> tuple[int, int]:
    """The mask's ``(width, height)``: the image's, or its latent's (ComfyUI floors, as here)."""
    _validate_size(width, height)
    width, height = int(width), int(height)  # numpy integers would not go into JSON
    if resolution == "pixel":
        return width, height
    if resolution != "latent":
        raise ValueError(f"resolution must be 'latent' or 'pixel', got {resolution!r}")
    if not _positive_int(latent_factor):
        raise ValueError(f"latent_factor must be a positive integer, got {latent_factor!r}")
    w, h = width // int(latent_factor), height // int(latent_factor)
    if w < 1 or h < 1:
        raise ValueError(
            f"{width}x{height} pixels has no latent at factor {latent_factor}; "
            "use resolution='pixel' or a larger image"
        )
    return w, h


def overlap_masks(layers: Sequence[Condition], overlap: Overlap = "overlay") -> np.ndarray:
    """The layers' 90-grid masks after overlap handling, ``(layers, 90, 90)`` float32.

    The global layer always covers everything (it carries its own low
    strength). Among the regions, ``overlay`` lets a nearer region win: each
    region keeps only what no nearer region covers, so no pixel has two
    owners. ``average`` divides every region by how many regions cover each
    pixel, so covering masks sum to exactly 1 there (the port adds 1e-6 to
    the count instead of skipping empty pixels; the difference is < 1e-6).
    """
    import numpy as np

    if overlap not in ("overlay", "average"):
        raise ValueError(f"overlap must be 'overlay' or 'average', got {overlap!r}")
    stack = _grid_masks(layers)
    regions = [i for i, layer in enumerate(layers) if layer.kind == "region"]
    if overlap == "overlay":
        claimed = np.zeros((GRID, GRID), dtype=bool)
        for i in reversed(regions):  # nearest first: it claims its pixels before farther ones
            own = stack[i].astype(bool) & ~claimed
            stack[i] = own
            claimed |= own
    elif regions:
        count = stack[regions].sum(axis=0)
        covered = count > 0
        for i in regions:
            stack[i][covered] /= count[covered]
    return stack


def comfyui_conditioning(
    canvas: Canvas,
    width: int,
    height: int,
    *,
    resolution: Resolution = "latent",
    latent_factor: int = LATENT_FACTOR,
    overlap: Overlap = "overlay",
    global_weight: float = GLOBAL_WEIGHT,
    region_weight: float = REGION_WEIGHT,
    global_prefix: bool = True,
    bags: bool = False,
    encode: Encode | None = None,
    escape_text: bool = True,
) -> ComfyConditioning:
    """The canvas as ComfyUI mask conditioning for a ``width x height`` image.

    One layer per condition, global first then regions far to near; masks at
    the latent (``width // 8``) or pixel resolution. ``bags=True`` adds each
    layer's CLIP sub-prompt bags (needs the CLIP vocabulary, or ``encode``).
    Text is escaped so ComfyUI does not read literal brackets as weights.
    """
    for name, value in (("global_weight", global_weight), ("region_weight", region_weight)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    mw, mh = mask_size(width, height, resolution, latent_factor)
    width, height = int(width), int(height)
    layers = conditions(canvas)
    masks = _resize_stack(overlap_masks(layers, overlap), mw, mh)
    encoded = None
    if bags:
        from .tokens import bag_condition

        encoded = [bag_condition(layer, encode) for layer in layers]

    def text(value: str) -> str:
        return escape(value, Target.COMFYUI) if escape_text else value

    out = []
    for i, layer in enumerate(layers):
        is_global = layer.kind == "global"
        out.append(
            ComfyLayer(
                kind=layer.kind,
                region=layer.region,
                box=layer.box,
                text=text(layer_text(layer, global_prefix=global_prefix)),
                bags=None if encoded is None else tuple(text(bag.text) for bag in encoded[i].bags),
                mask=masks[i],
                strength=float(global_weight if is_global else region_weight),
                area_percentage=area_percentage(layer.box),
            )
        )
    return ComfyConditioning(
        width=width,
        height=height,
        mask_width=mw,
        mask_height=mh,
        resolution=resolution,
        overlap=overlap,
        global_weight=float(global_weight),
        region_weight=float(region_weight),
        layers=tuple(out),
    )


# --- (c) A1111 Regional Prompter, mask mode -----------------------------------------------

WHITE = (255, 255, 255)
"""Regional Prompter's empty canvas: pixels of no region's colour."""

# Keywords A1111 or Regional Prompter act on when written in capitals; CLIP lower-cases
# everything anyway, so lower-casing them in the text changes nothing but the parsing.
_KEYWORDS = re.compile(r"\b(BREAK|AND|ADDCOMM|ADDBASE|ADDCOL|ADDROW|ADDP)\b")


def regional_prompter_colour(index: int) -> tuple[int, int, int]:
    """The colour Regional Prompter's mask tab gives region ``index``.

    Its ``deterministic_colours``: hue 0, 1/2, 1/4, 3/4, 1/8, 3/8 ... (each round
    halves the step), saturation and value 0.5, channels ``int(x * 256)``. Mask
    mode reads region ``index``'s mask as exactly this colour, and its upload
    check (saturation and value within 0.49-0.51) keeps these colours as they are.
    """
    if index < 0:
        raise ValueError(f"colour index must be >= 0, got {index}")
    if index == 0:
        hue = 0.0
    else:
        cycle = index.bit_length()  # RP's ceil(log2(index + 1))
        hue = (2 * (index - (1 << (cycle - 1))) + 1) / (1 << cycle)
    r, g, b = (int(v * 256) for v in colorsys.hsv_to_rgb(hue, 0.5, 0.5))
    return (r, g, b)


def _a1111_text(value: str) -> str:
    return _KEYWORDS.sub(lambda m: m.group().lower(), escape(value, Target.A1111))


@dataclass(frozen=True)
class RegionalPrompterRegion:
    """One ``BREAK`` section and the mask colour that selects its pixels."""

    index: int
    """Position among the ``BREAK`` sections, and the colour's index."""
    region: int
    """The region's index in ``canvas.regions``."""
    colour: tuple[int, int, int]
    box: Box
    text: str


@dataclass(frozen=True, eq=False)
class RegionalPrompterExport:
    """Regional Prompter (mask mode) input: the prompt and the colour mask."""

    prompt: str
    common: str
    """The shared text before ``ADDCOMM``: the global layer."""
    regions: tuple[RegionalPrompterRegion, ...]
    image: np.ndarray
    """uint8 ``height x width x 3``: white, then each region's box painted far to near."""

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    def to_dict(self, mask_file: str | None = None) -> dict[str, Any]:
        return {
            "format": "regional-prompter",
            "mode": "Mask",
            "width": self.width,
            "height": self.height,
            "mask_file": mask_file,
            "background": list(WHITE),
            "prompt": self.prompt,
            "common": self.common,
            "regions": [
                {
                    "index": r.index,
                    "region": r.region,
                    "colour": list(r.colour),
                    "colour_hex": "#{:02x}{:02x}{:02x}".format(*r.colour),
                    "box": list(r.box.as_tuple()),
                    "text": r.text,
                }
                for r in self.regions
            ],
        }


def regional_prompter(canvas: Canvas, width: int, height: int) -> RegionalPrompterExport:
    """The canvas as a Regional Prompter mask-mode prompt and mask image.

    Prompt: the global layer's text, ``ADDCOMM``, then one section per region
    far to near, separated by ``BREAK`` (section ``k`` is colour ``k``). Regions
    carry no global description of their own: ``ADDCOMM`` already prepends it.
    Boxes are painted far to near so a nearer region wins the pixels it
    covers, as in Omost. Pixels no region covers stay white, and Regional
    Prompter gives them to the first (farthest) region. A canvas without
    regions gives the global text alone and an all-white mask.
    """
    import numpy as np

    _validate_size(width, height)
    layers = conditions(canvas)
    common = _a1111_text(layer_text(layers[0]))
    regions = tuple(
        RegionalPrompterRegion(
            index=k,
            region=layer.region,
            colour=regional_prompter_colour(k),
            box=layer.box,
            text=_a1111_text(layer_text(layer, global_prefix=False)),
        )
        for k, layer in enumerate(layers[1:])
        if layer.region is not None
    )
    grid = np.empty((GRID, GRID, 3), dtype=np.uint8)
    grid[:] = WHITE
    for r in regions:
        grid[r.box.top : r.box.bottom, r.box.left : r.box.right] = r.colour
    image = np.ascontiguousarray(resize_nearest_exact(grid, width, height))
    if regions:
        prompt = f"{common} ADDCOMM\n" + "\nBREAK\n".join(r.text for r in regions)
    else:
        prompt = common
    return RegionalPrompterExport(prompt=prompt, common=common, regions=regions, image=image)


def save_mask_image(export: RegionalPrompterExport, path: str | Path) -> Path:
    """Write the colour mask as an RGB PNG (lossless, so the colours survive exactly)."""
    return save_png(export.image, path)


# --- (d) GLIGEN and MultiDiffusion --------------------------------------------------------


@dataclass(frozen=True)
class GligenExport:
    """diffusers' ``StableDiffusionGLIGENPipeline`` inputs."""

    prompt: str
    phrases: tuple[str, ...]
    boxes: tuple[tuple[float, float, float, float], ...]
    regions: tuple[int, ...]
    """Each phrase's index in ``canvas.regions``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "gligen",
            "prompt": self.prompt,
            "gligen_phrases": list(self.phrases),
            "gligen_boxes": [list(b) for b in self.boxes],
            "regions": list(self.regions),
        }


def gligen(canvas: Canvas) -> GligenExport:
    """One phrase and one ``(x0, y0, x1, y1)`` box in [0, 1] per region, far to near.

    The phrase is the region's description without its final period (GLIGEN
    grounds short noun phrases); the box is ``Box.normalised()``, i.e. the
    90-grid edges over 90. The prompt is the global description. diffusers
    keeps at most 30 boxes; Omost answers have far fewer.
    """
    layers = conditions(canvas)[1:]
    phrases = []
    for layer in layers:
        assert layer.region is not None
        phrases.append(sentence(canvas.regions[layer.region].description)[:-1])
    return GligenExport(
        prompt=sentence(canvas.global_description.description),
        phrases=tuple(phrases),
        boxes=tuple(layer.box.normalised() for layer in layers),
        regions=tuple(layer.region for layer in layers if layer.region is not None),
    )


@dataclass(frozen=True, eq=False)
class MultiDiffusionPrompt:
    kind: Literal["background", "region"]
    region: int | None
    box: Box | None
    text: str
    mask: np.ndarray
    """bool ``height x width``."""


def multidiffusion(
    canvas: Canvas, width: int, height: int, *, global_prefix: bool = True
) -> tuple[MultiDiffusionPrompt, ...]:
    """MultiDiffusion's region-based inputs: the background prompt, then one per region.

    Region masks are the plain binary boxes (MultiDiffusion averages where
    they overlap); the background (the global layer's text) gets
    ``1 - union`` of them, as in its ``region_based`` script. Masks are at
    whatever resolution is asked (MultiDiffusion itself works on the latent).
    """
    import numpy as np

    _validate_size(width, height)
    layers = conditions(canvas)
    masks = _resize_stack(_grid_masks(layers), width, height).astype(bool)
    union = np.zeros((height, width), dtype=bool)
    for i in range(1, len(layers)):
        union |= masks[i]
    out = [MultiDiffusionPrompt("background", None, None, layer_text(layers[0]), ~union)]
    for i, layer in enumerate(layers[1:], start=1):
        out.append(
            MultiDiffusionPrompt(
                "region",
                layer.region,
                layer.box,
                layer_text(layer, global_prefix=global_prefix),
                masks[i],
            )
        )
    return tuple(out)


# --- files ----------------------------------------------------------------------------------


def _write_json(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _layer_name(number: int, region: int | None, background: str = "global") -> str:
    return f"{number:02d}_{background if region is None else f'region{region}'}.png"


def write_export(
    canvas: Canvas,
    fmt: str,
    directory: str | Path,
    width: int,
    height: int,
    **options: Any,
) -> list[Path]:
    """Write one export into ``directory`` (which must exist): a JSON file plus mask PNGs.

    - ``comfyui``: ``comfyui.json`` and ``NN_global.png`` / ``NN_regionK.png``
      (8-bit grey, ``round(mask * 255)``; the JSON holds the exact settings);
      ``options`` go to ``comfyui_conditioning``.
    - ``regional-prompter``: ``regional_prompter.json``, ``prompt.txt``, ``mask.png``.
    - ``gligen``: ``gligen.json`` (boxes need no image).
    - ``multidiffusion``: ``multidiffusion.json``, ``00_background.png``, ``NN_regionK.png``.
    """
    import numpy as np

    out = Path(directory)
    written: list[Path] = []
    if fmt == "comfyui":
        data = comfyui_conditioning(canvas, width, height, **options)
        names = [_layer_name(n, layer.region) for n, layer in enumerate(data.layers)]
        for name, layer in zip(names, data.layers, strict=True):
            grey = np.rint(layer.mask * 255).astype(np.uint8)
            written.append(save_png(grey, out / name))
        written.append(_write_json(out / "comfyui.json", data.to_dict(names)))
    elif fmt == "regional-prompter":
        rp = regional_prompter(canvas, width, height, **options)
        written.append(save_mask_image(rp, out / "mask.png"))
        prompt = out / "prompt.txt"
        prompt.write_text(rp.prompt + "\n", encoding="utf-8")
        written.append(prompt)
        written.append(_write_json(out / "regional_prompter.json", rp.to_dict("mask.png")))
    elif fmt == "gligen":
        document = gligen(canvas, **options).to_dict()
        written.append(_write_json(out / "gligen.json", document))
    elif fmt == "multidiffusion":
        prompts = multidiffusion(canvas, width, height, **options)
        entries = []
        for n, p in enumerate(prompts):
            name = _layer_name(n, p.region, "background")
            written.append(save_png(p.mask, out / name))
            entries.append(
                {
                    "kind": p.kind,
                    "region": p.region,
                    "box": None if p.box is None else list(p.box.as_tuple()),
                    "text": p.text,
                    "mask_file": name,
                    "mask_sum": int(p.mask.sum()),
                }
            )
        document = {"format": "multidiffusion", "width": width, "height": height}
        written.append(_write_json(out / "multidiffusion.json", {**document, "prompts": entries}))
    else:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return written


__all__ = [
    "FORMATS",
    "GLOBAL_WEIGHT",
    "LATENT_FACTOR",
    "REGION_WEIGHT",
    "WHITE",
    "ComfyConditioning",
    "ComfyLayer",
    "GligenExport",
    "MultiDiffusionPrompt",
    "RegionalPrompterExport",
    "RegionalPrompterRegion",
    "area_percentage",
    "comfyui_conditioning",
    "gligen",
    "layer_text",
    "mask_size",
    "multidiffusion",
    "overlap_masks",
    "regional_prompter",
    "regional_prompter_colour",
    "save_mask_image",
    "write_export",
]
