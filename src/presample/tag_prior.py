"""A co-occurrence prior over the tags a tag line adds, applied as a decoding boost.

A small model knows which tags are common but little about which go together:
asked to continue four tags of a real post, the shipped model's new tags found
fewer of the post's other tags than simply adding the most frequent ones. The
training records know: ranking tags by how often they accompany the input's
tags (each input tag weighted by its rarity, mixed with overall frequency)
finds half as many again (``benchmarks/results/tag-prior-*.txt``). So while the
tag line is written, the model's best candidate tokens get a bonus for leading
to the tags this prior expects, and nothing else changes: the model still
writes every token, the rules still refuse what they refuse.

The prior is a distribution ``w`` over a few hundred tags. A token that turns
the tag being written from prefix ``p`` into ``q`` gets ``strength *
log(1 + (w(q) / w(p)) / FLOOR)``, where ``w(x)`` is the weight of the tags
starting with ``x`` (of the tag itself, when the token ends it with a comma).
That factors the prior over the tokens of its tags, so a multi-token tag is
not favoured over a one-token tag, and a token leading away from every tag
the prior holds gets nothing. The engine then shifts the scores so that the
candidates keep the probability the model gave them together
(``engine/backend.py: boost_additions``): the prior decides which tag comes
next, never whether the line ends, so lengths stay the model's and the rules'.

The counts live in a read-only SQLite file built from the training split by
``presample train prior`` (``training/cooccurrence.py``), shipped inside the
package; like the tag database it opens in a millisecond and is only read.
"""

from __future__ import annotations

import math
import random
import sqlite3
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .errors import RunError
from .rating import LEVELS
from .tagdb import normalize_key, open_read_only, typed_key

DEFAULT_TABLE_NAME = "cooccurrence.sqlite"
SCHEMA_VERSION = "4"
PRIOR_TAGS = 256
"""Tags the prior holds; its weights beyond these are negligible."""
FREQUENCY_SHARE = 0.1
"""Weight of overall frequency against co-occurrence (0.05-0.2 measured alike)."""
FLOOR = 0.01
"""A prefix whose tags hold this share of the prior's weight doubles the odds of its token."""
BOOST_TAGS = 32
"""Tags the boost leans towards: the prior's best. Over all 256, the model's new tags
spread over ranks where 4% of them are right (29% in the top ten); over the best 32
recall went 20.6% -> 23.0% (validation split, 200 items x 2 seeds)."""
DRAW_TEMPERATURE = 0.3
"""Tags are drawn with chance proportional to ``weight ** (1 / DRAW_TEMPERATURE)``:
mostly the likeliest, with variety across seeds (validation split, drawing every new
tag: recall 27.1% by rank alone, 25.8% at 0.3, 22.8% at 0.5, 18.5% at 1)."""
# Weight below this is float rounding: the prior's tags weigh 1e-4 and more.
_NOISE = 1e-9
# A prefix no key may extend: every key starting with ``p`` sorts below ``p + END``.
_END = "\U0010ffff"


class TagPriorError(RunError):
    """The co-occurrence table is missing, corrupt or of another schema version."""


def default_table_path() -> Path:
    return Path(str(resources.files("presample") / "data" / DEFAULT_TABLE_NAME))


