"""From what the user typed to what the model reads.

``prepare`` parses the request's A1111/ComfyUI ``prompt`` (weights, BREAK, extra
networks, sentences), canonicalises and categorises its tags through the tag
database, and merges them with any already-categorised tags. What must not
reach the model (weights, BREAK, networks, ignored tags) is kept in
``Prepared`` so the final prompt can put it back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .categories import NON_EXPLICIT_RATINGS, SAFE_RATINGS, Category
from .request import BanRule, PresampleRequest, TagSet
from .syntax import ParsedPrompt, Piece, joined_text, parse_prompt
from .tagdb import TagDatabase, normalize_key
from .tipo import Dialect, Step, build_meta, plan_steps, tag_line, tipo_input

DEFAULT_RATING = "general"
_CHOICE = re.compile(r"[\[{][^\]}]*[|:][^\]}]*[\]}]")


@dataclass(frozen=True)
class Prepared:
    """A request ready for the layouts: clean categorised tags and NL text."""

    request: PresampleRequest
    tags: TagSet
    """What the model sees: canonical, categorised, without ignored tags."""
    nl: str
    parsed: ParsedPrompt | None = None
    ignored: dict[Category, list[str]] = field(default_factory=dict)
    """Tags held back from the model (LoRA triggers), canonical, by category."""
    user_order: tuple[str, ...] = ()
    """Every user tag (ignored ones included) in the order typed."""
    raw_forms: dict[str, str] = field(default_factory=dict)
    """Canonical tag -> how the user wrote it with a weight, e.g. ``(smile:1.2)``."""
    later_segments: tuple[str, ...] = ()
    """The prompt's BREAK segments after the first, written back as typed."""
    later_tags: frozenset[str] = frozenset()
    """Canonical tags that live in those later segments."""
    dialect: Dialect = Dialect.V1
    """Which TIPO generation's strings the model reads."""
    unread: tuple[str, ...] = ()
    """Typed text in a script the models cannot read (``readable``): kept in the
    prompt as typed, never shown to the model."""
    respell: tuple[tuple[int, int, str], ...] = ()
    """Plain typed tags whose canonical name is spelled otherwise (``long_hair``,
    ``Hatsune_Miku``, an alias): (start, end, canonical name), offsets into the
    typed prompt, for writing every tag in one style (``tag_spelling``)."""

    def meta(self, tags: dict[str, list[str]] | None = None) -> dict[str, str]:
        """The meta lines for this request's tags (or a draft's ``tags``)."""
        period = self.request.period
        return build_meta(
            self.tags.as_dict() if tags is None else tags,
            self.request.effective_aspect_ratio(),
            add_quality=self.request.add_quality,
            dialect=self.dialect,
            period=None if period == "none" else period,
        )

    def tag_line(self) -> str:
        return tag_line(self.tags.as_dict())

    def model_input(self, step: Step, *, gen_meta: bool = False) -> str:
        """The TIPO input of ``step`` for this request as typed (before any model output)."""
        return tipo_input(
            self.meta(), self.tag_line(), self.nl, step.task, step.length,
            expand=step.expand, gen_meta=gen_meta, dialect=self.dialect,
        )  # fmt: skip

    @property
    def unreadable(self) -> bool:
        """Something was typed, but nothing the model can read: expanding nothing
        would draw a random picture (a girl for a cat typed in Chinese), so the
        prompt stays as typed."""
        return bool(self.unread) and not self.tag_line().strip() and not self.nl.strip()

    def steps(self) -> list[Step]:
        req = self.request
        if self.unreadable:
            return []
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

    def ban_rules(self) -> list[BanRule]:
        """Every rule keeping things out of the result: the request's own bans,
        what its rating keeps out, and the names it does not want added."""
        return [*self.request.ban, *self.rating_bans(), *self.name_bans()]

    def name_bans(self) -> list[BanRule]:
        """Categories of names the model may not add (``new_names``).

        A model asked to expand ``1girl, long hair, smile`` otherwise adds
        characters and artists nobody asked for (three characters and seven
        artists were seen for that prompt), which changes the picture's subject
        and style. ``auto`` adds artists only to a prompt that names one, and
        characters and copyrights only to one that names a character or a
        copyright (a character's series is useful, and the other way round).
        """
        mode = self.request.new_names
        if mode == "always":
            return []
        given = {c for c in (Category.ARTIST, Category.CHARACTERS, Category.COPYRIGHTS)
                 if self.tags.get(c)}  # fmt: skip
        banned = []
        if mode == "never" or Category.ARTIST not in given:
            banned.append(Category.ARTIST)
        if mode == "never" or not given & {Category.CHARACTERS, Category.COPYRIGHTS}:
            banned += [Category.CHARACTERS, Category.COPYRIGHTS]
        return [BanRule(kind="category", pattern=c.value) for c in banned]

    def rating_bans(self) -> list[BanRule]:
        """What the requested rating keeps out of the result."""
        ratings = {t.lower() for t in self.tags.get(Category.RATING)}
        if not ratings or not ratings <= NON_EXPLICIT_RATINGS:
            return []
        groups = ["explicit"] + (["suggestive"] if ratings <= SAFE_RATINGS else [])
        return [BanRule(kind="group", pattern=g) for g in groups]

    def protected(self) -> frozenset[str]:
        """Keys of the user's own tags, which bans never remove."""
        return frozenset(normalize_key(t) for t in self.user_order)


