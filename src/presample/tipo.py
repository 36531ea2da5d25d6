"""The TIPO text layout: what the published TIPO models read and write.

Everything here is a pure function of plain data. The layout is pinned
byte-for-byte against ``tipo-kgen`` 0.3.1 by ``tests/test_tipo_layout.py``
with fixtures captured from the reference; the places where we deliberately do
better than the reference are marked ``Deviation:``.

A prompt has three parts (see ``spec/TIPO.md``)::

    meta: absurdres                 <- meta lines, only when non-empty
    rating: sensitive
    aspect_ratio: 0.7
    target: <|long|> <|tag_to_long|> <|gen_meta|>
    tag: 1girl, long hair            <- content lines, in the task's order
    long:                            <- generate mode ends on an open field

TIPO v2 and v2.1 read the same layout with a few different strings
(``Dialect``; ``spec/TIPO_V2.md`` §7).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from .categories import Category


class Length(str, Enum):
    VERY_SHORT = "very_short"
    SHORT = "short"
    LONG = "long"
    VERY_LONG = "very_long"

    def __str__(self) -> str:
        return self.value


class Task(str, Enum):
    """The tasks the published TIPO models were trained on.

    The reference inference code also offers ``tag_to_short`` and
    ``tag_to_long_to_short``, which never appear in the training data (so the
    models do not know them), and lacks ``short_to_long`` and
    ``short_to_long_to_tag``, which do: we expose exactly the trained set.
    """

    TAG = "tag"
    """Plain tag expansion; the prompt carries no task token."""
    TAG_TO_LONG = "tag_to_long"
    LONG_TO_TAG = "long_to_tag"
    SHORT_TO_TAG = "short_to_tag"
    SHORT_TO_LONG = "short_to_long"
    TAG_TO_SHORT_TO_LONG = "tag_to_short_to_long"
    SHORT_TO_TAG_TO_LONG = "short_to_tag_to_long"
    SHORT_TO_LONG_TO_TAG = "short_to_long_to_tag"

    def __str__(self) -> str:
        return self.value

    @property
    def fields(self) -> tuple[str, ...]:
        """Content fields in prompt order; the last one is what the step writes."""
        return ("tag",) if self is Task.TAG else tuple(self.value.split("_to_"))

    @property
    def token(self) -> str | None:
        return None if self is Task.TAG else f"<|{self.value}|>"

    @property
    def output(self) -> str:
        return self.fields[-1]

    @classmethod
    def parse(cls, name: str | None) -> Task:
        """Accept a task name as users and the reference write it."""
        if name is None or name.strip().lower() in ("", "none", "tag", "tags"):
            return cls.TAG
        try:
            return cls(name.strip().lower())
        except ValueError:
            valid = ", ".join(t.value for t in cls)
            raise ValueError(f"unknown task {name!r}; valid tasks: {valid}") from None


class Dialect(str, Enum):
    """Which generation of TIPO models a prompt is written for.

    v1 is what ``tipo-kgen`` writes for every model, v2 included (byte-exact
    against its fixtures). The v2 models were trained on different strings
    (``spec/TIPO_V2.md`` §7), which the reference does not write: ``aspect
    ratio`` with a space; v2.1 also rating words of its own (``safe`` ...
    ``nsfw, explicit``) and a period word after the quality (``masterpiece,
    newest``). Deviation: we write what each model was trained on.
    """

    V1 = "v1"
    V2 = "v2"
    V2_1 = "v2.1"

    def __str__(self) -> str:
        return self.value

    @property
    def aspect_key(self) -> str:
        return ASPECT_KEY if self is Dialect.V1 else "aspect ratio"


# v2.1's rating vocabulary, from Danbooru's (the model card, spec §7).
V21_RATINGS: dict[str, str] = {
    "general": "safe",
    "sensitive": "sensitive",
    "questionable": "nsfw",
    "explicit": "nsfw, explicit",
}
PERIODS: tuple[str, ...] = ("newest", "recent", "mid", "early", "old")
"""v2.1's period words: the image's year folded into the quality line."""
DEFAULT_PERIOD = "newest"


# Token ids 32000.. follow the LLaMA-2 vocabulary in the published TIPO models.
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|empty|>",
    *(f"<|{length.value}|>" for length in Length),
    *(f"<|{task.value}|>" for task in Task if task is not Task.TAG),
    "<|gen_meta|>",
)
EMPTY_TOKEN = "<|empty|>"
GEN_META_TOKEN = "<|gen_meta|>"

# Length targets (spec/TIPO.md). Tags: retry below MIN, truncate above MAX.
# Sentences likewise; very_long has no sentence maximum.
TAG_MIN: dict[Length, int] = {
    Length.VERY_SHORT: 6, Length.SHORT: 18, Length.LONG: 36, Length.VERY_LONG: 54,
}  # fmt: skip
TAG_MAX: dict[Length, int] = {
    Length.VERY_SHORT: 18, Length.SHORT: 36, Length.LONG: 54, Length.VERY_LONG: 72,
}  # fmt: skip
# TIPO v2 was trained with these general-tag buckets (spec/TIPO_V2.md §7):
# long is 36-47 tags and very_long starts at 48 (v1: 36-54 and 54-72).
V2_TAG_RANGES: dict[Length, tuple[int, int]] = {Length.LONG: (36, 48), Length.VERY_LONG: (48, 72)}


def tag_range(length: Length, dialect: Dialect = Dialect.V1) -> tuple[int, int]:
    """The (minimum, maximum) tag count of a length target for a model generation."""
    if dialect is not Dialect.V1 and length in V2_TAG_RANGES:
        return V2_TAG_RANGES[length]
    return TAG_MIN[length], TAG_MAX[length]


NL_MIN: dict[Length, int] = {
    Length.VERY_SHORT: 1, Length.SHORT: 2, Length.LONG: 4, Length.VERY_LONG: 8,
}  # fmt: skip
NL_MAX: dict[Length, int | None] = {
    Length.VERY_SHORT: 2, Length.SHORT: 4, Length.LONG: 8, Length.VERY_LONG: None,
}  # fmt: skip

# Meta lines in the order the models were trained to read them.
META_KEYS: tuple[str, ...] = ("meta", "rating", "artist", "characters", "copyrights", "quality")
ASPECT_KEY = "aspect_ratio"


def build_meta(
    tags: Mapping[str, Sequence[str]],
    aspect_ratio: float | None = None,
    *,
    add_quality: bool = True,
    dialect: Dialect = Dialect.V1,
    period: str | None = DEFAULT_PERIOD,
) -> dict[str, str]:
    """The meta lines for a categorised tag set, in layout order.

    Empty values are kept (as ``""``) so callers can see which lines exist;
    ``tipo_input`` leaves them out. ``period`` is the v2.1 period word added
    to a quality line that has none (``None``: add none).
    """
    meta = {key: ", ".join(tags.get(key, ())) for key in META_KEYS}
    for key in ("artist", "characters", "copyrights"):
        meta[key] = meta[key].strip()
    if dialect is Dialect.V2_1:
        meta["rating"] = v21_rating(tags.get("rating", ()))
        quality = list(tags.get("quality", ()))
        # Open question (spec §11.4): the year thresholds behind the period words
        # are not published; the user picks the period (default: newest, the
        # look most v2.1 users ask for), and a quality line without one gets it.
        if quality and period and not any(q.lower() in PERIODS for q in quality):
            quality.append(period)
        meta["quality"] = ", ".join(quality)
    if not add_quality:
        del meta["quality"]
    if aspect_ratio is not None:
        meta[dialect.aspect_key] = f"{aspect_ratio:.1f}"
    return meta


def v21_rating(ratings: Sequence[str]) -> str:
    """Danbooru rating words in v2.1's vocabulary (``explicit`` -> ``nsfw, explicit``)."""
    words: list[str] = []
    for rating in ratings:
        for word in V21_RATINGS.get(rating.lower(), rating).split(", "):
            if word not in words:
                words.append(word)
    return ", ".join(words)


