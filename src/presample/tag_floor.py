"""Generation-time rules for the ``tag:`` line: reach the length floor, never repeat a tag.

The reference reaches a tag length by calling the model again with what it has
so far until the line is long enough (up to ten retries). A small model that
closes the line after a handful of tags then spends most of a run on retries
that add little. Refusing the end of the line (a newline or end of sequence)
while it holds fewer tags than the requested length's minimum reaches the
target in one call; refusing a tag the line already holds keeps that forced
continuation from looping on duplicates, which the merge would drop anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .engine.backend import Constraint
from .tagdb import normalize_key


@dataclass(frozen=True)
class TagFloor:
    """A ``Constraint`` (engine/backend.py) for the ``tag:`` line."""

    minimum: int
    """Distinct tags the line must hold before it may end."""

    def allowed(self, text: str, candidates: Sequence[str | None]) -> list[bool]:
        line = text[text.rfind("\n") + 1 :]
        key, sep, value = line.partition(":")
        if not sep or key.strip() != "tag":
            return [True] * len(candidates)
        *done, partial = value.split(",")
        seen = {k for k in map(normalize_key, done) if k}
        return [self._ok(seen, partial, piece) for piece in candidates]

    def _ok(self, seen: set[str], partial: str, piece: str | None) -> bool:
        ends_line = piece is None or "\n" in piece
        added = "" if piece is None else piece.split("\n", 1)[0]
        *completed, rest = (partial + added).split(",")
        if ends_line:
            completed.append(rest)
        have = set(seen)
        for tag in completed:
            key = normalize_key(tag)
            if not key:
                continue
            if key in have:
                return False
            have.add(key)
        return not ends_line or len(have) >= self.minimum


@dataclass(frozen=True)
class AllOf:
    """Several constraints at once: a candidate must pass every one."""

    parts: tuple[Constraint, ...]

    def allowed(self, text: str, candidates: Sequence[str | None]) -> list[bool]:
        verdicts = [True] * len(candidates)
        for part in self.parts:
            answers = part.allowed(text, candidates)
            verdicts = [ok and yes for ok, yes in zip(verdicts, answers, strict=True)]
        return verdicts
