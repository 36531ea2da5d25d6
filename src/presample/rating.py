"""Content rating of a tag set, inferred from tag names.

Danbooru rates posts general / sensitive / questionable / explicit; the prompts
we train on carry no rating, so we infer one from well-known tag names. We
fold questionable into the level above it that a user would want kept away
from a "general" request: nudity counts as explicit, suggestive clothing and
framing as sensitive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

RATINGS = ("general", "sensitive", "explicit")
# What each rating word allows, as a level: 0 general, 1 sensitive, 2 anything. A
# level allows its own tags and those of lower levels (TIPO v2.1 writes "safe" and
# "nsfw" for general and explicit).
RATING_LEVEL = {
    "general": 0, "safe": 0, "sensitive": 1, "questionable": 2, "explicit": 2, "nsfw": 2,
}  # fmt: skip
LEVELS = 3

EXPLICIT_PATTERN = (
    r"\b(pussy|penis|penises|vagina|vulva|clitoris|testicles|anus|nipples?|areolae?|"
    # "\w+job": every act named so (blowjob, handjob, tonguejob, thighjob ...; a
    # tonguejob once reached a general-rated ramen bowl).
    r"sex|sex toy|vaginal|anal|oral|fellatio|\w+jobs?|paizuri|irrumatio|"
    r"cunnilingus|masturbation|fingering|ejaculation|orgasm|erection|cum|cumdrip|creampie|"
    r"bukkake|gangbang|rape|tentacle sex|dildo|vibrator|nude|naked|topless|bottomless|"
    r"pubic hair|pussy juice|after sex|ahegao|nsfw|hentai|genitals?|uncensored|censored|"
    r"mosaic censoring|cameltoe|spread pussy|spread anus|exhibitionism|futanari|"
    r"completely nude|nude cover|breasts out|breasts outside|no panties|no bra|bdsm|bondage|"
    r"lactation|nippleslip|hetero|insertions?|group sex|threesome|foursome|implied sex|"
    r"stomach bulge|doggystyle|mating press|deepthroat|condoms?|molestation)\b"
)
SENSITIVE_PATTERN = (
    r"\b(cleavage|large breasts|huge breasts|gigantic breasts|sideboob|underboob|"
    r"breast press|bikini|micro bikini|swimsuit|one-piece swimsuit|underwear|panties|"
    r"lingerie|bra|thong|garter belt|garter straps|ass|butt crack|thighs|thick thighs|"
    r"see-through|wet clothes|groin|leotard|bunny suit|playboy bunny|"
    r"pantyshot|upskirt|spread legs|skindentation|sexy|seductive|sensual|erotic|revealing "
    r"clothes|covering breasts|covering privates|fishnets|naked towel|breast grab|ass grab)\b"
)


_EXPLICIT = re.compile(EXPLICIT_PATTERN)
_SENSITIVE = re.compile(SENSITIVE_PATTERN)


def infer_rating(tags: Iterable[str]) -> str:
    """``general``, ``sensitive`` or ``explicit`` for canonical tag names."""
    rating = "general"
    for tag in tags:
        name = tag.lower()
        if _EXPLICIT.search(name):
            return "explicit"
        if _SENSITIVE.search(name):
            rating = "sensitive"
    return rating


def rating_level(rating: str | None) -> int:
    """The level a rating allows (``RATING_LEVEL``); unknown or missing: anything."""
    return RATING_LEVEL.get((rating or "explicit").lower(), LEVELS - 1)
