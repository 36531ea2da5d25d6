"""A lean towards the people the tags count, in a caption written from tags.

Asked to caption ``1girl, scenery``, the shipped model wrote about grass, a
skyscraper or a stone wall in four draws of eight, and "a man and a woman" in
one: the caption sets it learnt from describe landscapes more often than
anime tags name girls. Drawing three captions and keeping the one that names
the people (``runs.py``, ``caption_fit.names_people``) helps only when one of
the three does. ``CaptionSubject`` leans each token of the caption towards the
nouns for the people the count tags name ("girl", "woman" ...) until the
caption has named them, and away from the nouns of people the tags do not
count ("man" beside ``1girl`` alone) throughout: the model still chooses where
and how to say it, among the words it already considered likely. When the tags
count nobody it leans, the same way, towards the things the user's own one-word
tags name (``subject_words``: ``cat, window``).

Written by hand: it is a ``Boost`` (engine/backend.py) over the model's 64 best
tokens, plain string work on a few words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .caption_fit import (
    PERSON_NOUNS,
    content_words,
    names_people,
    people_words,
    person_plural,
)
from .contradictions import describes_person

# The caption field a caption step writes (``tipo.tipo_input``: ``long: ...``).
CAPTION_FIELD = "long"
# How strongly a caption leans to its people (added to their tokens' scaled logits).
# benchmarks/bench_caption_subject.py, 80 validation items x 2 seeds: 4 names them in
# every caption (95.6% with no lean) with the similarity to the real captions about
# level (Civitai fragments 0.187 -> 0.174, caption sets 0.586 -> 0.601); 8 names them
# more often in the first prompts a user types (97.5% against 95%) but moves further
# from the real captions (0.170 / 0.585).
SUBJECT_STRENGTH = 4.0
# A partial word this long that begins a person noun leans too ("wome" of "women"):
# shorter ones begin too many other words ("ma", "bo", "wo").
MIN_PREFIX = 4


def _with_plurals(words: Iterable[str]) -> frozenset[str]:
    return frozenset(w for word in words for w in (word, person_plural(word)))


def _nouns(family: str) -> frozenset[str]:
    return _with_plurals(PERSON_NOUNS[family])


_FAMILIES = {"girl": _nouns("girl"), "boy": _nouns("boy")}


@dataclass(frozen=True)
class CaptionSubject:
    """A ``Boost`` for the ``long:`` caption of a step that captions tags."""

    wanted: tuple[frozenset[str], ...]
    """For each kind of people the tags count (girls, boys, others), the words that
    name them: a caption using one has named that kind."""
    unwanted: frozenset[str]
    """Nouns of people the tags do not count."""
    strength: float

    @classmethod
    def for_tags(
        cls, tags: Iterable[str], strength: float, yours: Iterable[str] = ()
    ) -> CaptionSubject | None:
        """The lean for a caption of ``tags``: towards the people they count or, when
        they count none, towards the things the user's own tags ``yours`` name
        (``subject_words``); ``None`` when there is neither."""
        if strength <= 0:
            return None
        wanted = {_with_plurals(people_words([tag])) for tag in tags} - {frozenset()}
        if not wanted:
            things = subject_words(yours)
            return cls((things,), frozenset(), strength) if things else None
        said = frozenset().union(*wanted)
        unwanted = frozenset().union(*(n for n in _FAMILIES.values() if not n & said))
        return cls(tuple(sorted(wanted, key=sorted)), unwanted, strength)

    def boosts(self, text: str, candidates: Sequence[str | None]) -> list[float | None]:
        line = text[text.rfind("\n") + 1 :]
        key, sep, caption = line.partition(":")
        if not sep or key.strip() != CAPTION_FIELD:
            return [None] * len(candidates)
        words = content_words(caption)
        unnamed = frozenset().union(*(kind for kind in self.wanted if not kind & words))
        partial = _trailing_letters(caption)
        scores: list[float | None] = []
        for piece in candidates:
            word = _word_of(partial, piece)
            if word and _begins(word, unnamed):
                scores.append(self.strength)
            elif word and _begins(word, self.unwanted):
                scores.append(-self.strength)
            else:
                scores.append(0.0)
        return scores


# Tags that describe a person's pose but fit a cat as well (`cat, sitting, window`).
_ANY_SUBJECT = re.compile(r"(?:standing|sitting|lying|holding|looking at viewer)\b")
# One-word tags that set a scene or a style rather than name a thing a caption would
# say it shows.
_NOT_THINGS = frozenset({"scenery", "outdoors", "indoors", "day", "night", "realistic",
                         "photorealistic", "solo", "sky", "landscape", "monochrome",
                         "greyscale", "highres", "absurdres", "masterpiece",
                         # the light a scene is in ("reflects the sunlight" of a car)
                         "sunlight", "light", "shadow", "backlighting", "reflection",
                         "lighting"})  # fmt: skip


def subject_words(tags: Iterable[str]) -> frozenset[str]:
    """The words of the things one-word tags name (``cat, window`` -> cat, cats,
    window, windows), leaving out scene or style words: a caption has named its
    subject once it says one of them. None when a tag describes a person (hair,
    clothes, body): she is the subject then, counted or not (`jitome, thong,
    navel` once got "a vibrant green jitome suspended from the ceiling")."""
    lowered = [t.lower() for t in tags]
    if any(describes_person(t) and not _ANY_SUBJECT.match(t) for t in lowered):
        return frozenset()
    return _with_plurals(
        w for w in lowered if w.isalpha() and w not in _NOT_THINGS and not describes_person(w)
    )


def names_subject(caption: str, tags: Iterable[str], yours: Iterable[str]) -> bool | None:
    """Whether a caption names what it should be about: the people its ``tags``
    count or, when they count none, one of the things the user's own tags ``yours``
    name (``subject_words``); ``None`` when there is neither to name."""
    people = names_people(caption, tags)
    if people is not None:
        return people
    things = subject_words(yours)
    if not things:
        return None
    # Both sides through ``content_words``: its plural endings off ("glass", "cats").
    return bool(content_words(caption) & content_words(" ".join(things)))


def _trailing_letters(text: str) -> str:
    end = len(text)
    while end > 0 and text[end - 1].isalpha():
        end -= 1
    return text[end:].lower()


def _word_of(partial: str, piece: str | None) -> str:
    """The word a candidate token writes or finishes: the caption's unfinished
    word and the piece's letters when the piece continues it, else the piece's
    own first word; empty for an end, a stop or a space alone."""
    if not piece:
        return ""
    if piece[0].isalpha():
        head = partial
    else:
        head, piece = "", piece.lstrip(" \"'(")
    letters = _leading_letters(piece)
    return (head + letters).lower() if letters else ""


def _leading_letters(text: str) -> str:
    end = 0
    while end < len(text) and text[end].isalpha():
        end += 1
    return text[:end]


def _begins(word: str, nouns: frozenset[str]) -> bool:
    """Whether ``word`` is one of ``nouns`` or, at ``MIN_PREFIX`` letters or more,
    the start of one."""
    if word in nouns:
        return True
    return len(word) >= MIN_PREFIX and any(n.startswith(word) for n in nouns)
