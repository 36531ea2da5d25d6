"""A generation-time rule against captions that loop: no word twice in a row,
no phrase of two to four words three times in a row.

A small model that falls into "A panoramic view of the ruins of the Buddhist
temple. The temple is a Buddhist Buddhist Buddhist Buddhist ..." does not climb
out: the repetition penalty only dampens each token, and the loop runs to the
token budget, a wasted caption and hundreds of wasted tokens; tags such as
``hot, balloon`` gave "A hot hot hot hot balloon" on every seed. A caption does
not say a word twice in a row ("that that" is the rare exception worth losing),
nor the same two to four words three times over, so a token that would make it
do so is refused and the model takes its next choice. Phrases repeated further
apart ("a black and white cat ... a black and white dog") are left alone: real
captions do that.

Hand-written because the library rule closest to it, Hugging Face's
``no_repeat_ngram_size``, forbids any repeated n-gram anywhere in the text,
which real captions need, and works on token ids, which differ between our two
backends; this works on the text, like the other rules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

TIMES = 3
"""A phrase this many times in a row is a loop (a single word: twice)."""
LONGEST = 4
"""Longest phrase, in words, checked for loops."""
# Enough of the line's end to hold TIMES x LONGEST words and the one being written.
_TAIL_CHARS = 240
# Words, and sentence ends as words of their own: "... in the park. Park benches"
# does not say "park" twice in a row; "hot, hot" does.
_WORD = re.compile(r"[^\W_]+|[.!?]")
_ENDS = frozenset(".!?")


def _words(text: str) -> list[str]:
    """The words and sentence ends of the tail of ``text``, lowercased; the last
    word possibly unfinished."""
    tail = text[-_TAIL_CHARS:]
    words = _WORD.findall(tail.lower())
    if len(text) > _TAIL_CHARS and words and tail[:1].isalnum():
        words = words[1:]  # cut in half by the tail
    return words


def loops(text: str) -> bool:
    """Whether ``text`` ends with a word repeated, or a phrase of up to ``LONGEST``
    words repeated ``TIMES`` times, in a row."""
    return _ends_in_loop(_words(text))


def _ends_in_loop(words: list[str]) -> bool:
    # A loop's last word repeats one of the LONGEST words before it. Checked first
    # because it settles nearly every candidate, which matters when a row keeps
    # the whole vocabulary (top_k 0): the rule then runs on every token id.
    if not words or words[-1] not in words[-(LONGEST + 1) : -1]:
        return False
    for size in range(1, LONGEST + 1):
        span = size * (2 if size == 1 else TIMES)
        if len(words) < span:
            break
        end = words[-span:]
        phrase = end[:size]
        if size == 1 and phrase[0] in _ENDS:
            continue  # "..." and "!!" are punctuation, not a repeated word
        if all(end[i : i + size] == phrase for i in range(size, span, size)):
            return True
    return False


@dataclass(frozen=True)
class NoLoops:
    """A ``Constraint`` (engine/backend.py) for the caption fields ``fields``."""

    fields: frozenset[str]

    def allowed(self, text: str, candidates: Sequence[str | None]) -> list[bool]:
        line = text[text.rfind("\n") + 1 :]
        key, sep, value = line.partition(":")
        if not sep or key.strip() not in self.fields:
            return [True] * len(candidates)
        words = _words(value)[-(TIMES * LONGEST + 1) :]
        # A loop already in the text (the user's own words) is not ours to refuse.
        if _ends_in_loop(words):
            return [True] * len(candidates)
        joins = bool(value) and value[-1].isalnum()
        return [piece is None or not _ends_in_loop(_extended(words, joins, piece))
                for piece in candidates]  # fmt: skip


def _extended(words: list[str], joins: bool, piece: str) -> list[str]:
    """``words`` with the words of ``piece`` appended (``joins``: the text ends
    inside a word, which a piece starting with a letter continues)."""
    new = _WORD.findall(piece.lower())
    if not new:
        return words
    if joins and words and piece[0].isalnum():
        return [*words[:-1], words[-1] + new[0], *new[1:]]
    return [*words, *new]
