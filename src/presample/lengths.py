"""How text is measured against the length targets: one sentence counter for all.

The training data labels each caption's length class by this count
(``training/samples.nl_length``), and that label is what a length token means
to the model. So the engine's rules (the caption floor, retries), refine's
choice of the next length, and the eval's hits count the same way. A sentence
ends at ``.``, ``!`` or ``?`` followed by white space and a word, a quote or a
bracket, in either case (the model continues a lower-case text in lower case:
"a cat on a sill. its fur is soft." is two sentences), but not after an
abbreviation or a one-letter word ("e.g. the", "J. Smith"; "3.5 m" has no
space), or at a CJK full stop ``。！？`` (Chinese and Japanese put no space after one).

The length ranges themselves belong to the TIPO layout (``tipo.py``).
"""

from __future__ import annotations

import re

from .tipo import NL_MAX, NL_MIN, TAG_MAX, TAG_MIN, Length

# Not after an abbreviation or a one-letter word ("e.g.", "Dr.", "J. Smith", "25y.o.").
_NOT_AFTER = "".join(
    f"(?<!\\b{word}\\.)"
    for word in ("e\\.g", "i\\.e", "etc", "vs", "Mr", "Mrs", "Ms", "Dr", "St", "No", "\\w")
)
_SENTENCE_END = re.compile(rf"(?<=[.!?]){_NOT_AFTER}\s+(?=[\w\"'(])|(?<=[。！？])\s*(?=\S)")
_SPACES = re.compile(r"\s+")
# The marks that can close a sentence (a trailing fragment after the last one is open).
STOPS = ".!?。！？"


def tidy(text: str) -> str:
    """One line, single spaces, no space before punctuation (CC3M writes ``word .``)."""
    text = _SPACES.sub(" ", text).strip()
    return re.sub(r"\s+([.,;:!?])", r"\1", text)


def sentences(text: str) -> list[str]:
    """A text's sentences, each with its closing mark."""
    return [s.strip() for s in _SENTENCE_END.split(tidy(text)) if s.strip()]


def sentence_count(text: str) -> int:
    return len(sentences(text))


def complete_sentence_count(text: str) -> int:
    """Sentences closed by a stop: a fragment after the last one does not count."""
    end = max(text.rfind(stop) for stop in STOPS)
    return sentence_count(text[: end + 1]) if end >= 0 else 0


def tag_length_hit(count: int, length: Length | str) -> bool:
    """Whether a tag count is within ``TAG_MIN..TAG_MAX`` of the requested length."""
    length = Length(length)
    return TAG_MIN[length] <= count <= TAG_MAX[length]


def nl_length_hit(text: str, length: Length | str) -> bool:
    """Whether a text's sentence count is within ``NL_MIN..NL_MAX`` (no maximum for
    very_long)."""
    length = Length(length)
    count = sentence_count(text)
    top = NL_MAX[length]
    return count >= NL_MIN[length] and (top is None or count <= top)
