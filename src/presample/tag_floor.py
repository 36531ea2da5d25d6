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

Real is not enough. Once the model would have ended the line (its most likely
token ends it) and the floor refuses, a small model has nothing left it believes
in, and the engine's fallback walks the vocabulary to whatever real tag a token
can still start: `1girl, dakimakura (medium), dress, flower` asked for 54+ tags
got `2008, 13844, 114514 (meme), 2024 attempted assassination of donald trump`
and a dozen more years. So from that point on (a *forced* line) new tags must
come from a fill list, the tags that accompany the line's tags in real prompts
(the co-occurrence table of ``tag_prior.py``), and when none of those can be
added the line may end short of the floor: a missed length beats noise.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from .contradictions import contradicts, contradicts_yours, describes_person, has_person
from .engine.backend import Constraint
from .tagdb import normalize_key, typed_key
from .tipo import TipoOutput

# Keys looked at before giving up on proving that a typed word leads nowhere.
MAX_KEYS_SCANNED = 2048
# ``TagFloor._ok``'s verdict on a line end refused only because the line is short.
_SHORT = object()


def _begins(offset: int, tag: str) -> int:
    """Where ``tag``, found at ``offset`` of the line, starts (past its spaces)."""
    return offset + len(tag) - len(tag.lstrip())


class TagVocabulary(Protocol):
    """What the rule needs of the tag database (``presample.tagdb.TagDatabase``)."""

    def is_known(self, tag: str) -> bool: ...

    def prefixed_keys(self, key: str, limit: int) -> list[str]: ...


FillTags = Callable[[Sequence[str]], Iterable[str]]
"""The keys of the tags a forced line may take, given the tags the line holds."""


