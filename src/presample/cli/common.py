"""What every command shares: reading requests, reporting errors, exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError

from ..errors import InputError
from ..request import PresampleRequest, describe_validation_error

# Exit codes scripts can rely on.
EXIT_OK = 0
EXIT_FAILURE = 1
"""The job ran and failed (a model error, a request that could not be met)."""
EXIT_USAGE = 2
"""Bad input: unknown option, malformed JSON, invalid request."""
EXIT_INTERRUPTED = 130

MAX_INPUT_BYTES = 4 * 1024 * 1024


class UserError(InputError):
    """A problem with what the user gave us; printed as one line, exit code 2."""


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    print(f"presample: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def read_text(source: str) -> str:
    """Read a file path or ``-`` (stdin) as UTF-8, with a size limit."""
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
            name = "standard input"
        else:
            path = Path(source)
            if not path.is_file():
                raise UserError(f"{source}: no such file")
            with path.open("rb") as fh:
                data = fh.read(MAX_INPUT_BYTES + 1)
            name = source
    except OSError as exc:
        raise UserError(f"{source}: {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise UserError(f"{name} is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{name} is not valid UTF-8 (byte {exc.start})") from None


def parse_request_json(text: str, name: str = "request") -> PresampleRequest:
    """Validate request JSON, turning every problem into one readable line."""
    if not text.strip():
        raise UserError(f'{name} is empty; expected a JSON object such as {{"prompt": "1girl"}}')
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{name} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(data, dict):
        raise UserError(f"{name} must be a JSON object, got {type(data).__name__}")
    try:
        return PresampleRequest.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"invalid {name}: {describe_validation_error(exc)}") from None


def load_request(source: str | None, prompt: str | None) -> PresampleRequest:
    """A request from ``--prompt``, a file, or stdin."""
    if prompt is not None and source is not None:
        raise UserError("give a request file or --prompt, not both")
    if prompt is not None:
        try:
            return PresampleRequest(prompt=prompt)
        except ValidationError as exc:
            raise UserError(f"invalid prompt: {describe_validation_error(exc)}") from None
    if source is None:
        if sys.stdin.isatty():
            raise UserError("no request: pass a JSON file, '-' for stdin, or --prompt TEXT")
        source = "-"
    return parse_request_json(read_text(source), "standard input" if source == "-" else source)
