"""Folding model outputs into a result, and writing the final prompt.

``Draft`` is the result as it grows step by step; ``merge_output`` folds one
parsed model output into it (the reference's ``post_generate_process``, with its
bugs fixed), and ``format_result`` writes the prompt a user pastes, putting
back what never went to the model: weights, BREAK segments, extra networks and
ignored tags.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace

from .bans import BanMatcher
from .categories import Category
from .formatting import TYPED_TEMPLATE, Target, apply_template, escape, resolve_template
from .insertion import SENTENCE_ENDS, anchors, insert, text_added
from .lengths import sentence_count
from .prepare import Prepared
from .request import MAX_TAG_CHARS
from .tagdb import normalize_key
from .tipo import NL_MAX, NL_MIN, Dialect, Length, Task, TipoOutput, tag_range


@dataclass(frozen=True)
class Draft:
    """The result so far: tags by category, the extended and the generated text."""

    tags: dict[Category, list[str]] = field(default_factory=dict)
    extended: str = ""
    generated: str = ""

    @classmethod
    def start(cls, prepared: Prepared) -> Draft:
        return cls(tags={c: list(prepared.tags.get(c)) for c in Category}, extended=prepared.nl)

    def tag_line_tags(self) -> list[str]:
        return [*self.tags.get(Category.SPECIAL, []), *self.tags.get(Category.GENERAL, [])]

    def text(self) -> str:
        """The natural-language text the next step continues.

        A generated caption is whole sentences (stored without the last full
        stop), so it is fed back ending in one: the model starts a new sentence
        instead of running on from the last word.
        """
        return self.extended or (f"{self.generated}." if self.generated else "")

    def meta_source(self) -> dict[str, list[str]]:
        return {c.value: list(v) for c, v in self.tags.items()}


# A full stop ends a sentence only before a space or the end: "3.5 m", "1.5x"
# and "example.com" stay whole (splitting them wrote the user's "3.5" back as "3. 5").
_FULL_STOP = re.compile(r"\.(?=\s|$)")


def sentences(text: str) -> list[str]:
    """A text's sentences without their closing full stops (joined again with ". ").

    For merging captions only; lengths are counted by ``lengths.sentence_count``.
    """
    return [s.strip() for s in _FULL_STOP.split(text) if s.strip()]


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def merge_output(
    draft: Draft,
    out: TipoOutput,
    task: Task,
    *,
    tag_length: Length,
    nl_length: Length,
    bans: BanMatcher,
    protected: frozenset[str],
    rng: random.Random | None,
    dialect: Dialect = Dialect.V1,
) -> Draft:
    """Fold one model output into the draft.

    The input tags keep their order and come first; new tags follow, shuffled
    when ``rng`` is given. Deviations from the reference, on purpose: tags are
    truncated by the *tag* maximum (the reference used the sentence maximum),
    new sentences keep their order (the reference shuffled them), and an empty
    input text does not crash the sentence merge.
    """
    fields = task.fields
    extended = out.extended if "short" in fields else ""
    generated = out.generated if "long" in fields else ""
    if generated and draft.extended and not extended:
        # The step continued the user's own text under ``long:``. (A retry that
        # continued the model's own caption stays the generated caption.)
        extended, generated = generated, ""

    tags: dict[Category, list[str]] = {}
    for category in Category:
        have = draft.tags.get(category, [])
        new = [
            t for t in out.categories.get(category, [])
            if t not in have and len(t) <= MAX_TAG_CHARS
            and (normalize_key(t) in protected or not bans.tag_banned(t))
        ]  # fmt: skip
        new = _unique(new)
        if category is Category.GENERAL:
            if rng is not None:
                rng.shuffle(new)
            new = new[: max(tag_range(tag_length, dialect)[1] - len(have), 0)]
        tags[category] = have + new

    limit = NL_MAX[nl_length]
    have_text = sentences(draft.extended)
    added = [s for s in sentences(extended) if s not in have_text and not bans.text_banned(s)]
    if have_text and added and added[0].startswith(have_text[-1]):
        # The model went on from the user's last sentence. Keep the longer version
        # only if it continued after a whole word: "windowsill" + "fully ..."
        # would change what the user wrote, so that continuation is dropped.
        rest = added.pop(0)[len(have_text[-1]) :]
        if not rest[:1].isalnum():
            have_text[-1] += rest
    room = None if limit is None else max(limit - len(have_text), 0)
    new_extended = ". ".join(_unique(have_text + added[:room]))

    new_generated = draft.generated
    if generated:
        fresh = [s for s in sentences(generated) if s not in have_text and not bans.text_banned(s)]
        new_generated = ". ".join(_unique(fresh)[:limit])
    return Draft(tags=tags, extended=new_extended, generated=new_generated)


def reached_minimum(
    draft: Draft,
    task: Task,
    tag_length: Length,
    nl_length: Length,
    *,
    written: str = "",
    dialect: Dialect = Dialect.V1,
) -> bool:
    """Whether the field this step writes is long enough to stop retrying.

    ``written`` is the ``long:`` field as the model wrote it. A caption written
    after the user's text usually opens by restating it (the training captions
    begin with their short caption); the draft keeps only the new sentences, but
    the length counts the whole field, as the reference does. Counting only the
    new ones retried (up to ten times, a thousand tokens) a caption the prompt
    does not even show when there is an expanded text.
    """
    target = task.output
    if target == "long" and not draft.generated:
        target = "short"
    if target == "tag":
        return len(draft.tag_line_tags()) >= tag_range(tag_length, dialect)[0]
    # Counted as the training data counts (lengths.py), not as split for merging.
    if target == "long":
        count = max(sentence_count(draft.generated), sentence_count(written))
    else:
        count = sentence_count(draft.extended)
    return count >= NL_MIN[nl_length]


def format_result(draft: Draft, prepared: Prepared, *, user_only: bool = False) -> str:
    """The prompt to paste, in the request's template and target syntax."""
    request = prepared.request
    target = request.target
    template = resolve_template(request.template)
    if template == TYPED_TEMPLATE:
        given = any(request.tags.get(c) for c in Category) or request.nl_prompt.strip()
        if not given:  # typed, or nothing at all: the additions alone, no rating line
            return request.prompt.strip() if user_only else typed_prompt(draft, prepared)
        # Not only typed (tags by category, a separate nl_prompt): the reference's layout.
        template = resolve_template(FALLBACK_TEMPLATE)
    order = {name: i for i, name in enumerate(prepared.user_order)}

    values: dict[str, str | list[str]] = {}
    for category in Category:
        tags = list(prepared.ignored.get(category, [])) + draft.tags.get(category, [])
        if user_only:
            tags = [t for t in tags if t in order]
        # User tags in the order typed (ignored ones back in place), then new ones.
        mine = sorted((t for t in tags if t in order), key=order.__getitem__)
        new = [t for t in tags if t not in order]
        values[category.value] = [
            _written(t, prepared, target)
            for t in _unique(mine + new)
            if t not in prepared.later_tags
        ]
    extended = prepared.nl if user_only else draft.extended
    values["extended"] = escape(extended, target)
    values["generated"] = "" if user_only else escape(draft.generated, target)
    prompt = apply_template(values, template)

    if target is not Target.PLAIN:
        for segment in prepared.later_segments:
            prompt = f"{prompt}\nBREAK\n{segment}" if segment else f"{prompt}\nBREAK"
        networks = prepared.parsed.networks if prepared.parsed else ()
        if networks:
            prompt = (
                f"{prompt.rstrip(',')},\n{', '.join(networks)}" if prompt else ", ".join(networks)
            )
    return prompt


