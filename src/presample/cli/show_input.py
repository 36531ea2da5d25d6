"""``presample show-input``: print the exact model input for one step, no model needed."""

from __future__ import annotations

import argparse
import json

from ..dtg import dtg_input
from ..prepare import Prepared, prepare
from ..tagdb import TagDatabase
from ..tipo import Dialect, Length, Step, Task
from .common import UserError, load_request

DESCRIPTION = """\
Print the exact text a TIPO or DanTagGen model reads for one step of a request,
without loading any model. The request is the same JSON the Python API and
'presample run' accept, from a file, '-' for standard input, or --prompt.

With --task auto (the default) the step comes from the automatic plan (see
--plan); --step picks which one. An explicit --task builds that task directly.
It shows the layout of the request as given: a run also puts the people-count
tag your tags imply first on the line (count_tag) and draws a share of the new
tags from the tags that go with yours (tag_draw; see 'presample generate
--help'), and later steps read what earlier ones added.
"""

EPILOG = """\
examples:
  presample show-input --prompt "1girl, hatsune miku, (smile:1.2), <lora:x:0.8>"
  echo '{"prompt": "a cat on a sofa", "aspect_ratio": 0.75}' | presample show-input -
  presample show-input req.json --task tag_to_long --mode generate --gen-meta
  presample show-input req.json --format dtg --length very_long
  presample show-input req.json --plan
  presample show-input --prompt "1girl, solo" --model KBlueLeaf/TIPO-v2.1-1B-A200M
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "show-input",
        help="print the exact model input for one step (no model needed)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("request", nargs="?", help="request JSON file, or - for standard input")
    p.add_argument("--prompt", help="use this prompt text as the request instead of JSON")
    p.add_argument(
        "--task",
        default="auto",
        metavar="TASK",
        help="auto, or one of: " + ", ".join(t.value for t in Task) + " (default: auto)",
    )
    p.add_argument(
        "--step", type=int, default=1, help="with --task auto: which planned step (1-based)"
    )
    p.add_argument(
        "--length",
        choices=[length.value for length in Length],
        help="length target (default: the request's tag_length or nl_length, by task)",
    )
    p.add_argument(
        "--mode",
        choices=["expand", "generate"],
        help="expand continues the last field, generate opens a new one "
        "(default: the plan's mode, or expand for an explicit task)",
    )
    meta = p.add_mutually_exclusive_group()
    meta.add_argument(
        "--gen-meta",
        dest="gen_meta",
        action="store_true",
        default=None,
        help="append <|gen_meta|> (default: the request's gen_meta on the last step)",
    )
    meta.add_argument("--no-gen-meta", dest="gen_meta", action="store_false")
    p.add_argument(
        "--format", choices=["tipo", "dtg"], help="layout (default: the --model's, else tipo)"
    )
    p.add_argument(
        "--model",
        help="write the input for this model (a name, folder or .gguf file; nothing is "
        "loaded or downloaded): its layout and, for TIPO v2/v2.1, its strings",
    )
    p.add_argument(
        "--dialect",
        choices=[d.value for d in Dialect],
        help="which TIPO generation's strings (default: the --model's, else v1, what "
        "the reference writes for every model)",
    )
    p.add_argument(
        "--no-quality",
        dest="quality",
        action="store_false",
        help="dtg: the model has no quality line (DanTagGen alpha/beta/gamma)",
    )
    p.add_argument(
        "--no-sfw",
        action="store_true",
        help="leave an unrated request unrated, as the reference does (default: it is "
        "asked for as general)",
    )
    p.add_argument("--plan", action="store_true", help="list the automatic plan's steps and exit")
    p.add_argument("--json", action="store_true", help="print a JSON object instead of plain text")
    p.set_defaults(handler=run)


def _choose_step(prepared: Prepared, args: argparse.Namespace) -> tuple[Step, bool]:
    """The step to show and whether it is the last of the plan."""
    req = prepared.request
    if args.task == "auto":
        steps = prepared.steps()
        if not steps:
            raise UserError("the request's options leave nothing for the model to do")
        if not 1 <= args.step <= len(steps):
            raise UserError(f"--step must be between 1 and {len(steps)} for this request")
        step = steps[args.step - 1]
        is_last = args.step == len(steps)
    else:
        try:
            task = Task.parse(args.task)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        length = req.tag_length if task.output == "tag" else req.nl_length
        step = Step(task, length, True)
        is_last = True
    if args.length:
        step = Step(step.task, Length(args.length), step.expand)
    if args.mode:
        step = Step(step.task, step.length, args.mode == "expand")
    return step, is_last


def _layout(args: argparse.Namespace) -> tuple[str, Dialect]:
    """The layout and dialect asked for, directly or through --model."""
    layout, dialect = "tipo", Dialect.V1
    if args.model:
        from ..engine.backend import ModelError
        from ..registry import resolve

        try:
            source = resolve(args.model)
        except ModelError as exc:
            raise UserError(str(exc)) from None
        layout, dialect = source.layout, source.dialect
    return args.format or layout, Dialect(args.dialect) if args.dialect else dialect


def run(args: argparse.Namespace) -> int:
    request = load_request(args.request, args.prompt)
    if args.no_sfw:
        request = request.model_copy(update={"sfw": False})
    layout, dialect = _layout(args)
    with TagDatabase() as db:
        prepared = prepare(request, db, dialect=dialect)
    if args.plan:
        steps = prepared.steps()
        rows = [
            {
                "step": i,
                "task": s.task.value,
                "length": s.length.value,
                "mode": "expand" if s.expand else "generate",
            }
            for i, s in enumerate(steps, start=1)
        ]
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            for row in rows:
                print(f"{row['step']}. {row['task']:<22} {row['length']:<10} {row['mode']}")
        return 0

    if layout == "dtg":
        length = Length(args.length) if args.length else request.tag_length
        text = dtg_input(
            prepared.tags.as_dict(),
            length,
            request.effective_aspect_ratio() or 1.0,
            quality=args.quality,
        )
        info: dict[str, object] = {"format": "dtg", "length": length.value}
    else:
        step, is_last = _choose_step(prepared, args)
        gen_meta = args.gen_meta if args.gen_meta is not None else request.gen_meta and is_last
        text = prepared.model_input(step, gen_meta=gen_meta)
        info = {
            "format": "tipo",
            "dialect": dialect.value,
            "task": step.task.value,
            "length": step.length.value,
            "mode": "expand" if step.expand else "generate",
            "gen_meta": gen_meta,
        }
    if args.json:
        print(json.dumps({**info, "input": text}, ensure_ascii=False, indent=2))
    else:
        print(text)
    return 0