def tag_line(tags: Mapping[str, Sequence[str]]) -> str:
    """The ``tag:`` content: special tags first, then general tags."""
    joined = ", ".join([*tags.get("special", ()), *tags.get("general", ())])
    return joined.strip().strip(",")


def tipo_input(
    meta: Mapping[str, str],
    tags: str,
    nl: str,
    task: Task,
    length: Length,
    *,
    expand: bool,
    gen_meta: bool = False,
    dialect: Dialect = Dialect.V1,
) -> str:
    """The exact model input for one TIPO step.

    ``tags`` is the ``tag:`` line content (see ``tag_line``), ``nl`` the user's
    natural-language text, which goes under ``short:`` when the task has a
    short field and under ``long:`` otherwise.
    """
    content = {"tag": tags}
    if nl:
        content["short" if "short" in task.fields else "long"] = nl

    lines = [f"{key}: {value}\n" for key, value in meta.items() if value]
    target = " ".join(
        part
        for part in (f"<|{length.value}|>", task.token, GEN_META_TOKEN if gen_meta else None)
        if part
    )
    lines.append(f"target: {target}\n")
    fields = task.fields
    for index, key in enumerate(fields):
        value = content.get(key, "")
        if value.strip():
            lines.append(f"{key}: {value}\n")
        elif index < len(fields) - 1:
            lines.append(f"{key}: \n")
    prompt = "".join(lines)
    if expand and dialect is not Dialect.V1 and fields == ("tag",) and not tags.strip():
        # v2 learned an empty tag line as ``tag: `` followed by ``, t1, t2``
        # (spec §7); v1 prompts stop at the target line.
        return f"{prompt}tag: "
    return prompt.strip() if expand else f"{prompt}{fields[-1]}:"


