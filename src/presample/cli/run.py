"""``presample run``: presample a JSON Lines file of requests, resumably.

Each output line is written as soon as its request finishes, so an interrupted
job keeps its work; running the same command again skips the lines already in
the output file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from ..request import PresampleRequest, PresampleResult, describe_validation_error
from .common import UserError
from .model_options import add_model_options, open_presampler

DESCRIPTION = """\
Presample every request of a JSON Lines file (one request object per line, the
same JSON as the Python API; a bare string is a prompt). Results go to the
output file, one JSON object per input line: {"line": N, "result": {...}} or
{"line": N, "error": "..."}, in the order they finish. Re-running the command
resumes: lines already answered in the output are skipped.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="presample a JSON Lines file of requests (batched, resumable)",
        description=DESCRIPTION,
        epilog="example: presample run requests.jsonl -o results.jsonl --batch-size 32",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("requests", help="JSON Lines file of requests")
    p.add_argument("-o", "--output", required=True, help="JSON Lines file to write (appended)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=32,
        help="requests sharing forward passes at once (default 32)",
    )
    p.add_argument("--seed", type=int, help="seed for requests that do not set one")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_model_options(p)
    p.set_defaults(handler=run)


def read_requests(path: Path) -> list[tuple[int, PresampleRequest | str]]:
    """Each non-empty line as a request, or an error message for that line."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    out: list[tuple[int, PresampleRequest | str]] = []
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                out.append((number, _parse_line(line)))
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not valid UTF-8 (byte {exc.start})") from None
    return out


def _parse_line(line: str) -> PresampleRequest | str:
    try:
        data: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not valid JSON: {exc.msg} at column {exc.colno}"
    if isinstance(data, str):
        data = {"prompt": data}
    if not isinstance(data, dict):
        return f"expected a JSON object or string, got {type(data).__name__}"
    try:
        return PresampleRequest.model_validate(data)
    except ValidationError as exc:
        return f"invalid request: {describe_validation_error(exc)}"


def done_lines(path: Path) -> set[int]:
    """Lines already answered; a torn last line (a kill mid-write) is cut off."""
    if not path.exists():
        return set()
    done: set[int] = set()
    keep = 0
    with path.open("rb") as fh:
        data = fh.read()
    for raw in data.splitlines(keepends=True):
        try:
            row = json.loads(raw)
            done.add(int(row["line"]))
        except (ValueError, KeyError, TypeError):
            break
        keep += len(raw)
    if keep < len(data):
        with path.open("r+b") as fh:
            fh.truncate(keep)
            if keep and not data[:keep].endswith(b"\n"):
                fh.seek(keep)
                fh.write(b"\n")
    return done


def _write(out: TextIO, row: dict[str, Any]) -> None:
    out.write(json.dumps(row, ensure_ascii=False) + "\n")
    out.flush()


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.batch_size <= 256:
        raise UserError("--batch-size must be between 1 and 256")
    source, target = Path(args.requests), Path(args.output)
    if source.resolve() == target.resolve():
        raise UserError("the output file must not be the input file")
    items = read_requests(source)
    done = done_lines(target)
    todo = [(n, r) for n, r in items if n not in done]
    if not todo:
        print(f"nothing to do: all {len(items)} requests are in {target}", file=sys.stderr)
        return 0
    if args.seed is not None:
        todo = [
            (n, r.model_copy(update={"seed": args.seed}) if isinstance(r, PresampleRequest)
             and r.seed < 0 else r)
            for n, r in todo
        ]  # fmt: skip

    failures = 0
    from tqdm import tqdm

    with target.open("a", encoding="utf-8") as out, tqdm(
        total=len(items), initial=len(items) - len(todo), unit="prompt",
        disable=args.no_progress, file=sys.stderr,
    ) as bar:  # fmt: skip
        for number, item in todo:
            if isinstance(item, str):
                _write(out, {"line": number, "error": item})
                failures += 1
                bar.update(1)
        valid = [(n, r) for n, r in todo if isinstance(r, PresampleRequest)]
        if not valid:
            return 1
        presampler = open_presampler(args)
        with presampler:
            for start in range(0, len(valid), args.batch_size):
                chunk = valid[start : start + args.batch_size]

                def finished(
                    index: int, value: PresampleResult | Exception, chunk: list = chunk
                ) -> None:
                    nonlocal failures
                    number = chunk[index][0]
                    if isinstance(value, PresampleResult):
                        _write(out, {"line": number, "result": value.model_dump(mode="json")})
                    else:
                        failures += 1
                        _write(out, {"line": number, "error": str(value)})
                    bar.update(1)

                presampler.presample_many([r for _, r in chunk], on_result=finished)
    if failures:
        print(f'{failures} request(s) failed; see the "error" lines in {target}', file=sys.stderr)
    return 1 if failures else 0
