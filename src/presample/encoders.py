"""One prompt per text encoder, and a FLUX.2 structured prompt, from a result.

Image models read prompts through different text encoders. CLIP-L/G (SD 1.5,
SDXL, anime models) learned tag lists and short captions; T5 and LLM encoders
(SD3, FLUX, ...) learned prose, and dual-encoder pipelines take one of each.
The combined prompt (``PresampleResult.prompt``) serves the first kind; these
split it: the tags alone for CLIP, the sentences alone for T5. FLUX.2 also
reads a structured JSON prompt (Black Forest Labs' "JSON prompting" guide:
scene, subjects with position and action, style, colour palette as hex codes,
lighting, background, composition, camera).

Everything here is read from the result's own tags and text, nothing is
invented: a field the result says nothing about is left out. Pure functions;
the run layer fills them into every result (``runs.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .categories import TAG_GROUPS, Category
from .formatting import Target, escape
from .lengths import sentences, tidy
from .request import TagSet

# The categories of a tag prompt, in the templates' order; the rating goes in only
# when the user wrote it (an unrated request is steered to general, not labelled).
TAG_ORDER = (Category.SPECIAL, Category.CHARACTERS, Category.COPYRIGHTS, Category.ARTIST,
             Category.GENERAL, Category.META, Category.QUALITY)  # fmt: skip

_NUMBERS = {1: "a", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
_KINDS = {"girl": ("girl", "girls"), "boy": ("boy", "boys"), "other": ("person", "people")}
_PEOPLE = re.compile(r"(\d+)(\+?)(girl|boy|other)s?")
_ACTION = re.compile(
    r"^(standing|sitting|lying|kneeling|squatting|walking|running|jumping|flying|dancing|"
    r"singing|reading|eating|drinking|sleeping|waving|smile|smiling|crying|laughing|"
    r"holding .+|looking .+|arms? .+|hand .+|hands .+|leaning .+|riding .+)$"
)
_LIGHTING = re.compile(
    r"\b(sunlight|backlighting|sunset|sunrise|night|dark|moonlight|light rays|sunbeam|"
    r"lens flare|dim lighting|rim lighting|glowing|neon lights|candlelight|twilight|"
    r"golden hour|dappled sunlight)\b"
)
_FRAMING = re.compile(
    r"^(upper body|full body|cowboy shot|portrait|close-up|wide shot|lower body|"
    r"pov|solo focus|dutch angle|from above|from below|from side|from behind)$"
)
_ANGLES = {
    "from above": "high angle", "from below": "low angle", "from side": "side view",
    "from behind": "from behind", "dutch angle": "dutch angle", "pov": "point of view",
}  # fmt: skip
_SHALLOW = frozenset({"depth of field", "blurry background", "bokeh", "blurry foreground"})
_REALISTIC = frozenset({"photorealistic", "realistic", "photo (medium)"})
# Danbooru's colour words and a representative sRGB value for each.
_COLOURS = {
    "red": "#D32F2F", "orange": "#F57C00", "yellow": "#FBC02D", "green": "#388E3C",
    "aqua": "#00BCD4", "blue": "#1976D2", "purple": "#7B1FA2", "pink": "#EC407A",
    "brown": "#6D4C41", "black": "#000000", "white": "#FFFFFF", "grey": "#9E9E9E",
    "gray": "#9E9E9E", "silver": "#C0C0C0", "gold": "#D4AF37", "blonde": "#F0D58C",
}  # fmt: skip
_COLOUR_WORDS = re.compile(r"\b(" + "|".join(_COLOURS) + r")\b")
MAX_PALETTE = 5


def tags_prompt(tags: TagSet, added: Iterable[str], target: Target = Target.A1111) -> str:
    """The tags alone, comma-separated and escaped for ``target``: for CLIP encoders."""
    new = set(added)
    ordered = [t for c in TAG_ORDER for t in tags.get(c)]
    ordered += [t for t in tags.get(Category.RATING) if t not in new]
    return ", ".join(escape(t, target) for t in dict.fromkeys(ordered))


def text_prompt(extended: str, generated: str) -> str:
    """The sentences alone, for T5 and LLM encoders: the user's text as extended, or
    when they typed none, the caption written from their tags (as the combined
    prompt shows them). Empty when the result holds no prose."""
    prose = tidy(extended if extended.strip() else generated)
    if prose and not prose.endswith((".", "!", "?", "。")):
        prose += "."
    return prose


def flux2_prompt(tags: TagSet, text: str) -> dict[str, Any]:
    """A FLUX.2 structured prompt from the result's tags and prose (``text_prompt``)."""
    general = tags.get(Category.GENERAL)
    every = [t.lower() for c in TAG_ORDER for t in tags.get(c)]
    prompt: dict[str, Any] = {}
    first = sentences(text)[:1]
    subjects = _subjects(tags)
    background = [t for t in general if re.search(TAG_GROUPS["background"], t)]
    if first:
        prompt["scene"] = first[0]
    elif subjects or background:
        prompt["scene"] = ", ".join([s["description"] for s in subjects] + background)
    if subjects:
        prompt["subjects"] = subjects
    style = _style(tags, every)
    if style:
        prompt["style"] = style
    palette = _palette([*every, text.lower()])
    if palette:
        prompt["color_palette"] = palette
    lighting = [t for t in general if _LIGHTING.search(t)]
    if lighting:
        prompt["lighting"] = ", ".join(lighting)
    if background:
        prompt["background"] = ", ".join(background)
    framing = [t for t in general if _FRAMING.match(t)]
    if framing:
        prompt["composition"] = ", ".join(framing)
    camera: dict[str, str] = {}
    angles = [_ANGLES[t] for t in general if t in _ANGLES]
    if angles:
        camera["angle"] = ", ".join(angles)
    if _SHALLOW & set(every):
        camera["depth_of_field"] = "shallow, background blurred"
    if camera:
        prompt["camera"] = camera
    return prompt


