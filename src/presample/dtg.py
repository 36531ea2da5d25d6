"""The DanTagGen text layout (the TIPO predecessor, tags only).

Pinned against ``tipo-kgen`` 0.3.1 by ``tests/test_dtg_layout.py``::

    quality: masterpiece            (only for models trained with quality)
    rating: safe                    (<|empty|> when missing)
    artist: <|empty|>
    characters: <|empty|>
    copyrights: <|empty|>
    aspect ratio: 1.0               (a space, unlike TIPO's aspect_ratio)
    target: <|long|>
    general: 1girl, solo, dragon girl<|input_end|>

The model continues after ``<|input_end|>`` with more general tags.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .tipo import EMPTY_TOKEN, Length

INPUT_END_TOKEN = "<|input_end|>"
# Token ids 32000.. in the published DanTagGen models.
DTG_SPECIAL_TOKENS: tuple[str, ...] = (
    INPUT_END_TOKEN,
    EMPTY_TOKEN,
    *(f"<|{length.value}|>" for length in Length),
)
# DanTagGen retries until special + general + new tags reach this many.
DTG_MIN_TAGS: dict[Length, int] = {
    Length.VERY_SHORT: 8, Length.SHORT: 16, Length.LONG: 32, Length.VERY_LONG: 48,
}  # fmt: skip


def dtg_input(
    tags: Mapping[str, Sequence[str]],
    length: Length = Length.LONG,
    aspect_ratio: float = 1.0,
    *,
    quality: bool,
) -> str:
    """The exact DanTagGen input; ``quality`` for models trained with a quality line.

    Deviation: the reference writes ``general: {special}, {general}`` even when
    one side is empty, giving ``general: , solo`` or a dangling ``1girl, `` that
    no training sample contains; we join the non-empty parts.

    Deviation: the reference falls back to ``masterpiece`` only when the quality
    key is absent and writes an empty ``quality:`` line for an empty list; a
    request always has the category, so an empty one gets the fallback.
    """

    def joined(key: str) -> str:
        return ", ".join(tags.get(key, ())).strip()

    general = ", ".join(part for part in (joined("special"), joined("general").strip(",")) if part)
    lines = [
        f"rating: {joined('rating') or EMPTY_TOKEN}",
        f"artist: {joined('artist') or EMPTY_TOKEN}",
        f"characters: {joined('characters') or EMPTY_TOKEN}",
        f"copyrights: {joined('copyrights') or EMPTY_TOKEN}",
        f"aspect ratio: {aspect_ratio:.1f}",
        f"target: <|{length.value}|>",
        f"general: {general}{INPUT_END_TOKEN}",
    ]
    if quality:
        lines.insert(0, f"quality: {', '.join(tags.get('quality', ())) or 'masterpiece'}")
    return "\n".join(lines)


def parse_dtg_output(text: str) -> list[str]:
    """The new general tags a DanTagGen model wrote after ``<|input_end|>``."""
    text = text.replace("</s>", "").replace("<s>", "")
    if INPUT_END_TOKEN not in text:
        return []
    extra = text.split(INPUT_END_TOKEN)[-1].strip().strip(",")
    seen: set[str] = set()
    tags = []
    for tag in (t.strip() for t in extra.split(",")):
        if tag and tag not in seen:
            seen.add(tag)
            tags.append(tag)
    return tags