def holds_output(task: Task, tags: str, nl: str) -> bool:
    """Whether ``tipo_input`` would already write the field the task writes.

    A retry feeds its result back (spec/TIPO.md), and then the output field has
    content: the prompt must end inside that field (``expand``) so the model
    continues it. Appending an empty ``long:`` after ``long: <caption>`` (what a
    generate-mode retry would otherwise write) is a layout the models never saw,
    and the parser keeps the first ``long:``, so every retry's draw was lost.
    """
    output = task.output
    if output == "tag":
        return bool(tags.strip())
    nl_field = "short" if "short" in task.fields else "long"
    return output == nl_field and bool(nl.strip())


@dataclass(frozen=True, slots=True)
class Step:
    """One model call of a multi-step run."""

    task: Task
    length: Length
    expand: bool


def plan_steps(
    *,
    has_tags: bool,
    has_nl: bool,
    expand_tags: bool = True,
    expand_nl: bool = True,
    generate_nl: bool = True,
    tag_first: bool = True,
    tag_length: Length = Length.LONG,
    nl_length: Length = Length.LONG,
) -> list[Step]:
    """Automatic task selection, as the reference chooses it.

    ``generate_nl`` adds the final caption step; ``gen_meta``, when wanted, goes
    on the last step of the returned list.
    """
    tag_step = Step(Task.TAG, tag_length, True)
    steps: list[Step]
    if not has_tags and not has_nl:
        steps = [tag_step]
        caption = Step(Task.TAG_TO_LONG, nl_length, True)
    elif not has_nl:
        steps = [tag_step] if expand_tags else []
        caption = Step(Task.TAG_TO_LONG, nl_length, False)
    elif not has_tags:
        # Expanding here means continuing the user's text under ``long:``.
        steps = [Step(Task.LONG_TO_TAG, tag_length, expand_nl)]
        caption = Step(Task.SHORT_TO_TAG_TO_LONG, nl_length, False)
    elif not expand_tags and not expand_nl:
        steps = []
        caption = Step(Task.SHORT_TO_TAG_TO_LONG, nl_length, False)
    elif not expand_nl:
        steps = [
            Step(Task.SHORT_TO_TAG, tag_length, True),
            Step(Task.SHORT_TO_TAG_TO_LONG, nl_length, False),
        ]
        caption = Step(Task.SHORT_TO_TAG_TO_LONG, nl_length, False)
    elif not expand_tags:
        steps = [
            Step(Task.TAG_TO_LONG, tag_length, True),
            Step(Task.TAG_TO_SHORT_TO_LONG, nl_length, False),
        ]
        caption = Step(Task.TAG_TO_SHORT_TO_LONG, nl_length, False)
    elif tag_first:
        steps = [
            Step(Task.SHORT_TO_TAG, tag_length, True),
            Step(Task.TAG_TO_LONG, nl_length, True),
        ]
        caption = Step(Task.SHORT_TO_TAG_TO_LONG, nl_length, False)
    else:
        steps = [
            Step(Task.TAG_TO_LONG, nl_length, True),
            Step(Task.LONG_TO_TAG, tag_length, True),
        ]
        caption = Step(Task.TAG_TO_SHORT_TO_LONG, nl_length, False)
    if generate_nl:
        steps.append(caption)
    return steps