def _subjects(tags: TagSet) -> list[dict[str, str]]:
    """One subject per people count (``2girls``: two girls) or named character, with
    the appearance tags (hair, eyes, clothing) and actions the tags give."""
    general = tags.get(Category.GENERAL)
    looks = [t for t in general if any(re.search(TAG_GROUPS[g], t) for g in ("hair", "eyes"))]
    wears = [t for t in general if re.search(TAG_GROUPS["clothing"], t)]
    actions = [t for t in general if _ACTION.match(t)]
    nouns = []
    for tag in tags.get(Category.SPECIAL):
        match = _PEOPLE.fullmatch(tag.lower())
        if match:
            count, more, kind = int(match.group(1)), match.group(2), match.group(3)
            one, many = _KINDS[kind]
            words = f"{_NUMBERS.get(count, str(count))} {one if count == 1 else many}"
            nouns.append(("at least " if more else "") + words)
    characters = tags.get(Category.CHARACTERS)
    if characters and len(nouns) <= 1:
        # Named characters are the subjects; a single count ("1girl") describes them.
        nouns = [f"{c} ({nouns[0]})" if nouns else c for c in characters]
    subjects = []
    for noun in nouns:
        parts = [noun]
        if looks:
            parts.append("with " + ", ".join(looks))
        if wears:
            parts.append("wearing " + ", ".join(wears))
        subject = {"description": ", ".join(parts)}
        if actions:
            subject["action"] = ", ".join(actions)
        subjects.append(subject)
    return subjects


def _style(tags: TagSet, every: list[str]) -> str:
    artists = tags.get(Category.ARTIST)
    if _REALISTIC & set(every):
        base = "photograph"
    elif tags.get(Category.SPECIAL) or tags.get(Category.CHARACTERS):
        base = "anime illustration"  # Danbooru's people tags: the anime models' world
    else:
        base = ""
    by = f"by {', '.join(artists)}" if artists else ""
    return " ".join(p for p in (base, by) if p)


def _palette(texts: list[str]) -> list[str]:
    found: list[str] = []
    for text in texts:
        for word in _COLOUR_WORDS.findall(text):
            colour = _COLOURS[word]
            if colour not in found:
                found.append(colour)
    return found[:MAX_PALETTE]