@dataclass(frozen=True)
class _Forced:
    """Where the floor first refused the end the model wanted, and what may follow."""

    at: int
    """Offset in the line's value: tags starting here or later must be fill tags."""
    keys: list[str]
    """The fill tags' keys, sorted (prefix search by bisection)."""


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
    fill: FillTags | None = None
    """When given, what a forced line may be filled with (see the module's doc);
    without it any tag the other rules allow."""
    stated: frozenset[str] = frozenset()
    """Keys of tags the user's text states ("at night": ``contradictions.said``),
    which new tags may not contradict either."""
    needs_person: bool = False
    """The request names no person (no count tag, character or person's feature): a
    tag describing one waits until the line says there is one (``1girl`` ...)."""
    apart: Callable[[str, Iterable[str]], bool] | None = None
    """Whether the records keep a new tag apart from one on the line
    (``CooccurrenceTable.apart``: ``street`` after ``kitchen``); such a tag is refused."""
    # The forced point of each line this rule has seen, by the line's text up to it.
    # A rule object serves one job, whose text only grows, so this is a record of
    # its own path (a few entries), not shared state: the same text always gives
    # the same verdicts.
    _forced: dict[str, _Forced] = field(default_factory=dict, compare=False, repr=False)

    def allowed(self, text: str, candidates: Sequence[str | None]) -> list[bool]:
        line = text[text.rfind("\n") + 1 :]
        key, sep, value = line.partition(":")
        if not sep or key.strip() != "tag":
            return [True] * len(candidates)
        *done, partial = value.split(",")
        seen = {k for k in map(normalize_key, done) if k}
        forced = self._forced_at(value)
        verdicts = [self._ok(seen, value, piece, forced) for piece in candidates]
        if (
            forced is None
            and self.fill is not None
            and candidates
            and verdicts[0] is _SHORT
        ):
            # The model's best token (candidates come best first) ends the line and
            # only the count refuses it: from here on the line is filled.
            tags = [t.strip() for t in (*done, partial) if normalize_key(t)]
            keys = set(map(normalize_key, self.fill(tags)))
            if self.needs_person and not has_person(seen | self.protected | self.stated):
                # The model put no person in the picture: filling must not (``solo`` is
                # everything's first companion, and after it come hair and eyes).
                keys = {k for k in keys if not has_person([k])}
            forced = _Forced(len(value), sorted(keys))
            self._forced[value] = forced
            verdicts = [self._ok(seen, value, piece, forced) for piece in candidates]
        return [v is True for v in verdicts]

    def _forced_at(self, value: str) -> _Forced | None:
        for prefix, forced in self._forced.items():
            if value.startswith(prefix):
                return forced
        return None

    def _ok(
        self, seen: set[str], value: str, piece: str | None, forced: _Forced | None
    ) -> bool | object:
        """True, False, or ``_SHORT``: the line end, refused for its count alone."""
        if piece and piece[0] in " \t" and value[-1:] in (" ", "\t"):
            # A second space: no tag has one, and a line the floor keeps open once
            # took 300 tokens of them (each a piece that ends no tag).
            return False
        ends_line = piece is None or "\n" in piece
        added = "" if piece is None else piece.split("\n", 1)[0]
        start = value.rfind(",") + 1  # where the tag being written starts
        *completed, rest = (value[start:] + added).split(",")
        if ends_line:
            completed.append(rest)
        have = set(seen)
        for tag in completed:
            key = normalize_key(tag)
            if key:
                if key in have or not self._real(tag, key) or self._contradicts(key, have):
                    return False
                if forced and _begins(start, tag) >= forced.at and not self._fills(forced, key):
                    return False
                have.add(key)
            start += len(tag) + 1
        typed = typed_key(rest)
        if not ends_line and added and typed:
            if forced and _begins(start, rest) >= forced.at:
                if not self._can_fill(forced, have, typed):
                    return False
            elif self.vocabulary is not None and not self._can_finish(have, typed):
                # Some tag the line may still take must start so, or no token could follow.
                return False
        if not ends_line or len(have) >= self.minimum:
            return True
        if forced and not self._can_fill(forced, have, ""):
            return True  # nothing left to fill with: end short rather than add noise
        return _SHORT

    def _fills(self, forced: _Forced, key: str) -> bool:
        i = bisect_left(forced.keys, key)
        return key in self.protected or (i < len(forced.keys) and forced.keys[i] == key)

    def _can_fill(self, forced: _Forced, have: set[str], typed: str) -> bool:
        """Whether some fill tag the line may still take starts with ``typed``."""
        if self._user_tag_left(have, typed):
            return True
        i = bisect_left(forced.keys, typed)
        for key in forced.keys[i:]:
            if not key.startswith(typed):
                return False
            if self._takes(key, have):
                return True
        return False

    def _can_finish(self, have: set[str], typed: str) -> bool:
        """Whether some tag the line may still take starts with ``typed``: a user's
        tag not on the line yet, or a known tag neither on it nor banned."""
        if not typed or self._user_tag_left(have, typed):
            return True
        assert self.vocabulary is not None
        # Keys come in key order, a page at a time; usually the first page settles it.
        limit = len(have) + 8
        while True:
            keys = self.vocabulary.prefixed_keys(typed, limit)
            if any(self._takes(k, have) for k in keys):
                return True
            if len(keys) < limit:
                return False  # every key seen: a dead end
            if limit >= MAX_KEYS_SCANNED:
                return True  # too many to prove a dead end; the engine's fallback copes
            limit *= 4

    def _user_tag_left(self, have: set[str], typed: str) -> bool:
        return any(k.startswith(typed) and k not in have for k in self.protected)

    def _takes(self, key: str, have: set[str]) -> bool:
        """Whether the line may still take tag ``key``: not on it, banned or contradicting."""
        return key not in have and not self._banned(key) and not self._contradicts(key, have)

    def _contradicts(self, key: str, have: set[str]) -> bool:
        return clashes(key, have, self.protected, self.stated, self.needs_person, self.apart)

    def _banned(self, key: str) -> bool:
        return self.banned is not None and key not in self.protected and self.banned(key)

    def _real(self, tag: str, key: str) -> bool:
        return self.vocabulary is None or key in self.protected or self.vocabulary.is_known(tag)


def clashes(
    key: str,
    have: set[str],
    protected: frozenset[str],
    stated: frozenset[str] = frozenset(),
    needs_person: bool = False,
    apart: Callable[[str, Iterable[str]], bool] | None = None,
) -> bool:
    """Whether new tag ``key`` may not join a line holding ``have``: it contradicts the
    line, the user's tags (``protected``) or what their text states (``stated``), the
    records keep it ``apart`` from one of them, or it describes a person where
    ``needs_person`` and nothing puts one in the picture."""
    # The user's tags count even when the model has written past one ("night" ->
    # "night sky"): they come back in the prompt whatever the line says.
    if key in protected:
        return False
    every = have | protected | stated
    if needs_person and describes_person(key) and not has_person(every):
        return True
    if apart is not None and apart(key, every):
        return True
    return contradicts(key, every) or contradicts_yours(key, protected, every)


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
        if contradicts(key, have) or contradicts_yours(key, protected, have):
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
