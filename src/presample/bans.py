"""Ban rules: tags and sentences a result must not contain.

Rules are applied twice: during generation, as a constraint that refuses any
token which would complete a banned tag (or put banned words in a sentence),
so the model is steered to something else instead of losing a slot; and
afterwards, as a filter that catches what steering cannot see (a tag split
across retries, text the user typed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .categories import TAG_GROUPS, Category
from .patterns import compile_user_regex
from .request import BanRule
from .tagdb import normalize_key

# Tag-list fields of the TIPO layout; everything else is prose.
TAG_FIELDS = frozenset({"tag", "general", "artist", "characters", "copyrights", "meta",
                        "quality", "rating", "special"})  # fmt: skip


class BanMatcher:
    """Compiled ban rules; ``category_of`` resolves a tag's category (tag database)."""

    def __init__(
        self,
        rules: Sequence[BanRule],
        category_of: Callable[[str], Category] | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self._exact = {normalize_key(r.pattern) for r in rules if r.kind == "exact"}
        self._substrings = [normalize_key(r.pattern) for r in rules if r.kind == "substring"]
        self._regexes = [compile_user_regex(r.pattern) for r in rules if r.kind == "regex"]
        self._groups = [
            re.compile(TAG_GROUPS[r.pattern], re.IGNORECASE) for r in rules if r.kind == "group"
        ]
        self._categories = {Category(r.pattern) for r in rules if r.kind == "category"}
        self._category_of = category_of
        # Word-bounded forms of exact tags, for catching them inside sentences.
        self._exact_in_text = [
            re.compile(rf"(?<!\w){re.escape(key)}(?!\w)") for key in sorted(self._exact)
        ]

    def __bool__(self) -> bool:
        return bool(self.rules)

    def tag_banned(self, tag: str) -> bool:
        key = normalize_key(tag)
        if not key:
            return False
        if key in self._exact or any(s in key for s in self._substrings):
            return True
        if any(rx.search(tag) or rx.search(key) for rx in self._regexes):
            return True
        if any(rx.search(key) for rx in self._groups):
            return True
        return bool(
            self._categories
            and self._category_of is not None
            and self._category_of(tag) in self._categories
        )

    def text_banned(self, text: str) -> bool:
        """A sentence mentions a banned tag, substring or pattern.

        Category and group bans apply to tags only: names and words inside
        prose are too ambiguous to judge (``bun`` the bread, ``Miku`` the word).
        """
        key = normalize_key(text)
        if any(rx.search(key) for rx in self._exact_in_text):
            return True
        if any(s in key for s in self._substrings):
            return True
        return any(rx.search(text) for rx in self._regexes)

    def filter_tags(self, tags: Sequence[str]) -> list[str]:
        return [t for t in tags if not self.tag_banned(t)]

    def filter_text(self, text: str) -> str:
        """Drop the sentences of ``text`` that mention something banned."""
        sentences = [s.strip() for s in text.split(".") if s.strip()]
        kept = [s for s in sentences if not self.text_banned(s)]
        if len(kept) == len(sentences):
            return text
        return ". ".join(kept) + ("." if kept else "")


@dataclass(frozen=True)
class BanConstraint:
    """The generation-time side of a ``BanMatcher``.

    A candidate token is refused when, appended to the current line, it would
    complete a banned tag in a tag field (the tag ends at a comma, a newline
    or the end of the text), or make a prose field contain banned words.
    Protected tags (the user's own) are never refused.
    """

    matcher: BanMatcher
    protected: frozenset[str] = frozenset()

    def allowed(self, text: str, candidates: Sequence[str | None]) -> list[bool]:
        line = text[text.rfind("\n") + 1 :]
        key, sep, value = line.partition(":")
        in_tags = bool(sep) and key.strip() in TAG_FIELDS
        in_text = bool(sep) and key.strip() in ("short", "long")
        if not in_tags and not in_text:
            return [True] * len(candidates)
        partial = value.rsplit(",", 1)[-1] if in_tags else value
        return [self._ok(partial, piece, in_tags) for piece in candidates]

    def _ok(self, partial: str, piece: str | None, in_tags: bool) -> bool:
        if in_tags:
            joined = partial + ("\n" if piece is None else piece)
            # Every tag this piece completes (it may hold a comma or a newline).
            parts = re.split(r"[,\n]", joined)
            return not any(self._banned_tag(done) for done in parts[:-1])
        if piece is None:
            return True
        # The sentence being written, including one this piece may end.
        sentence = partial.rsplit(".", 1)[-1] + piece
        return not self.matcher.text_banned(sentence)

    def _banned_tag(self, tag: str) -> bool:
        tag = tag.strip()
        return (
            bool(tag) and normalize_key(tag) not in self.protected and self.matcher.tag_banned(tag)
        )
