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
resumes: lines already answered in the output are skipped, rows torn by a kill
are dropped, and an existing file that is not such an output is never written.
Exit status: 0 when every request has a result in the output, 1 when any has an
error row (from this run or an earlier one), 2 for bad options or files.
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
        # utf-8-sig: a byte-order mark (Windows editors) is not part of line 1.
        with path.open(encoding="utf-8-sig") as fh:
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


def _our_row(raw: bytes) -> dict[str, Any] | None:
    """A row this command writes (``{"line": N, "result"|"error": ...}``), else ``None``."""
    try:
        row = json.loads(raw)
    except ValueError:
        return None
    line = row.get("line") if isinstance(row, dict) else None
    if isinstance(line, int) and not isinstance(line, bool) and ("result" in row or "error" in row):
        return row
    return None


def answered(path: Path) -> dict[int, bool]:
    """Lines already answered in the output: line -> whether it failed.

    Only a file this command wrote is touched: an existing file whose first
    row is not one of ours (``{"line": N, "result"|"error": ...}``) is refused,
    so ``-o notes.jsonl`` cannot wipe someone's notes. Rows torn by a kill are
    dropped, wherever they are; every complete row is kept.
    """
    if not path.exists():
        return {}
    if not path.is_file():
        raise UserError(f"{path} is not a file")
    data = path.read_bytes()
    rows = data.splitlines(keepends=True)
    if rows and _our_row(rows[0]) is None:
        raise UserError(
            f"{path} exists and is not the output of 'presample run' (its first line is not "
            '{"line": N, "result"/"error": ...}); choose another -o file, or delete it'
        )
    found: dict[int, bool] = {}
    kept: list[bytes] = []
    for raw in rows:
        row = _our_row(raw)
        if row is None:
            continue
        found[row["line"]] = "error" in row
        kept.append(raw if raw.endswith(b"\n") else raw + b"\n")
    cleaned = b"".join(kept)
    if cleaned != data:
        # Rewritten whole and swapped in, so a second kill cannot lose the good rows.
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(cleaned)
        partial.replace(path)
    return found


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
    done = answered(target)
    todo = [(n, r) for n, r in items if n not in done]
    # Error rows from an earlier attempt still count: the exit status says
    # whether the output, as it stands at the end, answers every request.
    failures = sum(1 for n, _ in items if done.get(n))
    if not todo:
        print(f"nothing to do: all {len(items)} requests are in {target}", file=sys.stderr)
        if failures:
            print(f'{failures} of them failed; see the "error" lines in {target}', file=sys.stderr)
        return 1 if failures else 0
    if args.seed is not None:
        todo = [
            (n, r.model_copy(update={"seed": args.seed}) if isinstance(r, PresampleRequest)
             and r.seed < 0 else r)
            for n, r in todo
        ]  # fmt: skip

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
            print(f'{failures} request(s) failed; see the "error" lines in {target}',
                  file=sys.stderr)  # fmt: skip
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