# A field starts at a line beginning with ``key:``; its value runs until the
# next such line (values may span lines).
_FIELD = re.compile(r"\n([^:\n]+):(.*(?:\n(?![^:\n]+:).*)*)")
_NL_FIELDS = {"short": "extended", "long": "generated"}
LIST_FIELDS = frozenset({*META_KEYS, "general", "special", ASPECT_KEY, "aspect ratio"})


@dataclass(slots=True)
class TipoOutput:
    """A model output split into its parts."""

    tags: list[str] = field(default_factory=list)
    """The ``tag:`` line, split on commas, in order."""
    categories: dict[Category, list[str]] = field(default_factory=dict)
    """Tags from the tag line and from meta lines, by category."""
    extended: str = ""
    """The ``short:`` field: the user's text, extended."""
    generated: str = ""
    """The ``long:`` field: a newly written caption."""
    aspect_ratio: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    """Every ``key: value`` field, first occurrence only."""


def strip_special(text: str) -> str:
    """Remove bos/eos markers from a decoded output.

    Deviation: the reference strips ``<s>``/``</s>`` as *character sets*, which
    eats trailing letters of the last tag (``dress`` -> ``dre``); we remove the
    markers as whole strings.
    """
    text = text.strip()
    while True:
        before = text
        text = text.removeprefix("<s>").removesuffix("</s>").strip()
        if text == before:
            return text


# Model output is untrusted: special tokens and control characters never
# belong in a tag or a sentence.
_SPECIAL_TOKEN = re.compile(r"<\|[^|<>\n]{0,40}\|>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufffd]")


def clean_value(value: str) -> str:
    """A tag: no special tokens, no control characters, single spaces."""
    return " ".join(clean_text(value).split())


def clean_text(value: str) -> str:
    """Prose: no special tokens or control characters; its line breaks stay."""
    return _CONTROL.sub("", _SPECIAL_TOKEN.sub("", value)).strip()


def split_list(value: str) -> list[str]:
    items = (clean_value(item) for item in value.split(",") if item.strip() != EMPTY_TOKEN)
    return [item for item in items if item]


def parse_tipo_output(
    text: str,
    categorize: Callable[[list[str]], Mapping[Category, list[str]]],
) -> TipoOutput:
    """Parse a full TIPO text (prompt plus continuation) into its parts.

    The first occurrence of each key wins, as in the reference. Deviation: the
    reference lets the categories found on the ``tag:`` line shadow meta lines
    that come after it, so the artist or characters a ``<|gen_meta|>`` step
    writes below the tags are silently dropped; we merge both, tag-line
    entries first, without duplicates.
    """
    out = TipoOutput(categories={c: [] for c in Category})
    for raw_key, raw_value in _FIELD.findall("\n" + strip_special(text)):
        key, value = raw_key.strip(), raw_value.strip()
        # An empty caption field does not count as an occurrence, so a later
        # filled one still wins (the model sometimes opens a field twice).
        if key in out.fields or (key in _NL_FIELDS and value in ("", EMPTY_TOKEN)):
            continue
        out.fields[key] = value
        if key == "tag":
            out.tags = split_list(value)
            for category, tags in categorize(out.tags).items():
                _extend_unique(out.categories[Category(category)], tags)
        elif key in _NL_FIELDS:
            setattr(out, _NL_FIELDS[key], clean_text(value))
        elif key in (ASPECT_KEY, "aspect ratio"):
            out.aspect_ratio = value
        elif key in LIST_FIELDS:
            _extend_unique(out.categories[Category(key)], split_list(value))
    return out


def _extend_unique(target: list[str], items: Sequence[str]) -> None:
    seen = set(target)
    for item in items:
        if item not in seen:
            target.append(item)
            seen.add(item)
