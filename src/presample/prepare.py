"""From what the user typed to what the model reads.

``prepare`` parses the request's A1111/ComfyUI ``prompt`` (weights, BREAK, extra
networks, sentences), canonicalises and categorises its tags through the tag
database, and merges them with any already-categorised tags. Syntax that must
not reach the model stays in ``Prepared.parsed`` so the final prompt can put it
back.
"""

from __future__ import annotations

from dataclasses import dataclass

from .categories import Category
from .request import PresampleRequest, TagSet
from .syntax import ParsedPrompt, parse_prompt
from .tagdb import TagDatabase, normalize_key
from .tipo import Step, build_meta, plan_steps, tag_line


@dataclass(frozen=True)
class Prepared:
    """A request ready for the layouts: clean categorised tags and NL text."""

    request: PresampleRequest
    tags: TagSet
    nl: str
    parsed: ParsedPrompt | None
    ignored: tuple[str, ...]
    """Tags held back from the model (LoRA triggers and the like)."""

    def meta(self) -> dict[str, str]:
        return build_meta(
            self.tags.as_dict(),
            self.request.effective_aspect_ratio(),
            add_quality=self.request.add_quality,
        )

    def tag_line(self) -> str:
        return tag_line(self.tags.as_dict())

    def steps(self) -> list[Step]:
        req = self.request
        return plan_steps(
            has_tags=bool(self.tag_line().strip()),
            has_nl=bool(self.nl.strip()),
            expand_tags=req.expand_tags,
            expand_nl=req.expand_nl,
            generate_nl=req.generate_nl,
            tag_first=req.tag_first,
            tag_length=req.tag_length,
            nl_length=req.nl_length,
        )


def prepare(request: PresampleRequest, db: TagDatabase) -> Prepared:
    """Parse, canonicalise and categorise a request's input."""
    parsed = parse_prompt(request.prompt, is_known_tag=db.is_known) if request.prompt else None
    ignored_keys = {normalize_key(t) for t in request.ignored}

    typed: list[str] = []
    texts: list[str] = []
    if parsed is not None:
        typed = [t for t in parsed.tags if normalize_key(t) not in ignored_keys]
        texts = list(parsed.texts)
    from_prompt = db.categorize(typed)

    merged: dict[str, list[str]] = {}
    for category in Category:
        given = [
            t
            for t in request.tags.get(category)
            if normalize_key(t) not in ignored_keys
        ]
        # Tags given by category are trusted as categorised but still get their
        # canonical spelling, so aliases and underscores do not reach the model.
        canonical = [info.name if info else t for t, info in zip(given, db.lookup_many(given), strict=True)]
        merged[category.value] = _unique(canonical + from_prompt[category])

    nl = " ".join(part for part in [request.nl_prompt, *texts] if part).strip()
    return Prepared(
        request=request,
        tags=TagSet(**merged),
        nl=nl,
        parsed=parsed,
        ignored=tuple(request.ignored),
    )


def _unique(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out
