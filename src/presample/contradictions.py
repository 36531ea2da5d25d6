"""Tags that cannot describe one picture together: ``day`` and ``night``, ``solo``
and ``2boys``.

A small model continuing a tag line picks each tag for the tags just before
it, and so writes ``day`` ten tags after ``night``, or ``solo`` beside
``1girl, 2boys``. Only sure contradictions are listed: hair lengths or body
types are left alone because a picture of several people holds several, and
``multiple girls`` goes with ``2girls`` on Danbooru; one person has one hair
colour and one eye colour (two with ``two-tone hair`` or ``heterochromia``) and
one pose (not ``standing`` and ``sitting``); a picture has one framing (not
``full body`` and ``upper body``).
Hair lengths and breast
sizes exclusive in a picture of one person (``solo``) were tried and dropped:
on 200 held-out prompts x 3 seeds recall fell from 16.4% to 15.8% and the new
tags no training prompt holds rose from 1.2% to 3.3% (refused, the model
reached for rarer tags), and real posts hold such pairs more than one thinks.
Against the user's own hair length they are refused (``contradicts_yours``):
recall unchanged (``benchmarks/results/hair-length-2026-12-06.txt``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .categories import TAG_GROUPS

# Pairs that exclude each other in any picture.
EXCLUSIVE_PAIRS: frozenset[frozenset[str]] = frozenset(
    frozenset(pair)
    for pair in (
        ("day", "night"),
        ("day", "night sky"),  # Danbooru implies night from it
        ("day", "starry sky"),  # and from this (seen: "starry sky ... day" for a scenery)
        ("night", "blue sky"),  # seen: "1girl, ..., blue sky, night"
        ("indoors", "outdoors"),
        ("1girl", "multiple girls"),
        ("1boy", "multiple boys"),
        # One framing per picture: how much of the subject it shows. In the training
        # prompts full body comes with upper body at 0.2 of chance, with cowboy shot at
        # 0.4; upper body with portrait or close-up at 3.4x chance, so those stay.
        *(
            ("full body", other)
            for other in ("upper body", "cowboy shot", "portrait", "close-up", "lower body")
        ),
        *(("cowboy shot", other) for other in ("upper body", "portrait", "close-up")),
        ("upper body", "lower body"),
    )
)
# Pairs that exclude each other for one person: a pose (standing with sitting at 0.2
# of chance in the training prompts, sitting with on back at 0.02).
ONE_PERSON_PAIRS: frozenset[frozenset[str]] = frozenset(
    frozenset(pair)
    for pair in (
        *(
            ("standing", other)
            for other in ("sitting", "lying", "on back", "on stomach", "kneeling", "squatting")
        ),
        *(("sitting", other) for other in ("lying", "on back", "on stomach")),
    )
)
# Words of a sentence that state a tag of the pairs above: "parked on a street at
# night" is a night picture, and a new ``day`` contradicts it. Only words with no
# other common sense ("inside a box" is not ``indoors``).
_SAID = {
    "night": re.compile(r"\b(?:night|nighttime|midnight)\b"),
    "day": re.compile(r"\b(?:day|daytime|daylight)\b"),
    "indoors": re.compile(r"\bindoors\b"),
    "outdoors": re.compile(r"\boutdoors\b"),
}
# A hair or eye colour ("blonde hair", "aqua eyes"). One person has one of each,
# two when the line says so (two-tone hair, heterochromia ...): a second colour
# otherwise is the model running on (`long hair, smile, beach` got black and
# blonde hair, brown and blue eyes), and a third never (one girl was given black,
# brown and blonde hair, red and blue eyes; that limit measured on 200 held-out
# items x 3 seeds: recall 16.0% -> 15.9%, precision 14.2% both,
# benchmarks/results/tag-prior-colours-2026-12-06.txt).
_COLOURED = re.compile(
    r"(black|brown|light brown|blonde|red|orange|yellow|green|blue|light blue|dark blue|"
    r"aqua|purple|pink|white|grey|silver) (hair|eyes)"
)
MAX_COLOURS = 2
_MIXED = {
    "hair": frozenset({"two-tone hair", "multicolored hair", "streaked hair", "gradient hair",
                       "colored inner hair", "split-color hair", "colored tips"}),
    "eyes": frozenset({"heterochromia", "multicolored eyes"}),
}  # fmt: skip
# People counts: "3girls" counts 3; "6+girls" at least 6; "multiple girls" at least 2.
_COUNT = re.compile(r"(\d+)(\+?)(girls?|boys?|others?)")
_MULTIPLE = {"multiple girls": "girls", "multiple boys": "boys", "multiple others": "others"}


# Tags that describe a person: hair, eyes, what is worn, the body, a pose or a face.
# On Danbooru they come with a people-count tag (``1girl``, ``2boys``) or ``solo``;
# a line without one that takes them is a small model running on from prompts
# full of people ("a bowl of ramen": ``blonde hair, navel, choker``).
_PERSONAL = re.compile(
    "|".join(TAG_GROUPS[g] for g in ("hair", "eyes", "clothing"))
    + r"|\b(breasts|cleavage|navel|lips|teeth|tongue|thighs|legs|nose|blush|smile|makeup|"
    r"earrings|necklace|choker|jewelry|looking at viewer|parted lips|closed mouth|"
    r"open mouth|solo focus|male focus|female focus|standing|sitting|holding|muscular|"
    r"skin|waist|hips|shoulders?|arms?|hands?|fingers?|feet|foot|nails|abs|collarbone|"
    r"armpits|midriff|stomach|belly|mature (?:fe)?male|old (?:wo)?man)\b"
)
_PERSON = {"solo", "male focus", "female focus", "solo focus"}  # besides the count tags


def describes_person(key: str) -> bool:
    """Whether tag ``key`` describes a person (hair, eyes, clothes, body, pose)."""
    return _PERSONAL.search(key) is not None


def has_person(keys: Iterable[str]) -> bool:
    """Whether the tags say the picture holds a person: a count tag, or ``solo``."""
    have = set(keys)
    return bool(have & _PERSON) or sum(people(have).values()) > 0


# Words by which a sentence puts a person in the picture (occupations are too many
# to list: for "a fisherman" the model has to write its count tag first).
_PERSON_WORDS = re.compile(
    r"\b(?:girls?|boys?|wom[ae]n|m[ae]n|lad(?:y|ies)|guys?|persons?|people|child(?:ren)?|"
    r"kids?|she|he|her|him|his|herself|himself|couple|crowd|someone|character)\b"
)


def mentions_person(text: str) -> bool:
    """Whether a sentence says in so many words that a person is in the picture."""
    return _PERSON_WORDS.search(text.lower()) is not None


def said(text: str) -> frozenset[str]:
    """The tags of the exclusive pairs that a sentence states in so many words."""
    lowered = text.lower()
    return frozenset(tag for tag, words in _SAID.items() if words.search(lowered))


def people(keys: Iterable[str]) -> dict[str, int]:
    """The fewest girls, boys and others the count tags among ``keys`` say there are."""
    found: dict[str, int] = {}
    for key in keys:
        match = _COUNT.fullmatch(key)
        if match:
            kind = _kind(match)
            found[kind] = max(found.get(kind, 0), int(match.group(1)))
        elif key in _MULTIPLE:
            kind = _MULTIPLE[key]
            found[kind] = max(found.get(kind, 0), 2)
    return found


# A woman's body: on a line whose only people are boys. In the training prompts lines
# counting boys and no one else hold a breast tag 4.4% of the time, lines with a girl
# 42% (0.1 of it); seen: `1boy, armor, castle` got `medium breasts`.
_WOMANS = re.compile(r"(?:\w+ )?breasts|flat chest|cleavage")


def contradicts(key: str, keys: Iterable[str]) -> bool:
    """Whether tag ``key`` cannot join the tags ``keys`` (normalized keys). Only
    contradictions ``key`` takes part in count: tags that already contradict each
    other (the user's own) do not make every new tag refused."""
    have = set(keys)
    if any(frozenset((key, other)) in EXCLUSIVE_PAIRS for other in have):
        return True
    if any(frozenset((key, other)) in ONE_PERSON_PAIRS for other in have) and _one_person(have):
        return True
    feature = _COLOURED.fullmatch(key)
    if feature is not None:
        part = feature.group(2)
        limit = MAX_COLOURS if have & _MIXED[part] else 1
        return _one_person(have) and sum(
            1 for k in have if (m := _COLOURED.fullmatch(k)) and m.group(2) == part
        ) >= limit
    if _WOMANS.fullmatch(key):
        counted = people(have)
        return counted.get("boys", 0) > 0 and not counted.keys() - {"boys"}
    if key == "solo":
        return sum(people(have).values()) > 1
    if key == "no humans":
        return sum(people(have).values()) > 0
    counts = _COUNT.fullmatch(key)
    if counts is None and key not in _MULTIPLE:
        return False
    if "no humans" in have:
        return True
    if "solo" in have and sum(people(have | {key}).values()) > 1:
        return True
    if counts is None or counts.group(2):
        return False
    # Two different exact counts of one kind ("1girl" and "2girls").
    kind = _kind(counts)
    return any(
        (m := _COUNT.fullmatch(k)) is not None
        and not m.group(2)
        and _kind(m) == kind
        and m.group(1) != counts.group(1)
        for k in have
    )


# Hair lengths, by the length a person's hair is. Danbooru tags ``very long hair``
# with ``long hair``, so those two agree.
_HAIR_LENGTH = {"short hair": "short", "medium hair": "medium", "long hair": "long",
                "very long hair": "long", "absurdly long hair": "long"}  # fmt: skip


def hair_length(key: str) -> str | None:
    """``short``, ``medium`` or ``long`` for a hair-length tag, else ``None``."""
    return _HAIR_LENGTH.get(key)


def contradicts_yours(key: str, yours: Iterable[str], keys: Iterable[str]) -> bool:
    """Whether tag ``key`` gives the one person of the line (``keys``) another hair
    length than the user's own tags ``yours`` do: `long hair, smile, beach` got
    `short hair`. Only against the user's: between the model's own tags the rule
    cost recall (the module's docstring), and real posts hold such pairs."""
    length = _HAIR_LENGTH.get(key)
    mine = set(yours)
    if length is None or not _one_person(set(keys) | mine):
        return False
    return any(_HAIR_LENGTH.get(k, length) != length for k in mine)


def _one_person(have: set[str]) -> bool:
    """Whether the tags say the picture holds one person (``1girl``, or ``solo``)."""
    return "solo" in have or sum(people(have).values()) == 1


def _kind(match: re.Match[str]) -> str:
    return match.group(3).rstrip("s") + "s"