class CooccurrenceTable:
    """Read-only access to a co-occurrence table (``training/cooccurrence.py``)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_table_path()
        if not self.path.is_file():
            raise TagPriorError(
                f"co-occurrence table not found at {self.path}; build it with "
                "'presample train prior'"
            )
        try:
            self._conn = open_read_only(self.path)
            meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise TagPriorError(f"{self.path} is not a co-occurrence table: {exc}") from exc
        if meta.get("schema") != SCHEMA_VERSION:
            raise TagPriorError(
                f"{self.path} has schema {meta.get('schema')!r}, expected {SCHEMA_VERSION!r}; "
                "rebuild it with 'presample train prior'"
            )
        self.records = tuple(int(meta[f"records{level}"]) for level in range(LEVELS))
        self._frequent = lru_cache(maxsize=LEVELS)(self._most_frequent)
        apart: dict[str, set[str]] = {}
        for a, b in self._conn.execute("SELECT a, b FROM apart"):
            apart.setdefault(a, set()).add(b)
            apart.setdefault(b, set()).add(a)
        self._apart = {key: frozenset(others) for key, others in apart.items()}

    def close(self) -> None:
        self._conn.close()

    def weights(
        self,
        given: Iterable[str],
        level: int,
        *,
        names: Iterable[str] = (),
        excluded: Callable[[str], bool] | None = None,
        size: int = PRIOR_TAGS,
        frequency_share: float = FREQUENCY_SHARE,
    ) -> dict[str, float]:
        """The prior over new tags for a tag line holding ``given``, as weights summing
        to 1: each tag scores ``share * P(tag) + (1 - share) * mean P(tag | g)`` over
        the given tags and ``names`` (characters, copyrights) ``g`` the table knows,
        weighted by ``log(1 + N / count(g))`` (a rare given tag says more than
        ``1girl``), every count taken over the records at the rating ``level`` or
        below. Only tags seen there, and not ``excluded``, are candidates; never a
        name. Empty when the table knows none of the given tags or names there."""
        if level not in range(LEVELS):  # it names a column below
            raise ValueError(f"rating level must be 0..{LEVELS - 1}, not {level!r}")
        have = _keys(given)
        known = self._given(have, level) + self._given(_keys(names), level, name=True)
        if not known:
            # Nothing to condition on (a sentence, or tags the records never hold): a
            # frequency prior would only pull every prompt towards "1girl, solo".
            return {}
        total = max(self.records[level], 1)
        scores = {key: frequency_share * n / total for key, n in self._frequent(level)}
        for key, share, n_level in self._companions(known, level):
            scores.setdefault(key, frequency_share * n_level / total)
            scores[key] += (1 - frequency_share) * share
        ranked = sorted(
            ((s, k) for k, s in scores.items() if k not in have and not (excluded and excluded(k))),
            reverse=True,
        )[:size]
        mass = sum(s for s, _ in ranked)
        return {k: s / mass for s, k in ranked} if mass > 0 else {}

    def apart(self, key: str, keys: Iterable[str]) -> bool:
        """Whether tag ``key`` keeps apart from one of ``keys`` in the records: where
        both are common they (nearly) never meet (``kitchen`` and ``street``;
        ``training/cooccurrence.apart_pairs``). Keys as ``normalize_key`` gives them."""
        others = self._apart.get(key)
        return others is not None and not others.isdisjoint(keys)

    def likelihoods(
        self,
        given: Iterable[str],
        level: int,
        keys: Iterable[str],
        *,
        names: Iterable[str] = (),
    ) -> dict[str, float]:
        """How likely each of ``keys`` is on a tag line holding ``given``: the mean
        share of the records holding a given tag (or one of ``names``) that also
        hold the key, each weighted by its rarity as in :meth:`weights`, at rating
        ``level`` or below. Keys never seen with a given tag are left out; empty
        when the table knows none of the given tags or names."""
        if level not in range(LEVELS):
            raise ValueError(f"rating level must be 0..{LEVELS - 1}, not {level!r}")
        known = self._given(_keys(given), level) + self._given(_keys(names), level, name=True)
        wanted = sorted(_keys(keys))
        if not known or not wanted:
            return {}
        found: dict[str, float] = {}
        for key, share, _ in self._companions(known, level, wanted):
            found[key] = found.get(key, 0.0) + share
        return found

    def _companions(
        self, known: list[tuple[int, int, float]], level: int, keys: Sequence[str] = ()
    ) -> Iterator[tuple[str, float, int]]:
        """For each known given tag (``_given``) and each tag seen with it at ``level``
        (only ``keys``, when given): ``(tag, w / W * n / count, records holding the
        tag)``, where ``w`` is the given tag's rarity weight, ``W`` the sum of them,
        ``n`` the records holding both and ``count`` those holding the given tag."""
        norm = sum(w for _, _, w in known)
        only = f" AND t.key IN ({','.join('?' * len(keys))})" if keys else ""
        for tag_id, count, weight in known:
            for key, n, n_level in self._conn.execute(
                f"SELECT t.key, p.n{level}, t.n{level} FROM pairs p JOIN tags t ON t.id = p.b "
                f"WHERE p.a = ?{only}",
                (tag_id, *keys),
            ):
                if n and n_level:
                    yield key, weight / norm * n / count, n_level

    def _given(
        self, keys: set[str], level: int, *, name: bool = False
    ) -> list[tuple[int, int, float]]:
        """(id, records at ``level`` holding it, weight) of each given key (tags, or
        names) the table knows at that level."""
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        rows = self._conn.execute(
            f"SELECT id, n{level} FROM tags WHERE name = ? AND key IN ({marks})",
            (int(name), *sorted(keys)),
        ).fetchall()
        everyone = self.records[level]
        return [(i, n, math.log1p(everyone / n)) for i, n in rows if n > 0]

    def _most_frequent(self, level: int) -> list[tuple[str, int]]:
        return self._conn.execute(
            f"SELECT key, n{level} FROM tags WHERE name = 0 AND n{level} > 0 "
            f"ORDER BY n{level} DESC, key LIMIT ?",
            (PRIOR_TAGS,),
        ).fetchall()


def draw_tags(
    weights: dict[str, float],
    count: int,
    takes: Callable[[str, list[str]], bool],
    rng: random.Random,
    temperature: float = DRAW_TEMPERATURE,
) -> list[str]:
    """Up to ``count`` distinct tags drawn from the prior ``weights``, each with chance
    proportional to ``weight ** (1 / temperature)`` among those ``takes(tag, drawn)``
    still accepts given the tags drawn before it. Fewer when too few are accepted.

    A tag is asked about only once it is drawn, and one refused is never offered
    again: the same distribution as filtering every candidate before each draw, at
    a few calls of ``takes`` per tag instead of one per candidate (the rules cost
    78 ms a prompt that way)."""
    left = sorted(weights)  # sorted: the same seed draws the same tags
    powered = [weights[t] ** (1 / temperature) for t in left]
    drawn: list[str] = []
    while len(drawn) < count and left:
        (at,) = rng.choices(range(len(left)), powered)
        tag = left.pop(at)
        powered.pop(at)
        if takes(tag, drawn):
            drawn.append(tag)
    return drawn


def _keys(tags: Iterable[str]) -> set[str]:
    return {k for t in tags if (k := normalize_key(t))}


@dataclass(frozen=True)
class TagPrior:
    """A ``Boost`` (engine/backend.py) for the ``tag:`` line."""

    weights: dict[str, float]
    strength: float = 1.0
    floor: float = FLOOR
    _keys: list[str] = field(init=False, repr=False)
    _cumulative: list[float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        keys = sorted(self.weights)
        cumulative = [0.0]
        for key in keys:
            cumulative.append(cumulative[-1] + self.weights[key])
        object.__setattr__(self, "_keys", keys)
        object.__setattr__(self, "_cumulative", cumulative)

    def boosts(self, text: str, candidates: Sequence[str | None]) -> list[float | None]:
        line = text[text.rfind("\n") + 1 :]
        key, sep, value = line.partition(":")
        if not sep or key.strip() != "tag" or not self.weights:
            return [None] * len(candidates)
        *done, partial = value.split(",")
        seen = {k for k in map(normalize_key, done) if k in self.weights}
        base = self._mass(typed_key(partial), seen)
        if base <= 0:
            return [None] * len(candidates)  # a tag the prior does not hold: the model's
        return [self._boost(partial, piece, seen, base) for piece in candidates]

    def _boost(
        self, partial: str, piece: str | None, seen: set[str], base: float
    ) -> float | None:
        if piece is None or "\n" in piece:
            return None  # the length rules and the model decide where the line ends
        written = partial + piece
        if "," in written:
            tag = normalize_key(written.split(",", 1)[0])
            mass = 0.0 if tag in seen else self.weights.get(tag, 0.0)
        else:
            mass = self._mass(typed_key(written), seen)
        return self.strength * math.log1p(mass / base / self.floor)

    def _mass(self, prefix: str, seen: set[str]) -> float:
        """The weight of the tags starting with ``prefix`` that the line lacks."""
        low = bisect_left(self._keys, prefix)
        high = bisect_left(self._keys, prefix + _END, low)
        mass = self._cumulative[high] - self._cumulative[low]
        left = mass - sum(self.weights[k] for k in seen if k.startswith(prefix))
        # Float sums: when the line holds every such tag, ``left`` can come out as
        # -1e-16 (or +1e-16, a base that would blow a candidate's ratio up), not 0.
        return left if left > _NOISE else 0.0
