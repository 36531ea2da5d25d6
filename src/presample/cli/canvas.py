"""``presample canvas``: read Omost answers, show their layout, write masks and exports, chat."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from ..canvas.exports import FORMATS
from ..canvas.parse import CanvasParseError, ParsedAnswer, parse_answer
from ..errors import install_hint
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

    chat = csub.add_parser(
        "chat",
        help="ask an LLM for a canvas (OpenAI-compatible endpoint or local model)",
        description="Send MESSAGE with Omost's system prompt to a model and read its answer "
        "as a canvas, without running it. The model is an OpenAI-compatible server "
        "(--endpoint: llama.cpp server, vLLM, Ollama ...) or a local transformers model "
        "(--local). With --session FILE the conversation is kept, so the next message "
        "edits the canvas. Exit status 1 when the model fails or no canvas can be read.",
        epilog='example: presample canvas chat "a cat on a sofa" --endpoint '
        "http://localhost:8080 --session cat.json -o answer.md",
    )
    chat.add_argument("message", help="what to draw, or how to change the last canvas")
    where = chat.add_mutually_exclusive_group(required=True)
    where.add_argument("--endpoint", metavar="URL", help="OpenAI-compatible server base URL")
    where.add_argument(
        "--local", metavar="MODEL", help="a transformers model folder, Hugging Face id or .gguf"
    )
    chat.add_argument("--model", default="omost", help="model name sent to the endpoint")
    chat.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        metavar="VAR",
        help="environment variable holding the API key (default OPENAI_API_KEY)",
    )
    chat.add_argument("--timeout", type=float, default=300.0, help="seconds (default 300)")
    chat.add_argument(
        "--stream", action="store_true", help="show the answer on stderr as it arrives"
    )
    chat.add_argument("--device", default="auto", help="--local only: cpu, cuda, mps, auto")
    chat.add_argument("--dtype", default="auto", help="--local only: float32, bfloat16 ...")
    chat.add_argument(
        "--session",
        metavar="FILE",
        help="JSON file with the conversation: read if it exists, written after the turn",
    )
    chat.add_argument(
        "--system",
        choices=("omost", "generic"),
        default="omost",
        help="omost: the Omost models' own prompt (default); generic: with rules and a "
        "worked example, for instruct models not trained on Omost",
    )
    chat.add_argument("--temperature", type=float, default=0.6, help="0 = greedy (default 0.6)")
    chat.add_argument("--top-p", type=float, default=0.9, help="default 0.9")
    chat.add_argument("--max-tokens", type=int, default=4096, help="default 4096")
    chat.add_argument("--seed", type=int, default=12345, help="default 12345")
    chat.add_argument(
        "--strict", action="store_true", help="no salvaging: any problem means no canvas"
    )
    chat.add_argument(
        "--fix", action="store_true", help="ask the model once to fix an unreadable answer"
    )
    chat.add_argument("--json", action="store_true", help="one JSON document")
    chat.add_argument("-o", "--output", metavar="FILE", help="write the raw answer here")
    chat.set_defaults(handler=run_chat)


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
        f"({install_hint('canvas')})",
        file=sys.stderr,
    )
    return EXIT_FAILURE


def _parse_doc(parsed: ParsedAnswer, layers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "canvas": parsed.canvas.to_dict(),
        "layers": layers,
        "region_lines": list(parsed.region_lines),
        "repairs": [r.to_dict() for r in parsed.repairs],
        "problems": [p.to_dict() for p in parsed.problems],
    }


def _print_summary(parsed: ParsedAnswer, layers: list[dict[str, Any]]) -> None:
    canvas = parsed.canvas
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
        print(json.dumps(_parse_doc(parsed, layers), indent=2, ensure_ascii=False))
        return 0
    _print_summary(parsed, layers)
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


MAX_SESSION_BYTES = 8 * 1024 * 1024


def _read_session(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    try:
        if path.stat().st_size > MAX_SESSION_BYTES:
            raise UserError(f"{path} is larger than {MAX_SESSION_BYTES // (1024 * 1024)} MB")
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not a session file (JSON): {exc}") from None
    history = data.get("history") if isinstance(data, dict) else None
    if not isinstance(history, list):
        raise UserError(f'{path} is not a session file: expected {{"history": [...]}}')
    return history


def _chat_model(args: argparse.Namespace) -> Any:
    from ..canvas.chat import LocalChat, OpenAIChat

    if args.endpoint is not None:
        try:
            return OpenAIChat(
                args.endpoint,
                model=args.model,
                api_key_env=args.api_key_env,
                timeout=args.timeout,
                stream=args.stream,
            )
        except ValueError as exc:
            raise UserError(str(exc)) from None
    return LocalChat.load(args.local, device=args.device, dtype=args.dtype)


def run_chat(args: argparse.Namespace) -> int:
    from ..canvas.chat import (
        GENERIC_SYSTEM_PROMPT,
        SYSTEM_PROMPT,
        CanvasChat,
        ChatError,
        ChatSettings,
    )
    from ..canvas.layout import conditions

    try:
        settings = ChatSettings(
            temperature=args.temperature,
            top_p=args.top_p,
            max_new_tokens=args.max_tokens,
            seed=args.seed,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not args.message.strip():
        raise UserError("the message is empty")
    session = Path(args.session) if args.session else None
    # Check where results go before the (possibly long) request, not after it.
    for target in (session, Path(args.output) if args.output else None):
        if target is not None and not target.parent.is_dir():
            raise UserError(f"{target}: no such directory {str(target.parent)!r}")
        if target is not None and target.is_dir():
            raise UserError(f"{target} is a directory")
    history = _read_session(session) if session else []
    model = _chat_model(args)
    try:
        chat = CanvasChat(
            model,
            system_prompt=GENERIC_SYSTEM_PROMPT if args.system == "generic" else SYSTEM_PROMPT,
            settings=settings,
            lenient=not args.strict,
            fix_attempts=1 if args.fix else 0,
            history=history,
        )
    except ValueError as exc:
        raise UserError(f"{session}: {exc}") from None

    def echo(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    try:
        turn = chat.send(args.message, on_text=echo if args.stream else None)
    except ChatError as exc:
        print(f"presample: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if args.stream:
        sys.stderr.write("\n")
    if args.output:
        out = Path(args.output)
        try:
            out.write_text(turn.answer, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"{out}: {exc.strerror or exc}") from None
    if session is not None:
        doc = {"system": args.system, "history": chat.history}
        try:
            session.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
        except OSError as exc:
            raise UserError(f"{session}: {exc.strerror or exc}") from None
    parsed = turn.parsed
    layers = [] if parsed is None else [c.to_dict() for c in conditions(parsed.canvas)]
    if args.json:
        doc = {
            "answer": turn.answer,
            "finish": turn.finish,
            "fixed": turn.fixed,
            "fix_error": turn.fix_error,
            **(_parse_doc(parsed, layers) if parsed is not None else {"canvas": None}),
            "problems": [p.to_dict() for p in turn.problems],
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        if turn.finish == "length":
            print("presample: warning: the answer was cut off at the token limit", file=sys.stderr)
        for problem in turn.problems:
            print(f"presample: warning: answer: {problem}", file=sys.stderr)
        if turn.fix_error:
            print(f"presample: warning: asking for a fix failed: {turn.fix_error}", file=sys.stderr)
        if parsed is not None:
            _print_summary(parsed, layers)
    if parsed is None:
        if not args.json:
            print("presample: error: no canvas could be read from the answer", file=sys.stderr)
        return EXIT_FAILURE
    return 0