def prepare(
    request: PresampleRequest, db: TagDatabase, *, dialect: Dialect = Dialect.V1
) -> Prepared:
    """Parse, canonicalise and categorise a request's input (for a model reading ``dialect``)."""
    parsed = parse_prompt(request.prompt, is_known_tag=db.is_known) if request.prompt else None
    ignored_keys = {normalize_key(t) for t in request.ignored}

    # Every user tag once, canonical, in the order given: categorised tags
    # first (they are explicit), then the typed prompt's.
    pieces = [p for p in parsed.pieces if p.kind == "tag"] if parsed else []
    given = [(c, t) for c in Category for t in request.tags.get(c)]
    infos = db.lookup_many([t for _, t in given] + [p.text for p in pieces])
    given_infos, piece_infos = infos[: len(given)], infos[len(given) :]

    model_tags: dict[Category, list[str]] = {c: [] for c in Category}
    ignored: dict[Category, list[str]] = {c: [] for c in Category}
    unread: list[tuple[int, str]] = []  # (where typed, text)
    order: list[str] = []
    raw_forms: dict[str, str] = {}
    later: set[str] = set()

    def add(name: str, category: Category, key: str) -> None:
        # Deviation: the reference writes a tag given in two categories twice
        # (``special`` and ``general`` both holding ``multiple girls`` gives
        # ``tag: multiple girls, multiple girls, ...``), which no training sample
        # has; we keep the first, so a tag reaches the model once.
        if name in order:
            return
        order.append(name)
        (ignored if key in ignored_keys else model_tags)[category].append(name)

    for (category, tag), info in zip(given, given_infos, strict=True):
        # Explicit categories are trusted, but spellings are canonicalised.
        add(info.name if info else tag, category, normalize_key(tag))
    legible = (lambda _: True) if request.read_any_script else readable
    respell: list[tuple[int, int, str]] = []
    for piece, info in zip(pieces, piece_infos, strict=True):
        name = info.name if info else db.canonical(piece.text)
        # A plain known tag (its raw form is its text, at most with escaped brackets):
        # weights and prompt editing are the user's syntax, and a tag the database
        # does not know may be a LoRA trigger whose underscores matter: both stay.
        plain = piece.raw.replace("\\(", "(").replace("\\)", ")") == piece.text
        if info is not None and piece.weight == 1.0 and plain and piece.text != name:
            respell.append((piece.start, piece.end, name))
        key = normalize_key(piece.text)
        if info is None and not legible(piece.text):
            unread.append((piece.start, piece.text))
            ignored_keys.add(key)  # kept in the prompt, held back from the model
        add(name, info.category if info else Category.GENERAL, key)
        if piece.weight != 1.0 or _CHOICE.search(piece.raw):
            # Weighted tags, prompt editing ([a:b:0.5]) and alternations ([a|b], {a|b})
            # are written back as typed: the model saw only one branch.
            raw_forms.setdefault(name, piece.raw)
        if piece.segment > 0:
            later.add(name)

    if request.sfw and not model_tags[Category.RATING] and not ignored[Category.RATING]:
        # Most real prompts in the wild are NSFW-skewed and so are the models:
        # an unrated request means a general image unless the user says otherwise.
        model_tags[Category.RATING].append(DEFAULT_RATING)

    def read(piece: Piece) -> bool:
        if legible(piece.text):
            return True
        unread.append((piece.start, piece.text))
        return False

    typed = joined_text(parsed, request.prompt, read) if parsed else ""
    nl_prompt = request.nl_prompt if legible(request.nl_prompt) else ""
    if request.nl_prompt and not nl_prompt:
        unread.append((-1, request.nl_prompt))
    nl = " ".join(part for part in [nl_prompt, typed] if part).strip()
    return Prepared(
        request=request,
        tags=TagSet(**{c.value: v for c, v in model_tags.items()}),
        nl=nl,
        parsed=parsed,
        ignored=ignored,
        user_order=tuple(order),
        raw_forms=raw_forms,
        later_segments=_later_segments(parsed),
        later_tags=frozenset(later),
        dialect=dialect,
        unread=tuple(text for _, text in sorted(unread)),
        respell=tuple(respell),
    )


# Share of a text's letters that must be Latin for the models to read it. The
# published TIPO models and ours learned English captions and romanised Danbooru
# tags; given Chinese or Japanese they answer about something else entirely
# (``一只猫坐在窗台上`` got a caption about pickled ginger).
MIN_LATIN_SHARE = 0.5


def readable(text: str) -> bool:
    """Whether the models can read ``text``: mostly Latin letters (or none at all)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return True
    latin = sum(1 for c in letters if c < "\u0250")  # Latin-1 and Latin Extended-A/B
    return latin >= MIN_LATIN_SHARE * len(letters)


def _later_segments(parsed: ParsedPrompt | None) -> tuple[str, ...]:
    if parsed is None or parsed.segments < 2:
        return ()
    segments: list[list[str]] = [[] for _ in range(parsed.segments)]
    for piece in parsed.pieces:
        if piece.kind not in ("break", "network"):
            segments[piece.segment].append(piece.raw)
    return tuple(", ".join(parts) for parts in segments[1:])
