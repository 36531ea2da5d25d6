"""``presample refine``: the interactive refine loop in a terminal.

Each round shows numbered candidates; type a number to pick, ``u`` to undo,
``r`` for new candidates, ``q`` (or end of input) to finish. The current
prompt is printed on every way out, Ctrl-C included, so no work is lost.
``--picks 1,3,2`` runs the same loop without asking (scripts, tests).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from ..request import describe_validation_error
from .common import EXIT_INTERRUPTED, UserError
from .model_options import add_model_options, open_presampler

HELP_LINE = "number = pick, u = undo, r = new candidates, q = finish"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "refine",
        help="grow a prompt step by step, picking among candidates",
        description=__doc__.replace("``", ""),  # plain text in a terminal
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("prompt", help="the coarse prompt to start from, e.g. 'a cat' or '1girl'")
    p.add_argument("--candidates", type=int, default=3, help="candidates per round (default 3)")
    p.add_argument(
        "--tokens",
        type=int,
        default=None,
        help="about this many new tokens per candidate (default 6; with --one-shot 20)",
    )
    p.add_argument(
        "--one-shot", action="store_true", help="one extension of up to --tokens new tokens"
    )
    p.add_argument(
        "--by-length", action="store_true", help="extend by one TIPO length target per round"
    )
    p.add_argument("--seed", type=int, default=-1, help="session seed (default: random, printed)")
    p.add_argument(
        "--picks",
        default=None,
        metavar="LIST",
        help="non-interactive: the candidates to pick, 1-based, e.g. 1,3,2 (u = undo)",
    )
    p.add_argument("--json", action="store_true", help="print the final session state as JSON")
    p.add_argument("-o", "--output", metavar="FILE", help="also write the final prompt to FILE")
    p.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    add_model_options(p)
    p.set_defaults(handler=run)


def options_from(args: argparse.Namespace) -> Any:
    from ..refine import RefineOptions

    fields: dict[str, Any] = {
        "candidates": args.candidates,
        "seed": args.seed,
        "strategy": "oneshot" if args.one_shot else "step",
        "step_by": "length" if args.by_length else "tokens",
    }
    if args.tokens is not None:
        fields["oneshot_tokens" if args.one_shot else "step_tokens"] = args.tokens
    if args.one_shot and args.by_length:
        raise UserError("--one-shot and --by-length cannot be combined")
    try:
        return RefineOptions(**fields)
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc)) from None


def checked_output(args: argparse.Namespace) -> Path | None:
    """Validate --output before any model work, so a typo never costs a session."""
    if not args.output:
        return None
    path = Path(args.output)
    if path.is_dir():
        raise UserError(f"{path}: is a folder")
    if not path.parent.is_dir():
        raise UserError(f"{path.parent}: no such folder")
    if path.exists() and not args.force:
        raise UserError(f"{path} exists; add --force to overwrite it")
    return path


def parse_picks(text: str) -> list[str]:
    picks = [p.strip().lower() for p in text.split(",") if p.strip()]
    for p in picks:
        if p != "u" and not p.isdigit():
            raise UserError(f"--picks: {p!r} is neither a candidate number nor 'u'")
    return picks


def show(candidates: list[Any], out: TextIO) -> None:
    if not candidates:
        print("  (no new candidates: r = try again, q = finish)", file=out)
    for c in candidates:
        print(f"  {c.index + 1}. {c.prompt}", file=out)
        print(f"     + {', '.join(c.added)}", file=out)


def step(session: Any, answer: str, out: TextIO) -> bool:
    """Apply one answer; False when the user is done."""
    from ..refine import RefineError

    answer = answer.strip().lower()
    try:
        if answer in ("q", "quit", "exit"):
            return False
        if answer == "u":
            session.undo()
        elif answer == "r":
            session.redraw()
        elif answer.isdigit():
            session.pick(int(answer) - 1)
        elif answer:
            print(f"  ? {HELP_LINE}", file=out)
    except RefineError as exc:
        print(f"  ! {exc}", file=out)
    return True


def run(args: argparse.Namespace) -> int:
    from ..refine import RefineError, RefineSession

    options = options_from(args)
    output = checked_output(args)
    picks = parse_picks(args.picks) if args.picks is not None else None
    presampler = open_presampler(args)
    try:
        session = RefineSession(presampler, args.prompt, options)
    except RefineError as exc:
        raise UserError(str(exc)) from None
    # The conversation goes to stderr when the final prompt is what stdout is for.
    talk = sys.stderr if (args.json or picks is not None) else sys.stdout
    print(f"seed {session.seed} · {HELP_LINE}", file=talk)
    code = 0
    try:
        if picks is not None:
            for answer in picks:
                show(session.propose(), talk)
                print(f"> {answer}", file=talk)
                if answer.isdigit() and not 1 <= int(answer) <= len(session.propose()):
                    raise UserError(f"--picks: there is no candidate {answer} in round "
                                    f"{session.round + 1}")  # fmt: skip
                step(session, answer, talk)
        else:
            while True:
                print(f"\n[{session.round}] {session.prompt}", file=talk)
                show(session.propose(), talk)
                talk.write("> ")
                talk.flush()
                line = sys.stdin.readline()
                if not line or not step(session, line, talk):
                    break
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    if picks is None:
        print(file=talk)  # leave the "> " line (after q, Ctrl-D or Ctrl-C)
    finish(session, args, output)
    return code


def finish(session: Any, args: argparse.Namespace, output: Path | None) -> None:
    if args.json:
        print(json.dumps(session.state().model_dump(mode="json"), ensure_ascii=False, indent=2))
    else:
        print(session.prompt)
    if output is not None:
        try:
            output.write_text(session.prompt + "\n", encoding="utf-8")
        except OSError as exc:
            raise UserError(f"{output}: {exc.strerror or exc}") from None
