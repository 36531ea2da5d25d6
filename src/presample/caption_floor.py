"""A generation-time floor for a caption field: no end before enough sentences.

The reference reaches a sentence target by calling the model again with the
caption so far (up to ten retries). A caption that is already a finished
thought ("a photo of a beautiful woman.") then meets end of sequence on every
retry, and the run returns one sentence where two to four were asked for.
Refusing the end of the field (end of sequence or a newline) until the caption
holds enough complete sentences makes the model write the next one in the same
call, the way ``tag_floor.TagFloor`` does for the tag line. The floor covers
the caption a step writes (``long:``) and the user's text a step continues (the
expanded text the prompt shows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .lengths import complete_sentence_count


def complete_sentences(text: str) -> int:
    """Sentences closed by a stop, counted as the training data counts them
    (``lengths.py``). A trailing fragment does not count: ending there would leave
    the caption cut mid-sentence."""
    return complete_sentence_count(text)


@dataclass(frozen=True)
class CaptionFloor:
    """A ``Constraint`` (engine/backend.py) for the caption fields ``fields``."""

    fields: frozenset[str]
    """The caption fields the step writes or continues (``long``, ``short``)."""
    minimum: int
    """Complete sentences the field must hold before it may end."""

    def allowed(self, text: str, candidates: Sequence[str | None]) -> list[bool]:
        line = text[text.rfind("\n") + 1 :]
        key, sep, value = line.partition(":")
        if not sep or key.strip() not in self.fields or complete_sentences(value) >= self.minimum:
            return [True] * len(candidates)
        return [self._ok(value, piece) for piece in candidates]

    def _ok(self, value: str, piece: str | None) -> bool:
        if piece is None:
            return False
        if "\n" not in piece:
            return True
        return complete_sentences(value + piece.split("\n", 1)[0]) >= self.minimum
