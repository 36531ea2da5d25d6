"""The tag database: canonical names, categories and popularity of Danbooru tags.

It is a read-only SQLite file built by ``scripts/build_tagdb.py`` from
``danbooru.csv`` and shipped inside the package. SQLite (from the standard
library) was chosen over a table loaded into a dict because opening it costs
about a millisecond and a few hundred kB of memory, where reading 170k keys into
Python objects costs a tenth of a second and tens of MB before the first lookup
(``benchmarks/bench_foundation.py`` measures both). Batched lookups go through a
single ``IN`` query so 10k tags resolve in one round trip.
"""

from __future__ import annotations

import bisect
import functools
import re
import sqlite3
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .categories import DANBOORU_CATEGORY, FIXED_CATEGORY, Category
from .errors import RunError
from .syntax import escape_tag, unescape_tag

DEFAULT_DB_NAME = "tags.sqlite"
SCHEMA_VERSION = "1"

_SPACES = re.compile(r"\s+")


def normalize_key(text: str) -> str:
    """The lookup key of any spelling of a tag.

    Case, underscores versus spaces, A1111 escapes (``\\(``) and Unicode width
    variants all map to the same key, so ``Hatsune_Miku``, ``hatsune miku`` and
    ``ganyu \\(genshin impact\\)`` find their tags.
    """
    return " ".join(typed_key(text).split())


def typed_key(text: str) -> str:
    """``normalize_key`` without collapsing whitespace: the key prefix of a tag being
    typed, where ``blue `` is a prefix of ``blue sky`` and ``feet__`` of no tag."""
    # The fast paths matter: this runs once per tag of every lookup.
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    if "\\" in text:
        text = unescape_tag(text)
    return text.replace("_", " ").lower().lstrip()


def literal_key(name: str) -> str:
    """The key of a tag *name* taken literally (a backslash in it is a backslash)."""
    return normalize_key(escape_tag(name))


def display_name(danbooru_name: str) -> str:
    """How a tag is written in a prompt: spaces instead of underscores.

    Names shorter than four characters keep their underscores because they are
    emoticons (``o_o``, ``^_^``) whose underscore is part of the picture; this is
    also the rule the TIPO training data used.
    """
    if len(danbooru_name) < 4:
        return danbooru_name
    return danbooru_name.replace("_", " ")


@dataclass(frozen=True, slots=True)
class TagInfo:
    """One resolved tag."""

    name: str
    """Canonical name as written in prompts (spaces, no escapes)."""
    category: Category
    post_count: int
    """Danbooru posts carrying the tag; 0 for tags only known from fixed tables."""
    alias: bool = False
    """True when the query was an alias of ``name`` rather than a spelling of it."""

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "category": self.category.value,
            "post_count": self.post_count,
            "alias": self.alias,
        }


class TagDatabaseError(RunError):
    """The tag database file is missing, corrupt or of another schema version."""


def open_read_only(path: Path) -> sqlite3.Connection:
    """A connection to a SQLite file that ships with the package and is only read.

    immutable=1: the file never changes under us, so SQLite skips locking and
    change detection; check_same_thread=False because the connection is only
    ever read and the server shares one instance across threads.
    """
    uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
    return sqlite3.connect(uri, uri=True, check_same_thread=False)


def default_db_path() -> Path:
    return Path(str(resources.files("presample") / "data" / DEFAULT_DB_NAME))


_FIXED_KEYS = frozenset(normalize_key(name) for name in FIXED_CATEGORY)
_SORTED_FIXED_KEYS = sorted(_FIXED_KEYS)


def _fixed_info(key: str) -> TagInfo | None:
    category = FIXED_CATEGORY.get(key) or FIXED_CATEGORY.get(key.replace(" ", "_"))
    if category is None:
        return None
    name = key if key in FIXED_CATEGORY else key.replace(" ", "_")
    return TagInfo(name=name, category=category, post_count=0)


