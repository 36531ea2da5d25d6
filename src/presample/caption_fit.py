"""How well a caption written from tags talks about those tags.

A small model asked to caption a tag list often falls back on the captions it
saw most ("A detailed close-up captures a vibrant red wine glass ...") instead
of describing the tags. The pipeline draws a few captions and keeps the one
whose words come most from the tags (``caption_fit``).

Written by hand because what is wanted is plain word overlap that runs in
microseconds on every candidate: an embedding model would add a heavy
dependency to every run, and is what the evaluation judges captions with, so
picking by it would flatter the numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .contradictions import hair_length

# Caption nouns for people, by the Danbooru people-count tag family they belong
# to. Shared with training data preparation (``training.captions``), which tags
# captions with count tags by the same nouns.
PERSON_NOUNS: dict[str, tuple[str, ...]] = {
    "girl": ("girl", "woman", "lady", "bride", "mother", "daughter", "sister", "queen",
             "princess", "actress", "waitress", "ballerina", "schoolgirl", "girlfriend",
             "wife", "grandmother", "businesswoman", "policewoman"),
    "boy": ("boy", "man", "guy", "gentleman", "groom", "father", "son", "brother", "king",
            "prince", "actor", "waiter", "schoolboy", "boyfriend", "husband", "grandfather",
            "businessman", "policeman", "fisherman"),
}  # fmt: skip
_IRREGULAR = {"woman": "women", "man": "men", "lady": "ladies", "wife": "wives",
              "businesswoman": "businesswomen", "businessman": "businessmen",
              "policewoman": "policewomen", "policeman": "policemen",
              "fisherman": "fishermen"}  # fmt: skip


def person_plural(noun: str) -> str:
    return _IRREGULAR.get(noun, noun + "s")


def _said(family: str, adjective: str) -> tuple[str, ...]:
    """The words a caption uses for a family's people; irregular plurals listed
    since ``_stem`` only strips regular endings."""
    nouns = PERSON_NOUNS[family]
    return (adjective, *nouns, *(_IRREGULAR[n] for n in nouns if n in _IRREGULAR))


_GIRLS, _BOYS, _OTHERS = _said("girl", "female"), _said("boy", "male"), ("person", "figure")
_PEOPLE = {"girl": _GIRLS, "girls": _GIRLS, "boy": _BOYS, "boys": _BOYS,
           "other": _OTHERS, "others": _OTHERS}  # fmt: skip
_COUNT_TAG = re.compile(r"^(?:\d+\+?|multiple)\s*(girls?|boys?|others?)$")

# Words that carry no subject: a caption using them is not about the tags.
_STOP_WORDS = """a an and are as at be by for from has have her his in is it its of on or
    the their there this to with without while who which that these those into
    onto over under up down out very not no one two three four five other others
    looking viewer focus solo"""
_STOP = frozenset(_STOP_WORDS.split())
_WORD = re.compile(r"[a-z]+")


def _stem(word: str) -> str:
    """Plural endings off, so "cats" meets "cat"."""
    for ending in ("ies", "es", "s"):
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            if ending == "ies":
                return word[: -len(ending)] + "y"
            if ending == "es" and not word[: -len(ending)].endswith(("sh", "ch", "x", "s")):
                continue
            return word[: -len(ending)]
    return word


def content_words(text: str) -> set[str]:
    """The words of a text that carry a subject, plural endings off."""
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


def tag_words(tags: Iterable[str]) -> set[str]:
    """The words a caption about these tags would use."""
    words: set[str] = set()
    for tag in tags:
        tag = re.sub(r"\\?\(.*?\\?\)", " ", tag.lower()).replace("_", " ").strip()
        if match := _COUNT_TAG.match(tag):
            words.update(_PEOPLE[match.group(1)])
            continue
        words |= content_words(tag)
    return words


def people_words(tags: Iterable[str]) -> set[str]:
    """The words a caption uses for the people the count tags name (``1girl`` -> girl,
    woman ...); empty when the tags name no people."""
    words: set[str] = set()
    for tag in tags:
        if match := _COUNT_TAG.match(tag.lower().replace("_", " ").strip()):
            words.update(_PEOPLE[match.group(1)])
    return words


def names_people(caption: str, tags: Iterable[str]) -> bool | None:
    """Whether a caption mentions the people its tags count (``None``: the tags count
    none). A caption for ``1girl, scenery`` that never says girl or woman is about
    something else, however many colour words it shares with the tags."""
    wanted = people_words(tags)
    if not wanted:
        return None
    return bool(content_words(caption) & wanted)


def caption_fit(caption: str, words: set[str]) -> float:
    """Share of the caption's content words that come from the tags, in [0, 1].

    A share rather than a count so that a long caption is not preferred merely
    for being long (the length target is checked separately); the factor
    ``1 - 1 / (2 + hits)`` tips equal shares towards the caption that mentions
    more of the tags ("a girl." should not beat a sentence about her and the sky).
    """
    said = content_words(caption)
    if not said or not words:
        return 0.0
    hits = len(said & words)
    return hits / len(said) * (1 - 1 / (2 + hits))


# What a caption says of a person's hair and eyes, to check against the tags: a
# caption for `long hair, blonde hair` that says "short brown hair" contradicts
# the prompt it sits in (seen on the shipped model, one draw in three). Colours
# and lengths a word or two before "hair"/"eyes" ("long, flowing blonde hair").
_COLOURS = ("black", "brown", "blonde", "blond", "red", "orange", "yellow", "green",
            "blue", "aqua", "purple", "pink", "white", "grey", "gray", "silver")  # fmt: skip
_SAME_COLOUR = {"blond": "blonde", "gray": "grey"}
_FEATURE = re.compile(
    r"\b(" + "|".join(_COLOURS) + r"|short|long|cropped|pixie|shoulder-length)\b"
    r"((?:[\s,-]+[a-z]+){0,2}?)[\s,-]+(hair|eyes)\b"
)
_LONG, _SHORT = frozenset({"long"}), frozenset({"short", "cropped", "pixie", "shoulder-length"})
_TAG_COLOUR = re.compile(r"(\w+) (hair|eyes)")


def _features(text: str) -> dict[str, set[str]]:
    """The colours of hair and eyes, and the hair length, a text states."""
    found: dict[str, set[str]] = {"hair": set(), "eyes": set(), "length": set()}
    for match in _FEATURE.finditer(text.lower()):
        # Every colour or length word of the phrase: "long, flowing blonde hair".
        words = [match.group(1), *re.findall(r"[a-z-]+", match.group(2))]
        for word in words:
            if word in _COLOURS:
                found[match.group(3)].add(_SAME_COLOUR.get(word, word))
            elif match.group(3) == "hair" and (word in _LONG or word in _SHORT):
                found["length"].add("long" if word in _LONG else "short")
    return found


def caption_conflicts(caption: str, tags: Iterable[str]) -> int:
    """How many of hair colour, eye colour and hair length a caption states
    otherwise than the tags do (0-3). Only what both state counts: a caption
    that names no hair colour, or tags that give none, conflict in nothing."""
    stated: dict[str, set[str]] = {"hair": set(), "eyes": set(), "length": set()}
    for tag in tags:
        key = tag.lower().replace("_", " ").strip()
        if (length := hair_length(key)) is not None:
            # A caption's words have no "medium": it is short beside long.
            stated["length"].add("long" if length == "long" else "short")
        elif (match := _TAG_COLOUR.fullmatch(key)) is not None:
            colour = _SAME_COLOUR.get(match.group(1), match.group(1))
            if colour in _COLOURS:
                stated[match.group(2)].add(colour)
    said = _features(caption)
    return sum(1 for k in stated if stated[k] and said[k] and not stated[k] & said[k])
