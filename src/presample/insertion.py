"""Adding to a prompt without touching what the user typed (pure functions).

Additions (new tags, the continuation of the user's text) are *inserted* into
the prompt string at the end of its first segment's content; every byte the
user typed (weights, ``BREAK``, ``<lora:...>``, spelling, separators) stays
where it was. The refine loop and the ``typed`` output template both write
prompts this way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .syntax import COMMAS, ParsedPrompt

SENTENCE_ENDS = (".", "!", "?", "。", "！", "？")


@dataclass(frozen=True, slots=True)
class Anchors:
    """Where additions go in the prompt string."""

    text_end: int | None
    """After the user's last text fragment of the first segment with content."""
    content_end: int
    """After the last tag or text of that segment (new tags go here)."""
    tag_end: int | None = None
    """After the last tag of that segment, if it has one."""


def anchors(prompt: str, parsed: ParsedPrompt | None) -> Anchors | None:
    """``None`` when the prompt has no tag or text the model could continue."""
    pieces = [p for p in (parsed.pieces if parsed else ()) if p.kind in ("tag", "text")]
    if not pieces:
        return None
    segment = min(p.segment for p in pieces)
    mine = [p for p in pieces if p.segment == segment]
    texts = [p.end for p in mine if p.kind == "text"]
    tags = [p.end for p in mine if p.kind == "tag"]
    return Anchors(
        text_end=max(texts) if texts else None,
        content_end=max(p.end for p in mine),
        tag_end=max(tags) if tags else None,
    )


def insert(
    prompt: str,
    where: Anchors,
    text: str = "",
    tags: Sequence[str] = (),
    *,
    respell: Sequence[tuple[int, int, str]] = (),
) -> str:
    """The prompt with ``text`` after the user's text and ``tags`` after the content;
    ``respell``: (start, end, new) spans of the prompt written anew (a tag's
    canonical spelling), which never overlap an anchor's offset from inside."""
    tag_part = "".join(f", {t}" for t in tags)
    edits: dict[int, str] = {}
    if text and where.text_end is not None:
        edits[where.text_end] = text
    if tag_part:
        before = edits.get(where.content_end, "")
        if before.rstrip().endswith(SENTENCE_ENDS):
            # After a finished sentence the tags start anew, not after a comma.
            tag_part = " " + tag_part.removeprefix(", ")
        edits[where.content_end] = before + tag_part
    changes = [(offset, offset, edit) for offset, edit in edits.items()]
    changes += [(start, end, new) for start, end, new in respell]
    out = prompt
    # From the end backwards, so earlier offsets stay valid; an insertion at a
    # span's end goes before the span is rewritten.
    for start, end, edit in sorted(changes, key=lambda c: (c[0], c[1] == c[0]), reverse=True):
        if start == end and prompt[start : start + 1] in COMMAS:
            # The user's own comma follows: the addition does not end in a mark
            # of its own ("tail.," would be malformed).
            edit = edit.rstrip(".,;:!?。，、 ") or edit
        out = out[:start] + edit + out[end:]
    return out


def text_added(user_text: str, extended: str) -> str:
    """The part of the pipeline's extended text that follows the user's own text."""
    if not user_text or not extended:
        return ""
    sentences = [s.strip() for s in user_text.split(".") if s.strip()]
    head = ". ".join(sentences)
    if not extended.startswith(head):
        return ""
    rest = extended[len(head) :]
    if rest[:1].isalnum():
        return ""  # would change the user's last word
    if user_text.rstrip().endswith(".") and rest.startswith("."):
        rest = rest[1:]
    return rest.rstrip()
