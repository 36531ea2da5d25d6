"""Generation-time rules for the ``tag:`` line: a length floor, no repeats, real tags only.

The reference reaches a tag length by calling the model again with what it has
so far until the line is long enough (up to ten retries). A small model that
closes the line after a handful of tags then spends most of a run on retries
that add little. Refusing the end of the line (a newline or end of sequence)
while it holds fewer tags than a floor (the run draws it from the
requested length's range) reaches the target in one call; refusing a tag the
line already holds keeps that forced continuation from looping on duplicates,
which the merge would drop anyway.

Forced to go on, a small model also invents tags no image model was trained
on. With a tag vocabulary, a candidate is refused when it would finish an
unknown tag or start a word no known tag starts with, so every new tag on the
line is a real one (the user's own tags are always allowed). Nor may a new tag
contradict the line (``day`` after ``night``, ``solo`` beside ``2boys``;
``contradictions.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from .contradictions import contradicts
from .engine.backend import Constraint
from .tagdb import normalize_key, typed_key
from .tipo import TipoOutput

# Keys looked at before giving up on proving that a typed word leads nowhere.
MAX_KEYS_SCANNED = 2048


class TagVocabulary(Protocol):
    """What the rule needs of the tag database (``presample.tagdb.TagDatabase``)."""

    def is_known(self, tag: str) -> bool: ...

    def prefixed_keys(self, key: str, limit: int) -> list[str]: ...


@dataclass(frozen=True)
class TagFloor:
    """A ``Constraint`` (engine/backend.py) for the ``tag:`` line."""

    minimum: int
    """Distinct tags the line must hold before it may end."""
    vocabulary: TagVocabulary | None = None
    """When given, new tags must be tags it knows."""
    protected: frozenset[str] = frozenset()
    """Keys of the user's tags, allowed whether known or not."""
    banned: Callable[[str], bool] | None = None
    """Tags the line may not hold (the request's bans), so that a word is not
    started when every tag it could become is banned: the ban would refuse the
    comma, the floor the newline, and no token would be left."""

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
            if key in have or not self._real(tag, key) or self._contradicts(key, have):
                return False
            have.add(key)
        # Some tag the line may still take must start so, or no token could follow.
        if (
            not ends_line
            and self.vocabulary is not None
            and added
            and not self._can_finish(have, typed_key(rest))
        ):
            return False
        return not ends_line or len(have) >= self.minimum

    def _can_finish(self, have: set[str], typed: str) -> bool:
        """Whether some tag the line may still take starts with ``typed``: a user's
        tag not on the line yet, or a known tag neither on it nor banned."""
        if not typed or any(k.startswith(typed) and k not in have for k in self.protected):
            return True
        assert self.vocabulary is not None
        # Keys come in key order, a page at a time; usually the first page settles it.
        limit = len(have) + 8
        while True:
            keys = self.vocabulary.prefixed_keys(typed, limit)
            if any(k not in have and not self._banned(k) and not self._contradicts(k, have)
                   for k in keys):  # fmt: skip
                return True
            if len(keys) < limit:
                return False  # every key seen: a dead end
            if limit >= MAX_KEYS_SCANNED:
                return True  # too many to prove a dead end; the engine's fallback copes
            limit *= 4

    def _contradicts(self, key: str, have: set[str]) -> bool:
        # The user's tags count even when the model has written past one ("night" ->
        # "night sky"): they come back in the prompt whatever the line says.
        return key not in self.protected and contradicts(key, have | self.protected)

    def _banned(self, key: str) -> bool:
        return self.banned is not None and key not in self.protected and self.banned(key)

    def _real(self, tag: str, key: str) -> bool:
        return self.vocabulary is None or key in self.protected or self.vocabulary.is_known(tag)


def known_only(
    output: TipoOutput, vocabulary: TagVocabulary, protected: frozenset[str]
) -> TipoOutput:
    """``output`` without the tags ``vocabulary`` does not know (the user's stay).

    The decoding rule keeps unknown tags off the line, but a generation can stop
    in the middle of one (the token budget, or no token left that the rules
    allow); that fragment must not reach the prompt either.
    """

    def keep(tag: str) -> bool:
        return normalize_key(tag) in protected or vocabulary.is_known(tag)

    categories = {c: [t for t in tags if keep(t)] for c, tags in output.categories.items()}
    return replace(output, tags=[t for t in output.tags if keep(t)], categories=categories)


def consistent(
    output: TipoOutput, earlier: Iterable[str], protected: frozenset[str]
) -> TipoOutput:
    """``output`` without the new tags that contradict a tag before them (the user's,
    ``earlier`` steps', or the line's own; ``contradictions.py``).

    The rule on the line refuses them as they are written, but a generation cut
    off in the middle of a tag, or one that ends because no other token was left,
    can still leave one at its end.
    """
    have = {k for t in earlier if (k := normalize_key(t))} | protected
    dropped: set[str] = set()
    for tag in output.tags:
        key = normalize_key(tag)
        if not key or key in protected or key in have:
            continue
        if contradicts(key, have):
            dropped.add(key)
        else:
            have.add(key)
    if not dropped:
        return output

    def keep(tag: str) -> bool:
        return normalize_key(tag) not in dropped

    categories = {c: [t for t in tags if keep(t)] for c, tags in output.categories.items()}
    return replace(output, tags=[t for t in output.tags if keep(t)], categories=categories)


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