class TagDatabase:
    """Read-only access to the shipped (or a user-built) tag database."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        if not self.path.is_file():
            raise TagDatabaseError(
                f"tag database not found at {self.path}; build it with "
                "'python scripts/build_tagdb.py'"
            )
        # Remembered: the tag-line rules ask the same prefixes for every row and token
        # (thousands a second when a weak model's candidates are all refused).
        self._prefixed = functools.lru_cache(maxsize=1 << 16)(self._query_prefixed)
        try:
            self._conn = open_read_only(self.path)
            version = self._conn.execute(
                "SELECT value FROM info WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise TagDatabaseError(f"{self.path} is not a presample tag database: {exc}") from exc
        if version is None or version[0] != SCHEMA_VERSION:
            raise TagDatabaseError(
                f"{self.path} has schema version {version and version[0]!r}, "
                f"expected {SCHEMA_VERSION!r}; rebuild it with scripts/build_tagdb.py"
            )

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> TagDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def info(self) -> dict[str, str]:
        """Provenance and counts recorded when the database was built."""
        return dict(self._conn.execute("SELECT key, value FROM info").fetchall())

    def lookup(self, tag: str) -> TagInfo | None:
        """Resolve one spelling or alias; ``None`` for unknown tags."""
        return self.lookup_many([tag])[0]

    def lookup_many(self, tags: Sequence[str]) -> list[TagInfo | None]:
        """Resolve many tags in one query per 30k distinct keys, in order."""
        keys = [normalize_key(t) for t in tags]
        found: dict[str, TagInfo] = {}
        pending = [k for k in set(keys) if k]
        # SQLite allows 32766 bound parameters per statement.
        for start in range(0, len(pending), 30_000):
            chunk = pending[start : start + 30_000]
            rows = self._conn.execute(
                "SELECT l.key, t.name, t.category, t.post_count, l.alias "
                "FROM lookup AS l JOIN tag AS t ON t.id = l.tag_id "
                f"WHERE l.key IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            for key, name, category, post_count, alias in rows:
                shown = display_name(name)
                found[key] = TagInfo(
                    name=shown,
                    # The fixed tables win, also through aliases (1girls -> 1girl).
                    category=FIXED_CATEGORY.get(shown)
                    or DANBOORU_CATEGORY.get(category, Category.GENERAL),
                    post_count=post_count,
                    alias=bool(alias),
                )
        for key in pending:
            if key not in found and (fixed := _fixed_info(key)) is not None:
                found[key] = fixed
        return [found.get(k) for k in keys]

    def category_of(self, tag: str) -> Category:
        info = self.lookup(tag)
        return info.category if info is not None else Category.GENERAL

    def canonical(self, tag: str) -> str:
        """The canonical spelling of a tag, or the tidied input if unknown."""
        info = self.lookup(tag)
        return info.name if info is not None else tidy_unknown(tag)

    def categorize(self, tags: Iterable[str]) -> dict[Category, list[str]]:
        """Split tags into TIPO categories, canonicalising known ones.

        Unlike the reference (whose lookup is case-sensitive and depends on the
        order its lists happen to be read in) every spelling of a tag lands in
        the same category, and special/quality/rating tables take precedence.
        Unknown tags are general tags; duplicates keep their first position.
        """
        tag_list = [t for t in tags if t.strip()]
        result: dict[Category, list[str]] = {c: [] for c in Category}
        seen: set[str] = set()
        for tag, info in zip(tag_list, self.lookup_many(tag_list), strict=True):
            name = info.name if info is not None else tidy_unknown(tag)
            if name in seen:
                continue
            seen.add(name)
            result[info.category if info is not None else Category.GENERAL].append(name)
        return result

    def is_known(self, tag: str) -> bool:
        return self.lookup(tag) is not None

    def has_prefix(self, key: str) -> bool:
        """Whether some tag's key starts with ``key`` (already a ``normalize_key``)."""
        return bool(self.prefixed_keys(key, 1))

    def prefixed_keys(self, key: str, limit: int) -> list[str]:
        """Up to ``limit`` keys (spellings and aliases) that start with ``key``, in key order."""
        return list(self._prefixed(key, limit))

    def _query_prefixed(self, key: str, limit: int) -> tuple[str, ...]:
        i = bisect.bisect_left(_SORTED_FIXED_KEYS, key)
        fixed = []
        for k in _SORTED_FIXED_KEYS[i : i + limit]:
            if not k.startswith(key):
                break
            fixed.append(k)
        rows = self._conn.execute(
            "SELECT key FROM lookup WHERE key >= ? AND key < ? ORDER BY key LIMIT ?",
            (key, _after_prefix(key), max(1, limit)),
        ).fetchall()
        return tuple(sorted({r[0] for r in rows} | set(fixed))[:limit])

    def most_popular(self, limit: int, category: int = 0) -> list[str]:
        """The names (as written in prompts) of the ``limit`` tags of a Danbooru
        category (0: general) with the most posts, most first."""
        rows = self._conn.execute(
            "SELECT name FROM tag WHERE category = ? ORDER BY post_count DESC, id LIMIT ?",
            (category, max(0, limit)),
        ).fetchall()
        return [display_name(name) for (name,) in rows]

    def search_prefix(self, prefix: str, limit: int = 20) -> list[TagInfo]:
        """Most popular tags whose key starts with ``prefix`` (for autocompletion)."""
        key = normalize_key(prefix)
        if not key:
            return []
        upper = _after_prefix(key)
        rows = self._conn.execute(
            "SELECT t.name, t.category, t.post_count, MIN(l.alias) FROM lookup AS l "
            "JOIN tag AS t ON t.id = l.tag_id WHERE l.key >= ? AND l.key < ? "
            "GROUP BY t.id ORDER BY t.post_count DESC LIMIT ?",
            (key, upper, max(1, min(limit, 1000))),
        ).fetchall()
        return [
            TagInfo(
                name=display_name(name),
                category=FIXED_CATEGORY.get(display_name(name))
                or DANBOORU_CATEGORY.get(category, Category.GENERAL),
                post_count=count,
                alias=bool(alias),
            )
            for name, category, count, alias in rows
        ]


def _after_prefix(key: str) -> str:
    """The smallest text after every text starting with ``key``: the prefix with its
    last character incremented, an upper bound an index range scan can use.

    The increment skips the surrogates (SQLite cannot encode them) and carries
    past U+10FFFF, the last character.
    """
    stem = key
    while stem and stem[-1] == "\U0010ffff":
        stem = stem[:-1]
    if not stem:
        return key + "\U0010ffff"  # nothing sorts after it; every real key is below
    following = ord(stem[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:
        following = 0xE000
    return stem[:-1] + chr(following)


def tidy_unknown(tag: str) -> str:
    """Spelling for a tag the database does not know: unescaped, spaced, trimmed.

    Case is kept because unknown tags are often names or natural phrases.
    """
    text = unescape_tag(unicodedata.normalize("NFKC", tag))
    text = _SPACES.sub(" ", text).strip()
    return text if len(text) < 4 else text.replace("_", " ")
