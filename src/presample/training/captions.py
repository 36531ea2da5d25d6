"""Natural-language helpers for caption data: sentences, coarse summaries, tags in captions.

The coarse summary follows the refiner spec (``spec/REFINER.md``): any summary
that keeps the subject works, down to keeping the head noun phrase.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..caption_fit import PERSON_NOUNS, person_plural
from ..categories import Category
from ..lengths import sentences, tidy


def first_sentence(text: str) -> str:
    found = sentences(text)
    return found[0] if found else ""


# Where a noun phrase usually ends: prepositions, verbs, conjunctions, clauses.
_PHRASE_END = frozenset(
    {
        "is", "are", "was", "were", "be", "being", "has", "have", "had", "with", "without",
        "in", "on", "at", "of", "from", "by", "for", "to", "into", "onto", "over", "under",
        "above", "below", "behind", "beside", "near", "next", "against", "along", "across",
        "through", "around", "that", "which", "who", "whose", "while", "where", "when", "as",
        "and", "but", "or", "shows", "showing", "features", "featuring", "captured", "depicts",
        "depicting", "sits", "sitting", "stands", "standing", "lies", "lying", "holds",
        "holding", "wearing", "wears", "looks", "looking", "appears", "can", "could", "will",
        "would",
    }
)  # fmt: skip
# Framing words that describe the photo rather than its subject.
_FRAMING = re.compile(
    r"^(?:an?\s+|the\s+)?(?:(?:close-up|closeup|medium|wide|full|outdoor|indoor|aerial|"
    r"eye-level|high-angle|low-angle|top-down|overhead|black-and-white|color|blurry|"
    r"detailed|digital|vintage|stock)\s+)*"
    r"(?:shot|view|photo|photograph|image|picture|illustration|rendering|painting|scene|"
    r"drawing)\s+(?:of|shows|showing|captures|depicts|featuring)\s+",
    re.IGNORECASE,
)
MAX_COARSE_WORDS = 6


def coarse_summary(text: str) -> str:
    """The head noun phrase of the first sentence ("An expansive field, blanketed..." ->
    "An expansive field"): what a novice would type for that picture."""
    sentence = _FRAMING.sub("", first_sentence(text))
    words: list[str] = []
    for word in sentence.split():
        bare = word.strip(".,;:!?\"'()").lower()
        if words and (bare in _PHRASE_END or word[0] in "(\"'"):
            break
        words.append(word.strip(".,;:!?\"'()"))
        if word[-1] in ",.;:!?" or len(words) >= MAX_COARSE_WORDS:
            break
    phrase = " ".join(w for w in words if w)
    return phrase[:1].upper() + phrase[1:] if phrase else ""


KnownLookup = Callable[[list[str]], list]
"""``TagDatabase.lookup_many``: spellings to ``TagInfo | None``."""

# Caption words rarely mean the Danbooru tag they spell.
_NOT_TAGS = frozenset({"a (phrase)", "solo", "english text", "no humans", "text focus"})
FALSE_FRIENDS = frozenset({
    "can", "back", "patch", "tan", "shade", "space", "perspective", "hot", "circle", "dark",
})  # fmt: skip
"""Caption words that spell a popular tag in another sense ("it can", "in the back", "a
patch of grass", "tan" the colour, "from a high-angle perspective"). Matched as tags,
they became the shipped model's commonest additions to a sentence (``can, tan, patch``
after "a red vintage car ...")."""
MIN_CAPTION_TAG_POSTS = 2000
MAX_NGRAM = 3


def caption_tags(text: str, lookup_many: KnownLookup) -> list[str]:
    """Danbooru general tags spelled out in a caption ("on a wooden table" -> wooden table).

    Greedy longest match over 1-3 word n-grams; only popular general tags, and
    an alias only when it is a plural of the tag (``flowers`` -> flower), so
    ``side`` does not become ``from side``.
    """
    words = [w.strip(".,;:!?\"'()").lower() for w in tidy(text).split()]
    words = [w for w in words if w]
    grams = [
        (i, n, " ".join(words[i : i + n]))
        for i in range(len(words))
        for n in range(MAX_NGRAM, 0, -1)
        if i + n <= len(words)
    ]
    infos = dict(zip((g for _, _, g in grams), lookup_many([g for _, _, g in grams]), strict=True))
    found: list[str] = []
    i = 0
    while i < len(words):
        for n in range(MAX_NGRAM, 0, -1):
            gram = " ".join(words[i : i + n])
            info = infos.get(gram) if i + n <= len(words) else None
            if info is not None and _usable(gram, info):
                if info.name not in found:
                    found.append(info.name)
                i += n
                break
        else:
            i += 1
    return found


def _usable(gram: str, info) -> bool:
    if info.category is not Category.GENERAL or info.name in _NOT_TAGS | FALSE_FRIENDS:
        return False
    if info.post_count < MIN_CAPTION_TAG_POSTS:
        return False
    name = info.name
    return not info.alias or gram in (name + "s", name + "es", name[:-1] + "ies")


# Without count tags for "a woman" a caption set never links her to ``1girl``,
# the tag nearly every anime prompt starts with, and a model trained on it
# writes captions from tags that ignore the subject.
_NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "couple": 2, "pair": 2}
_CROWD = frozenset({"people", "crowd", "group", "persons", "team", "audience", "family"})
_NOUN_FAMILY = {
    form: (family, plural)
    for family, nouns in PERSON_NOUNS.items()
    for noun in nouns
    for form, plural in ((noun, False), (person_plural(noun), True))
}


def caption_people(text: str) -> list[str]:
    """The Danbooru people-count tags a caption's nouns imply, plus ``solo``.

    "A woman in a red coat" -> ``1girl, solo``; "two men and a woman" ->
    ``1girl, 2boys``; "girls playing" -> ``multiple girls``. A noun repeated
    ("a man ... the man") counts once; a plural without a number is "multiple".
    """
    words = [w.strip(".,;:!?\"'()").lower().removesuffix("'s") for w in tidy(text).split()]
    counts: dict[str, int] = {}
    for i, word in enumerate(words):
        if word not in _NOUN_FAMILY:
            continue
        family, plural = _NOUN_FAMILY[word]
        number = 1
        if plural:
            before = words[max(0, i - 2) : i]
            number = next((_NUMBERS[w] for w in reversed(before) if w in _NUMBERS), 6)
        counts[family] = max(counts.get(family, 0), number)
    tags = []
    for family in ("girl", "boy"):
        count = counts.get(family, 0)
        if count == 1:
            tags.append(f"1{family}")
        elif count in (2, 3, 4, 5):
            tags.append(f"{count}{family}s")
        elif count:
            tags.append(f"multiple {family}s")
    if sum(counts.values()) == 1 and not _CROWD & set(words):
        tags.append("solo")
    return tags
