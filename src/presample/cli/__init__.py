"""The ``presample`` command line.

Each command group lives in its own module and registers itself through
``add_parser``; this module only dispatches and turns every failure into one
line and an exit code (0 ok, 1 failed, 2 bad input, 130 interrupted).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import InputError, RunError
from . import (
    canvas,
    evaluate,
    generate,
    prepare,
    refine,
    run,
    serve,
    show,
    show_input,
    tags,
    train,
)
from .common import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE

DESCRIPTION = """\
presample turns the few tags or the short sentence you type into the detailed
prompt a text-to-image model was trained on, using TIPO / DanTagGen layouts.

  presample "1girl, scenery"          presample one prompt (= presample generate ...)
  presample run in.jsonl -o out.jsonl presample many, batched and resumable
  presample refine "a cat"            grow a prompt by picking among candidates
  presample serve                     web page and JSON API on 127.0.0.1
  presample prepare                   convert the model once for ONNX Runtime
  presample show IMAGE.png            how an image's prompt was made (its record)
"""

COMMANDS = (generate, run, refine, show_input, show, tags, canvas, train, evaluate, serve, prepare)


def build_parser() -> tuple[argparse.ArgumentParser, frozenset[str]]:
    """The parser and the names of its commands."""
    parser = argparse.ArgumentParser(
        prog="presample",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"presample {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser, frozenset(sub.choices)


TOP_LEVEL_OPTIONS = frozenset({"-h", "--help", "--version"})


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser, commands = build_parser()
    # `presample "1girl, scenery"` is short for `presample generate "1girl, scenery"`,
    # and so is `presample --model X "1girl, scenery"` (options before the prompt).
    if args_list and args_list[0] not in commands and args_list[0] not in TOP_LEVEL_OPTIONS:
        args_list.insert(0, "generate")
    args = parser.parse_args(args_list)
    try:
        return int(args.handler(args) or 0)
    except InputError as exc:  # the request, a prompt, a file or an option
        print(f"presample: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RunError as exc:  # a model, a table, an endpoint
        print(f"presample: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except MemoryError:
        print(
            "presample: error: out of memory; try a smaller --batch-size, --dtype int8 "
            "or a smaller model",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("presample: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `presample ... | head` closed the pipe: not an error worth a message.
        sys.stderr.close()
        return EXIT_FAILURE
    except Exception as exc:  # the last line of defence: never a bare traceback
        if os.environ.get("PRESAMPLE_DEBUG"):
            raise
        if "out of memory" in str(exc).lower():  # torch.OutOfMemoryError and kin
            print(
                f"presample: error: out of memory ({type(exc).__name__}); try a smaller "
                "--batch-size, --dtype int8 or a smaller model",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        print(
            f"presample: internal error: {type(exc).__name__}: {exc} "
            "(set PRESAMPLE_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


if __name__ == "__main__":
    raise SystemExit(main())
