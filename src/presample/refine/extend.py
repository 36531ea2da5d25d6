"""Extending a prompt without touching what the user wrote (pure functions).

A round's model input leaves the prompt's last field open (the ``tag:`` line,
or the user's text when there are no tags) so the model continues it; what it
writes is cut into whole tags or words, and those are *inserted* into the
user's prompt string (``insertion.py``). Nothing the user typed is rewritten:
weights, ``BREAK`` segments, ``<lora:...>`` and the user's spelling all
survive byte for byte, which is the refine loop's promise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..categories import Category
from ..dtg import dtg_input
from ..lengths import sentence_count
from ..prepare import Prepared
from ..tipo import EMPTY_TOKEN, NL_MAX, TAG_MIN, Length, Task, clean_value, tipo_input

Field = Literal["tags", "text"]

_LENGTHS = (Length.VERY_SHORT, Length.SHORT, Length.LONG, Length.VERY_LONG)
_UNIT = re.compile(r"(\s*)(\S+)")
_COMMA_RUN = re.compile(r"[,;，、]{2,}")
# Model output is untrusted: an added tag must not become prompt syntax that
# loads a network, splits the prompt or sets a weight when pasted into a UI.
_UNSAFE = re.compile(r"[<>{}|]|\bBREAK\b|\bAND\b|embedding:|:\s*[-+]?[\d.]+\s*$")


@dataclass(frozen=True, slots=True)
class Opening:
    """A model input that ends inside the field the model is to continue."""

    text: str
    field: Field


@dataclass(frozen=True, slots=True)
class Extension:
    """What one draw adds: text continuing the user's text, then new tags."""

    text: str = ""
    tags: tuple[str, ...] = ()

    def added(self) -> list[str]:
        words = [w for w in self.text.split() if any(ch.isalnum() for ch in w)]
        return [*words, *self.tags]

    def is_empty(self) -> bool:
        return not self.text.strip() and not self.tags


def tag_count(prepared: Prepared) -> int:
    return len(prepared.tags.get(Category.SPECIAL)) + len(prepared.tags.get(Category.GENERAL))


def tag_length_for(count: int, wanted: int) -> Length:
    """A length target that still asks for more tags after ``count`` + ``wanted``.

    Generous on purpose: the continuation is cut to the token budget anyway, and
    a target the prompt already fills makes a model stop after one tag.
    """
    return next(
        (length for length in _LENGTHS if TAG_MIN[length] > count + wanted), Length.VERY_LONG
    )


def nl_length_for(count: int) -> Length:
    return next(
        (n for n in _LENGTHS if NL_MAX[n] is None or NL_MAX[n] > count),  # type: ignore[operator]
        Length.VERY_LONG,
    )


def next_tag_length(count: int, minimum: dict[Length, int]) -> Length | None:
    """One length step up: the shortest target asking for more than ``count`` tags."""
    return next((length for length in _LENGTHS if minimum[length] > count), None)


def tipo_opening(prepared: Prepared, wanted: int) -> Opening:
    """TIPO: continue the tag line, or the user's text when there are no tags.

    ``wanted`` is about how many new tokens the round keeps.
    """
    tags, nl, meta = prepared.tag_line(), prepared.nl, prepared.meta()
    dialect = prepared.dialect
    if tags or not nl:
        task = Task.SHORT_TO_TAG if nl else Task.TAG
        length = tag_length_for(tag_count(prepared), wanted)
        if tags:
            # A trailing comma makes the model start a new tag instead of
            # lengthening the user's last one ("cat" -> "cat ears").
            text = tipo_input(meta, tags, nl, task, length, expand=True, dialect=dialect) + ","
        else:
            text = tipo_input(meta, "", nl, task, length, expand=False, dialect=dialect)
        return Opening(text, "tags")
    length = nl_length_for(sentence_count(nl))
    return Opening(
        tipo_input(meta, "", nl, Task.LONG_TO_TAG, length, expand=True, dialect=dialect),
        "text",
    )


def dtg_opening(prepared: Prepared, wanted: int, *, quality: bool) -> Opening:
    """DanTagGen writes general tags after ``<|input_end|>``."""
    length = tag_length_for(tag_count(prepared), wanted)
    aspect = prepared.request.effective_aspect_ratio() or 1.0
    return Opening(dtg_input(prepared.tags.as_dict(), length, aspect, quality=quality), "tags")


def continued_tags(continuation: str, *, finished: bool) -> list[str]:
    """Whole tags the model wrote on the open tag line.

    When the model stopped for length on that line, its last tag may be cut
    mid-word, so it is dropped.
    """
    line, newline, _ = continuation.partition("\n")
    pieces = line.split(",")
    if not newline and not finished:
        pieces = pieces[:-1]
    tags = [clean_value(p) for p in pieces]
    return [t for t in tags if t and t != EMPTY_TOKEN]


def continued_words(continuation: str, *, finished: bool) -> list[str]:
    """Whole words continuing the user's text, each with its leading space.

    A first fragment glued to the user's last word ("windowsill" + "s") would
    change what the user wrote, so it is dropped; so is a last word that the
    length limit may have cut.
    """
    line, newline, _ = continuation.partition("\n")
    units = _UNIT.findall(line)
    if not newline and not finished and units and not line[-1:].isspace():
        units = units[:-1]
    words: list[str] = []
    for position, (space, raw) in enumerate(units):
        word = _COMMA_RUN.sub(lambda m: m.group()[0], clean_value(raw))
        if not word or word == EMPTY_TOKEN or _UNSAFE.search(word):
            continue
        if position == 0 and not space and word[0].isalnum():
            continue
        if not any(ch.isalnum() for ch in word) and words and not words[-1][-1:].isalnum():
            continue  # punctuation after punctuation: "long,," would be malformed
        words.append((" " if space else "") + word)
    return words


def safe_tag(tag: str) -> bool:
    return not _UNSAFE.search(tag)


_ARTICLE = re.compile(r"^(?:a|an|the) ")


def same_key(key: str) -> str:
    """A tag key without a leading article: the user's "a cat" already says "cat"."""
    return _ARTICLE.sub("", key)


