"""Files of requests in, files of results out: JSON Lines or Parquet, resumable.

A row is known by its number in the input, ``line``: the JSON Lines line, or
the Parquet row counted from 1. Every output row carries it, so a job run
again skips the rows its output already answers and a user joins results to
inputs by it. Outputs are only ever appended to (JSON Lines) or added to
(Parquet parts), never rewritten in place, so a kill loses at most the rows
being written.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from ..errors import InputError, install_hint
from ..request import PresampleRequest, PresampleResult, describe_validation_error

Row = tuple[int, PresampleRequest | str]
"""An input row: its line, and its request or why it is not a valid one."""

REQUEST_FIELDS = frozenset(PresampleRequest.model_fields)


def is_parquet(path: Path) -> bool:
    """Parquet by name: ``x.parquet`` (a file, or a folder of part files)."""
    return path.suffix.lower() in (".parquet", ".pq")


@dataclass
class Requests:
    rows: list[Row]
    ignored_columns: list[str] = field(default_factory=list)
    """Parquet columns that are no request field (ids, paths): left out, named once."""


def read_requests(path: Path) -> Requests:
    """Every row of a requests file; a bad row is an error message for that row."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if is_parquet(path):
        return _read_parquet(path)
    if not path.is_file():
        raise InputError(f"{path} is not a file")
    rows: list[Row] = []
    try:
        # utf-8-sig: a byte-order mark (Windows editors) is not part of line 1.
        with path.open(encoding="utf-8-sig") as fh:
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    rows.append((number, _parse_line(line)))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not valid UTF-8 (byte {exc.start})") from None
    return Requests(rows)


def _parse_line(line: str) -> PresampleRequest | str:
    try:
        data: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not valid JSON: {exc.msg} at column {exc.colno}"
    if isinstance(data, str):
        data = {"prompt": data}
    if not isinstance(data, dict):
        return f"expected a JSON object or string, got {type(data).__name__}"
    return _request(data)


def _request(data: dict[str, Any]) -> PresampleRequest | str:
    try:
        return PresampleRequest.model_validate(data)
    except ValidationError as exc:
        return f"invalid request: {describe_validation_error(exc)}"


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet  # the submodule: pyarrow alone does not load it
    except ImportError:
        raise InputError(f"Parquet files need pyarrow: {install_hint('parquet')}") from None
    return pyarrow


def _read_parquet(path: Path) -> Requests:
    pa = _pyarrow()
    try:
        table = pa.parquet.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path} is not a readable Parquet file: {exc}") from None
    columns = list(table.column_names)
    if "prompt" not in columns and "nl_prompt" not in columns:
        raise InputError(
            f"{path} has no 'prompt' or 'nl_prompt' column (its columns: "
            f"{', '.join(columns) or 'none'})"
        )
    used = [c for c in columns if c in REQUEST_FIELDS]
    rows: list[Row] = []
    for number, values in enumerate(table.select(used).to_pylist(), start=1):
        # A null cell is a field left out (its default), as in JSON.
        rows.append((number, _request({k: v for k, v in values.items() if v is not None})))
    return Requests(rows, [c for c in columns if c not in REQUEST_FIELDS])


class Output(Protocol):
    """Where a job's results go; ``answered`` says what an earlier run wrote."""

    path: Path

    def answered(self) -> dict[int, bool]:
        """Lines already in the output: line -> whether that row is an error."""
        ...

    def write(self, line: int, value: PresampleResult | str) -> None:
        """Record a row's result, or its error message."""
        ...

    def write_row(self, row: dict[str, Any]) -> None:
        """Record a row as ``result_row`` gives it (what Ray workers send back)."""
        ...

    def close(self) -> None: ...


def open_output(path: Path) -> Output:
    """The output at ``path``; an ``InputError`` now, before any model runs, when its
    folder is missing or read-only (the first write would fail after a batch's work)."""
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"cannot write {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {path}: the folder {folder} is not writable")
    return ParquetOutput(path) if is_parquet(path) else JsonlOutput(path)


def written(value: object) -> PresampleResult | str:
    """What an output records of a run's outcome: the result, or the error's message."""
    if isinstance(value, PresampleResult | str):
        return value
    return str(value) or type(value).__name__


def result_row(line: int, value: PresampleResult | str) -> dict[str, Any]:
    """The output row of the JSON Lines format, the same for every way a job runs."""
    if isinstance(value, str):
        return {"line": line, "error": value}
    return {"line": line, "result": value.model_dump(mode="json")}


