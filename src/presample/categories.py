"""Tag categories and the small fixed tag tables every TIPO-family model relies on.

The names of the categories are the field names of the TIPO layout (``artist``,
``characters``, ``copyrights`` ...), so a category value can be used directly as a
layout key. The special, quality and rating tables come from the TIPO
specification (`spec/TIPO.md`); they override whatever the Danbooru table says
(``1girl`` is a *general* tag on Danbooru but a *special* one for TIPO).
"""

from __future__ import annotations

from enum import Enum

from .rating import EXPLICIT_PATTERN, SENSITIVE_PATTERN


class Category(str, Enum):
    SPECIAL = "special"
    GENERAL = "general"
    CHARACTERS = "characters"
    COPYRIGHTS = "copyrights"
    ARTIST = "artist"
    META = "meta"
    QUALITY = "quality"
    RATING = "rating"

    def __str__(self) -> str:
        return self.value


# The order in which categories are listed in requests, results and reports.
CATEGORY_ORDER: tuple[Category, ...] = tuple(Category)

# Danbooru's numeric categories (the second column of danbooru.csv).
DANBOORU_CATEGORY: dict[int, Category] = {
    0: Category.GENERAL,
    1: Category.ARTIST,
    3: Category.COPYRIGHTS,
    4: Category.CHARACTERS,
    5: Category.META,
}

SPECIAL_TAGS: tuple[str, ...] = (
    "1girl", "2girls", "3girls", "4girls", "5girls", "6+girls", "multiple girls",
    "1boy", "2boys", "3boys", "4boys", "5boys", "6+boys", "multiple boys",
    "male focus",
    "1other", "2others", "3others", "4others", "5others", "6+others", "multiple others",
)  # fmt: skip

QUALITY_TAGS: tuple[str, ...] = (
    "masterpiece", "best quality", "great quality", "good quality", "normal quality",
    "low quality", "worse quality", "very aesthetic", "aesthetic", "displeasing",
    "very displeasing", "newest", "recent", "mid", "early", "old",
    "score_9", "score_8_up", "score_7_up", "score_6_up", "score_5_up", "score_4_up",
    "source_anime", "source_cartoon", "source_furry", "source_pony",
    # Not in the TIPO tables but in the shared quality list (extra-quality-tags.csv)
    # and in countless real prompts; treating them as general tags would send them
    # to the model's tag line, where they were never trained.
    "high quality", "worst quality",
)  # fmt: skip

RATING_TAGS: tuple[str, ...] = ("safe", "general", "sfw", "sensitive", "nsfw", "explicit")

FIXED_CATEGORY: dict[str, Category] = {
    **{t: Category.SPECIAL for t in SPECIAL_TAGS},
    **{t: Category.QUALITY for t in QUALITY_TAGS},
    **{t: Category.RATING for t in RATING_TAGS},
}

# Groups of tags people ban together, written as patterns over tag names
# (Danbooru's tag groups are wiki pages, not data we can ship).
TAG_GROUPS: dict[str, str] = {
    "hair": r"\b(hair|bangs|ponytail|twintails|braids?|sidelocks|ahoge|hairband|hairclip|bun|"
    r"bob cut|hime cut|drill)\b",
    "eyes": r"\b(eyes?|eyelashes|pupils|heterochromia|eyeshadow)\b",
    "clothing": r"\b(shirt|skirt|dress|jacket|coat|uniform|pants|shorts|thighhighs|"
    r"pantyhose|socks|shoes|boots|gloves|hat|kimono|swimsuit|bikini|hoodie|sweater|vest|"
    r"necktie|bowtie|ribbon|apron|cape|scarf|belt|collar|sleeves|leotard|bodysuit|"
    r"underwear|bra|panties|armor|costume|robe|cloak|sandals|kneehighs|legwear|jeans|suit|"
    r"overalls|stockings)\b",
    "background": r"\b(background|scenery|sky|outdoors|indoors|room|city|forest|beach)\b",
    # What a general or sensitive rating keeps out (see rating.py).
    "explicit": EXPLICIT_PATTERN,
    "suggestive": SENSITIVE_PATTERN,
}
# Ratings that keep explicit (and, for the first three, suggestive) tags out.
SAFE_RATINGS = frozenset({"general", "safe", "sfw"})
NON_EXPLICIT_RATINGS = SAFE_RATINGS | {"sensitive"}