# What the model adds in the typed layout, in this order; the rating is the
# user's to choose (an unrated request is steered to general, not rewritten).
_ADDED = (Category.SPECIAL, Category.CHARACTERS, Category.COPYRIGHTS, Category.ARTIST,
          Category.GENERAL, Category.META, Category.QUALITY)  # fmt: skip
FALLBACK_TEMPLATE = "both_tag_first"


def typed_prompt(draft: Draft, prepared: Prepared) -> str:
    """The prompt exactly as typed, with the model's additions inserted.

    Deviation: the reference rebuilds the prompt from categories, so weighted
    tags move to their category's place, LoRAs to the end, and blank lines
    and a rating nobody typed appear. Here every byte typed stays where it was:
    the continuation of the user's text follows it, new tags (and a caption
    written from tags alone) follow the first segment's last tag or text.
    """
    request = prepared.request
    # The parse's offsets are into the prompt as sent: insert there, trim after.
    prompt, target = request.prompt, request.target
    given = {normalize_key(t) for c in Category for t in prepared.tags.get(c)}
    given |= {normalize_key(t) for t in prepared.user_order}
    new: list[str] = []
    for tag in (t for c in _ADDED for t in draft.tags.get(c, [])):
        key = normalize_key(tag)
        if key not in given:  # once, whatever its category or spelling
            given.add(key)
            new.append(escape(tag, target))
    text = text_added(prepared.nl, draft.extended)
    if text and not text.rstrip().endswith(SENTENCE_ENDS):
        text += "."
    caption = "" if prepared.nl else draft.generated
    additions = [*new, f"{escape(caption, target)}."] if caption else new
    where = anchors(prompt, prepared.parsed)
    if where is None:  # only networks or BREAKs were typed
        return ", ".join(part for part in (prompt.strip(), *additions) if part)
    if where.tag_end is not None:  # new tags follow the user's last tag
        where = replace(where, content_end=where.tag_end)
    respell = prepared.respell if request.tag_spelling == "canonical" else ()
    return insert(prompt, where, escape(text, target), additions, respell=[
        (start, end, escape(name, target)) for start, end, name in respell
    ]).strip()


def _written(tag: str, prepared: Prepared, target: Target) -> str:
    raw = prepared.raw_forms.get(tag)
    if raw is not None and target is not Target.PLAIN:
        return raw
    return escape(tag, target)