class JsonlOutput:
    """``{"line": N, "result": {...}}`` or ``{"line": N, "error": "..."}`` per line,
    appended and flushed as each row ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None

    def answered(self) -> dict[int, bool]:
        """Only a file this command wrote is touched: an existing file whose first
        row is not one of ours is refused, so ``-o notes.jsonl`` cannot wipe
        someone's notes. Rows torn by a kill are dropped, wherever they are."""
        path = self.path
        if not path.exists():
            return {}
        if not path.is_file():
            raise InputError(f"{path} is not a file")
        data = path.read_bytes()
        rows = data.splitlines(keepends=True)
        if rows and _our_row(rows[0]) is None:
            raise InputError(
                f"{path} exists and is not the output of 'presample run' (its first line is "
                'not {"line": N, "result"/"error": ...}); choose another -o file, or delete it'
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

    def write(self, line: int, value: PresampleResult | str) -> None:
        self.write_row(result_row(line, value))

    def write_row(self, row: dict[str, Any]) -> None:
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


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


PART_PREFIX = "part-"
PARQUET_COLUMNS = ("line", "prompt", "tags_prompt", "text_prompt", "seed", "error", "result")


class ParquetOutput:
    """A folder of Parquet part files, one column per useful field and the whole
    result as JSON (``result``); a row's ``error`` is set when it failed.

    Parquet files cannot be appended to, so rows are gathered and written as a
    new part every ``rows_per_part`` rows or ``seconds_per_part`` seconds, each
    written aside and renamed into place: a kill loses only the rows not yet in
    a part, which the next run does again.
    """

    def __init__(
        self, path: Path, *, rows_per_part: int = 256, seconds_per_part: float = 30.0
    ) -> None:
        self.path = path
        self._rows: list[dict[str, Any]] = []
        self._rows_per_part = rows_per_part
        self._seconds = seconds_per_part
        self._since = time.monotonic()
        self._next_part = 0

    def answered(self) -> dict[int, bool]:
        pa = _pyarrow()
        path = self.path
        if not path.exists():
            return {}
        if not path.is_dir():
            raise InputError(
                f"{path} exists and is not a folder of 'presample run' Parquet parts; "
                "choose another -o, or delete it"
            )
        found: dict[int, bool] = {}
        for entry in sorted(path.iterdir()):
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                entry.unlink()  # a part a kill interrupted: its rows are done again
                continue
            if not (entry.name.startswith(PART_PREFIX) and entry.suffix == ".parquet"):
                raise InputError(
                    f"{path} holds {entry.name}, which 'presample run' did not write; "
                    "choose another -o, or delete it"
                )
            try:
                part = pa.parquet.read_table(entry, columns=["line", "error"])
            except (OSError, pa.ArrowException, KeyError) as exc:
                raise InputError(f"{entry} is not a readable part of this output: {exc}") from None
            lines, errors = part["line"].to_pylist(), part["error"].to_pylist()
            for line, error in zip(lines, errors, strict=True):
                found[line] = error is not None
            self._next_part = max(self._next_part, _part_number(entry.name) + 1)
        return found

    def write(self, line: int, value: PresampleResult | str) -> None:
        if isinstance(value, str):
            self._rows.append({"line": line, "error": value})
        else:
            self._rows.append(
                {
                    "line": line,
                    "prompt": value.prompt,
                    "tags_prompt": value.tags_prompt,
                    "text_prompt": value.text_prompt,
                    "seed": value.seed,
                    "result": value.model_dump_json(),
                }
            )
        if (
            len(self._rows) >= self._rows_per_part
            or time.monotonic() - self._since >= self._seconds
        ):
            self._flush()

    def write_row(self, row: dict[str, Any]) -> None:
        """A JSON Lines row (``result_row``), as the Ray workers send them."""
        if "error" in row:
            self.write(row["line"], row["error"])
        else:
            self.write(row["line"], PresampleResult.model_validate(row["result"]))

    def close(self) -> None:
        self._flush()

    def _flush(self) -> None:
        self._since = time.monotonic()
        if not self._rows:
            return
        pa = _pyarrow()
        schema = pa.schema(
            [("line", pa.int64()), ("prompt", pa.string()), ("tags_prompt", pa.string()),
             ("text_prompt", pa.string()), ("seed", pa.int64()), ("error", pa.string()),
             ("result", pa.string())]
        )  # fmt: skip
        table = pa.Table.from_pylist(
            [{c: row.get(c) for c in PARQUET_COLUMNS} for row in self._rows], schema=schema
        )
        self.path.mkdir(parents=True, exist_ok=True)
        name = f"{PART_PREFIX}{self._next_part:05d}.parquet"
        aside = self.path / f".{name}.tmp"
        pa.parquet.write_table(table, aside)
        os.replace(aside, self.path / name)
        self._next_part += 1
        self._rows = []


def _part_number(name: str) -> int:
    try:
        return int(name[len(PART_PREFIX) :].split(".")[0])
    except ValueError:
        return 0
