"""A record of how a prompt was made, kept in the image and read back from it.

An image made from a presampled prompt should say how to make that prompt
again: the exact request (its seed drawn, its settings), the prompt it gave,
the model and a hash of its weights, the engine. The ComfyUI nodes put such
records in the PNG as a ``presample`` text chunk (a JSON list, one per node
that ran); the A1111 extension writes its fields into the image's infotext
(``Presample seed``, ``Presample input``, ``Presample`` settings, ``Presample
model hash``), which A1111 keeps in the PNG's ``parameters`` chunk.
``presample show IMAGE`` reads either back (``read_records`` here,
``integrations.a1111.record_from_infotext`` for the infotext).

Image files are untrusted input: only PNG text chunks are read (Pillow), their
JSON is validated against these models, and nothing in them is executed or
used as a path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from . import __version__
from .errors import InputError, install_hint
from .request import PresampleRequest, PresampleResult

PNG_KEY = "presample"
"""The PNG text chunk holding our records (a JSON list)."""
A1111_KEY = "parameters"
"""The PNG text chunk A1111 writes its infotext to."""
# Longer texts are refused: a record is a few kilobytes.
MAX_CHUNK = 1_000_000
HASH_CHARS = 12


class PromptRecord(BaseModel):
    """How one prompt was made."""

    model_config = ConfigDict(extra="ignore")

    request: PresampleRequest
    """The request as run: its seed is the one drawn, so it reproduces the prompt."""
    prompt: str = ""
    model: str = ""
    model_hash: str = ""
    """The first characters of the SHA-256 of the model's weight files."""
    engine: str = ""
    """A seed gives the same text on the same engine (``PresampleResult.engine``)."""
    presample: str = __version__
    source: str = "presample"
    """Where the record was read from: presample's own chunk, or an A1111 infotext."""


def make_record(
    request: PresampleRequest, result: PresampleResult, model_hash: str
) -> PromptRecord:
    """The record of ``result``, made from ``request`` (its seed replaced by the one used)."""
    return PromptRecord(
        request=request.model_copy(update={"seed": result.seed}),
        prompt=result.prompt,
        model=result.model,
        model_hash=model_hash,
        engine=result.engine,
    )


def weights_hash(files: Iterable[Path]) -> str:
    """A short hash of a model's weight files (in name order), as A1111 shows a
    checkpoint's: enough to tell two models apart, not a security check."""
    digest = hashlib.sha256()
    for path in sorted(files):
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:HASH_CHARS]


def read_records(path: str | Path) -> tuple[list[PromptRecord], dict[str, str]]:
    """The records presample's own chunk of a PNG holds, and all its text chunks
    (an A1111 infotext is read by ``integrations.a1111.record_from_infotext``).
    ``InputError`` when the file is no readable PNG."""
    chunks = _png_text(Path(path))
    records: list[PromptRecord] = []
    raw = chunks.get(PNG_KEY)
    if raw:
        try:
            items = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: its presample record is not JSON ({exc})") from None
        for item in items if isinstance(items, list) else [items]:
            try:
                records.append(PromptRecord.model_validate(item))
            except ValidationError as exc:
                raise InputError(f"{path}: a presample record is invalid: {exc}") from None
    return records, chunks


# One "key: value" of an infotext's parameter line; a value holding a comma or a
# colon is JSON-quoted. The grammar A1111 writes and parses; no library reads it.
_PARAM = re.compile(r'\s*([\w][\w \-/]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def infotext_params(text: str) -> tuple[str, dict[str, str]]:
    """An A1111 infotext split into the prompt and its last line's parameters."""
    lines = text.strip().split("\n")
    params: dict[str, str] = {}
    for key, value in _PARAM.findall(lines[-1]):
        if value.startswith('"'):
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        params[key.strip()] = str(value)
    body = [line for line in lines[:-1] if not line.startswith("Negative prompt:")]
    return "\n".join(body).strip(), params


def _png_text(path: Path) -> dict[str, str]:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise InputError(f"reading images needs Pillow: {install_hint('canvas')}") from None
    try:
        with Image.open(path) as image:
            if image.format != "PNG":
                raise InputError(f"{path}: not a PNG (records are kept in PNG text chunks)")
            text: Any = getattr(image, "text", {})
            items = dict(text).items()
            return {k: v for k, v in items if isinstance(v, str) and len(v) <= MAX_CHUNK}
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{path}: not an image presample can read ({exc})") from None
