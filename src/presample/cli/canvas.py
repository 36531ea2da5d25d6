"""``presample canvas``: read Omost answers, show their layout, write region masks and exports."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from ..canvas.exports import FORMATS
from ..canvas.parse import CanvasParseError, ParsedAnswer, parse_answer
from .common import EXIT_FAILURE, UserError, read_text

MAX_IMAGE_SIDE = 8192
_SIZE = re.compile(r"^\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*$")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "canvas",
        help="read Omost canvases (LLM answers) safely: parse, lay out, write masks",
        description="Read the ```python block of an Omost answer without running it, and "
        "turn it into layers, boxes, masks and token-safe prompts.",
    )
    csub = p.add_subparsers(dest="canvas_command", metavar="COMMAND", required=True)

    parse = csub.add_parser(
        "parse",
        help="print the canvas and its conditions",
        description="Print the canvas of ANSWER and its per-layer conditions (global first, "
        "then regions far to near). Exit status 1 with a one-line error when ANSWER is not "
        "a canvas.",
        epilog="example: presample canvas parse answer.md --json",
    )
    _answer_arguments(parse)
    parse.add_argument("--json", action="store_true", help="one JSON document")
    parse.add_argument(
        "--tokens",
        action="store_true",
        help="add each layer's CLIP sub-prompt bags (needs presample[canvas])",
    )
    parse.set_defaults(handler=run_parse)

    layout = csub.add_parser(
        "layout",
        help="draw the colour composition with labelled boxes (PNG)",
        description="Draw the canvas as Omost's colour composition, upscaled, with each "
        "region's box and label (numbered far to near).",
    )
    _answer_arguments(layout)
    layout.add_argument("-o", "--output", required=True, help="PNG file to write")
    layout.add_argument("--size", default="720", help="image side in pixels (default 720)")
    layout.set_defaults(handler=run_layout)

    masks = csub.add_parser(
        "masks",
        help="write one binary mask per layer, the composition and layers.json",
        description="Write NN_global.png / NN_regionK.png (white = inside), composition.png "
        "and layers.json (boxes and prompts per file) into DIR.",
    )
    _answer_arguments(masks)
    masks.add_argument("-o", "--output", required=True, metavar="DIR", help="directory")
    masks.add_argument("--size", default="1024x1024", help="WxH or N (default 1024x1024)")
    masks.set_defaults(handler=run_masks)

    export = csub.add_parser(
        "export",
        help="write the canvas for ComfyUI, Regional Prompter, GLIGEN or MultiDiffusion",
        description="Write the canvas as input for another regional renderer into DIR: "
        "comfyui (comfyui.json, one mask PNG per layer: ConditioningSetMask / "
        "ConditioningSetAreaPercentage), regional-prompter (prompt.txt, the colour mask.png "
        "for mask mode, regional_prompter.json), gligen (gligen.json: phrases and boxes), "
        "multidiffusion (multidiffusion.json, background and region mask PNGs).",
        epilog="example: presample canvas export answer.md --format comfyui -o out/",
    )
    _answer_arguments(export)
    export.add_argument(
        "--format", required=True, choices=FORMATS, help="which renderer to write for"
    )
    export.add_argument("-o", "--output", required=True, metavar="DIR", help="directory")
    export.add_argument(
        "--size", default="1024x1024", help="image size WxH or N (default 1024x1024)"
    )
    comfy = export.add_argument_group("comfyui", "only with --format comfyui")
    comfy.add_argument(
        "--resolution",
        choices=("latent", "pixel"),
        default="latent",
        help="mask size: the latent's (size / 8, default) or the image's",
    )
    comfy.add_argument(
        "--overlap",
        choices=("overlay", "average"),
        default="overlay",
        help="overlapping regions: the nearer wins (default) or they share equally",
    )
    comfy.add_argument("--global-weight", type=float, default=0.2, help="default 0.2")
    comfy.add_argument("--region-weight", type=float, default=0.8, help="default 0.8")
    comfy.add_argument(
        "--bags",
        action="store_true",
        help="add each layer's CLIP sub-prompt bags (needs presample[canvas])",
    )
    export.set_defaults(handler=run_export)


def _answer_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("answer", help="the LLM answer (Markdown with a ```python block), - for stdin")
    p.add_argument(
        "--lenient",
        action="store_true",
        help="salvage what is valid (missing fence, truncated code, a bad region) and warn",
    )


def _load(args: argparse.Namespace) -> ParsedAnswer | None:
    """The parsed answer, or ``None`` after printing a one-line error."""
    text = read_text(args.answer)
    name = "standard input" if args.answer == "-" else args.answer
    try:
        parsed = parse_answer(text, lenient=args.lenient)
    except CanvasParseError as exc:
        print(f"presample: error: {name}: {exc}", file=sys.stderr)
        return None
    if not getattr(args, "json", False):
        for problem in parsed.problems:
            print(f"presample: warning: {name}: {problem}", file=sys.stderr)
    return parsed


def _size(text: str, option: str = "--size") -> tuple[int, int]:
    match = _SIZE.match(text)
    if not match:
        raise UserError(f"{option} must be N or WxH, got {text!r}")
    width = int(match.group(1))
    height = int(match.group(2) or match.group(1))
    if not (1 <= width <= MAX_IMAGE_SIDE and 1 <= height <= MAX_IMAGE_SIDE):
        raise UserError(f"{option}: each side must be between 1 and {MAX_IMAGE_SIDE}")
    return width, height


def _needs_extra(exc: ImportError) -> int:
    print(
        f"presample: error: {exc.name or exc}: this command needs the canvas extra "
        "(pip install 'presample[canvas]')",
        file=sys.stderr,
    )
    return EXIT_FAILURE


def run_parse(args: argparse.Namespace) -> int:
    from ..canvas.layout import conditions

    parsed = _load(args)
    if parsed is None:
        return EXIT_FAILURE
    canvas = parsed.canvas
    layers: list[dict[str, Any]] = [c.to_dict() for c in conditions(canvas)]
    if args.tokens:
        from ..canvas.tokens import MissingTokenizer, bag_canvas

        try:
            layers = [e.to_dict() for e in bag_canvas(canvas)]
        except MissingTokenizer as exc:
            return _needs_extra(exc)
    if args.json:
        doc = {
            "canvas": canvas.to_dict(),
            "layers": layers,
            "region_lines": list(parsed.region_lines),
            "repairs": [r.to_dict() for r in parsed.repairs],
            "problems": [p.to_dict() for p in parsed.problems],
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    g = canvas.global_description
    print(f"canvas: {len(canvas.regions)} region(s), code from answer line {parsed.code_line}")
    print(f"global: {g.description}  [{g.color}]")
    print("layers, far to near:")
    for number, layer in enumerate(layers):
        top, bottom, left, right = layer["box"]
        box = f"rows {top}-{bottom} cols {left}-{right}"
        if layer["kind"] == "global":
            print(f"  {number}  global    {box}")
        else:
            r = canvas.regions[layer["region"]]
            print(
                f"  {number}  region {layer['region']}  {box}  distance {r.distance_to_viewer:g}"
                f"  {r.location}, {r.offset}, {r.area}  [{r.color}]"
            )
            print(f"     {r.description}")
        print(
            f"     {len(layer['suffixes'])} sub-prompts after {len(layer['prefixes'])} prefix(es)"
        )
        if "bags" in layer:
            sizes = ", ".join(str(b["tokens"]) for b in layer["bags"])
            print(f"     {len(layer['bags'])} CLIP bag(s) of {sizes} tokens")
    for repair in parsed.repairs:
        print(f"repaired: {repair}")
    return 0


def run_layout(args: argparse.Namespace) -> int:
    width, height = _size(args.size)
    parsed = _load(args)
    if parsed is None:
        return EXIT_FAILURE
    try:
        from ..canvas.draw import layout_image
    except ImportError as exc:
        return _needs_extra(exc)
    try:
        image = layout_image(parsed.canvas, width, height)
    except ImportError as exc:
        return _needs_extra(exc)
    out = Path(args.output)
    try:
        image.save(out, format="PNG")
    except OSError as exc:
        raise UserError(f"{out}: {exc.strerror or exc}") from None
    print(f"wrote {out} ({width}x{height}, {len(parsed.canvas.regions)} regions)")
    return 0


def run_masks(args: argparse.Namespace) -> int:
    width, height = _size(args.size)
    parsed = _load(args)
    if parsed is None:
        return EXIT_FAILURE
    try:
        from ..canvas.draw import write_masks
    except ImportError as exc:
        return _needs_extra(exc)
    out = Path(args.output)
    try:
        out.mkdir(parents=True, exist_ok=True)
        files = write_masks(parsed.canvas, out, width, height)
    except ImportError as exc:
        return _needs_extra(exc)
    except OSError as exc:
        raise UserError(f"{out}: {exc.strerror or exc}") from None
    print(f"wrote {len(files)} files to {out} ({width}x{height})")
    return 0


def run_export(args: argparse.Namespace) -> int:
    width, height = _size(args.size)
    options: dict[str, Any] = {}
    if args.format == "comfyui":
        for option, value in (
            ("--global-weight", args.global_weight),
            ("--region-weight", args.region_weight),
        ):
            if not (value >= 0 and value != float("inf")):  # also rejects nan
                raise UserError(f"{option} must be a finite number >= 0, got {value}")
        if args.resolution == "latent" and (width < 8 or height < 8):
            raise UserError("--size: each side must be at least 8 for latent masks")
        options = {
            "resolution": args.resolution,
            "overlap": args.overlap,
            "global_weight": args.global_weight,
            "region_weight": args.region_weight,
            "bags": args.bags,
        }
    parsed = _load(args)
    if parsed is None:
        return EXIT_FAILURE
    from ..canvas.exports import write_export

    out = Path(args.output)
    try:
        out.mkdir(parents=True, exist_ok=True)
        files = write_export(parsed.canvas, args.format, out, width, height, **options)
    except ImportError as exc:  # numpy / Pillow, or the CLIP vocabulary for --bags
        return _needs_extra(exc)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{out}: {exc.strerror or exc}") from None
    count = f"{len(files)} file{'' if len(files) == 1 else 's'}"
    size = "" if args.format == "gligen" else f", {width}x{height}"  # boxes are relative
    print(f"wrote {count} to {out} ({args.format}{size})")
    return 0
