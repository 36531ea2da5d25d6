"""Prepared training records: one clean source item, its split, and compact JSONL.gz files."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "validation", "test")
# Percent of source records held out; small because the data is small, large
# enough for a stable validation loss and an evaluation set.
HELD_OUT_PERCENT = {"validation": 3, "test": 3}


@dataclass(frozen=True, slots=True)
class Record:
    """One training item. ``id`` names the *source* record (an image, a prompt):
    items derived from the same source share it, so they share a split."""

    id: str
    src: str
    tags: dict[str, list[str]] = field(default_factory=dict)
    """Canonical tags by TIPO category (``special``, ``general``, ``rating`` ...)."""
    short: str = ""
    long: str = ""
    coarse: str = ""
    """Another short version of ``long`` (its head noun phrase), when it differs from ``short``."""

    def to_json(self) -> str:
        data: dict[str, object] = {"id": self.id, "src": self.src}
        tags = {key: value for key, value in self.tags.items() if value}
        if tags:
            data["tags"] = tags
        for key in ("short", "long", "coarse"):
            if value := getattr(self, key):
                data[key] = value
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict) -> Record:
        return cls(
            id=data["id"],
            src=data["src"],
            tags=data.get("tags", {}),
            short=data.get("short", ""),
            long=data.get("long", ""),
            coarse=data.get("coarse", ""),
        )


def split_of(record_id: str) -> str:
    """The split of a source record: a stable hash of its id, so nothing leaks."""
    bucket = int(hashlib.sha1(record_id.encode("utf-8")).hexdigest()[:8], 16) % 100
    if bucket < HELD_OUT_PERCENT["test"]:
        return "test"
    if bucket < HELD_OUT_PERCENT["test"] + HELD_OUT_PERCENT["validation"]:
        return "validation"
    return "train"


def split_path(folder: Path, split: str) -> Path:
    return folder / f"{split}.jsonl.gz"


def write_records(path: Path, records: Iterable[Record]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    # mtime=0: the same records give byte-identical files.
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        for record in records:
            gz.write(record.to_json().encode("utf-8") + b"\n")
            count += 1
    return count


def read_records(path: Path) -> Iterator[Record]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield Record.from_dict(json.loads(line))
