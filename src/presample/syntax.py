"""Reading what people type into A1111 / ComfyUI prompt boxes.

A prompt is split into pieces: tags, natural-language fragments ("text"),
``BREAK`` keywords and extra networks (``<lora:name:0.8>``, ``<hypernet:...>``,
any ``<name:args>``, and ComfyUI's ``embedding:name``). Only the clean ``text``
of tags and fragments is meant for the language model; every piece also keeps a
``raw`` spelling that carries its weight, so weights, ``BREAK`` and networks
survive into the final prompt untouched.

Weights follow A1111's ``parse_prompt_attention``: ``(x)`` multiplies by 1.1,
``[x]`` divides by 1.1, ``(x:1.2)`` multiplies by 1.2, nesting multiplies, and
``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\`` are literal characters. Extra networks are
taken out before brackets are read, as A1111 does, so brackets inside
``<lora:...>`` do not count. A1111's prompt editing (``[from:to:when]``,
``[to:when]``) and alternation (``[a|b]``), and ComfyUI's ``{a|b}`` choices,
are kept whole: one piece whose raw is the construct as typed and whose text is
the branch the image ends with (editing) or the first option (alternation).

Deliberate departures from A1111, which silently accepts anything:

* unbalanced or crossed brackets are a :class:`PromptSyntaxError` with the
  column, because a prompt that loses a bracket usually weights half of itself
  by accident;
* an emoticon tag made of brackets (``:)``, ``;(``, ``>:)``) that fills a whole
  comma chunk is a tag, not a bracket: these are real Danbooru tags;
* a bare ``tag:1.2`` outside brackets (A1111 ignores it; people type it) keeps
  its raw spelling but the model sees ``tag``.

Everything here runs in time linear in the prompt: a single left-to-right
tokenizer whose alternatives are either fixed-length or bounded, and passes over
the token list that never look back more than one piece.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Literal

from .errors import InputError

__all__ = [
    "KnownTag",
    "ParsedPrompt",
    "Piece",
    "PieceKind",
    "PromptSyntaxError",
    "escape_tag",
    "format_weighted",
    "joined_text",
    "looks_like_sentence",
    "parse_prompt",
    "render_pieces",
    "unescape_tag",
]

PieceKind = Literal["tag", "text", "break", "network"]

DEFAULT_MAX_CHARS = 200_000
DEFAULT_MAX_PIECES = 5_000
_ATTENTION = 1.1


class PromptSyntaxError(InputError):
    """A prompt that cannot be read; the message is one line saying what and where.

    ``position`` is the 0-based offset of the offending character (``None`` when
    the problem is the prompt as a whole); ``line`` and ``column`` are 1-based.
    """

    def __init__(
        self,
        message: str,
        *,
        position: int | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.position = position
        self.line = line
        self.column = column


def _line_column(text: str, position: int) -> tuple[int, int]:
    line = text.count("\n", 0, position) + 1
    return line, position - text.rfind("\n", 0, position)


def _where(text: str, position: int) -> str:
    line, column = _line_column(text, position)
    return f"column {column}" if "\n" not in text else f"line {line}, column {column}"


def _error_at(text: str, position: int, what: str, detail: str = "") -> PromptSyntaxError:
    line, column = _line_column(text, position)
    return PromptSyntaxError(
        f"{what} at {_where(text, position)}{detail}",
        position=position,
        line=line,
        column=column,
    )


@dataclass(frozen=True, slots=True)
class Piece:
    """One piece of a prompt.

    ``text`` is what the model may see (tags: escapes and weight syntax removed,
    whitespace collapsed, underscores as typed; networks: the content between
    ``<`` and ``>``; breaks: ``"BREAK"``). ``raw`` is how to write the piece back
    with its weight intact. ``weight`` is the A1111 attention multiplier (for a
    text fragment whose parts carry different weights, 1.0: its raw holds the
    details). ``segment`` is the number of BREAKs before the piece (a BREAK
    piece belongs to the segment it ends); ``start``/``end`` are offsets into
    the source.
    """

    kind: PieceKind
    text: str
    raw: str
    weight: float = 1.0
    segment: int = 0
    start: int = 0
    end: int = 0


@dataclass(frozen=True)
class ParsedPrompt:
    """The pieces of a prompt, in source order."""

    pieces: tuple[Piece, ...] = field(default_factory=tuple)

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(p.text for p in self.pieces if p.kind == "tag")

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(p.text for p in self.pieces if p.kind == "text")

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(p.raw for p in self.pieces if p.kind == "network")

    @property
    def has_break(self) -> bool:
        return any(p.kind == "break" for p in self.pieces)

    @property
    def segments(self) -> int:
        """How many BREAK-separated segments (A1111 always has at least one)."""
        return 1 + sum(1 for p in self.pieces if p.kind == "break")

    def render(self) -> str:
        """The pieces written back as an A1111 prompt."""
        return render_pieces(self.pieces)


# --------------------------------------------------------------------------- escaping

# A backslash only needs escaping where A1111 would otherwise read it as the
# start of an escape; leaving the others alone keeps tags such as ``\m/`` intact
# and keeps the output readable by ComfyUI, which knows only ``\(`` and ``\)``.
_NEEDS_ESCAPE = re.compile(r"\\(?=[()\[\]\\]|\Z)|[()\[\]]")
_ESCAPED = re.compile(r"\\([()\[\]\\])")


def escape_tag(tag: str) -> str:
    """Escape ``( ) [ ]`` (and a backslash that would start an escape) for A1111/ComfyUI.

    ``unescape_tag(escape_tag(t)) == t`` for every string, and
    ``escape_tag(unescape_tag(s)) == s`` for a tag escaped the usual way
    (``ganyu \\(genshin impact\\)``), so nothing is escaped twice on a round trip.
    """
    return _NEEDS_ESCAPE.sub(lambda m: "\\" + m.group(), tag)


def unescape_tag(text: str) -> str:
    """Undo A1111 escapes: ``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\``; other backslashes stay."""
    return _ESCAPED.sub(r"\1", text)


def _format_weight(weight: float) -> str:
    if not math.isfinite(weight):
        raise ValueError(f"weight must be a finite number, not {weight!r}")
    out = f"{weight:.2f}".rstrip("0").rstrip(".")
    return "0" if out == "-0" else out


def _wrap(fragment: str, weight: float) -> str:
    """An already-escaped fragment with its weight, plain when the weight shows as 1."""
    number = _format_weight(weight)
    return fragment if number == "1" else f"({fragment}:{number})"


def format_weighted(tag: str, weight: float) -> str:
    """``(tag:1.2)`` for a clean tag; the escaped tag alone when the weight is 1.

    The weight is written with at most two decimals and no trailing zeros, so a
    weight that rounds to 1.00 is written as no weight at all.
    """
    return _wrap(escape_tag(tag), weight)


# ----------------------------------------------------------------- natural language


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_DETERMINERS = _words(
    "a an the this that these those my your his her its our their some many several "
    "every each another"
)
# "two side up", "three quarter view" are tags, so a number opens a sentence only
# when more words follow than a tag usually has.
_NUMBER_WORDS = _words("two three four five six seven eight nine ten")
# Words that almost never occur in Danbooru tags but in nearly every sentence.
_STRONG_WORDS = _words(
    "a an the is are was were be been being am has have had does do did and but or "
    "while which who whom whose that this these those there it he she they we you i "
    "him his her hers their them our my your its will would can could should not then "
    "than as"
)
# Prepositions do occur in tags ("hand on own chest", "hair over one eye"), so
# they make a sentence only in a longer chunk.
_WEAK_WORDS = _words(
    "with of in on at to from by under over behind between above below into onto "
    "through near beside around across against along among inside outside without "
    "within toward towards for during after before like beneath upon"
)
_FUNCTION_WORDS = _STRONG_WORDS | _WEAK_WORDS
# After a comma these words continue the sentence before them.
_CONTINUATION_WORDS = _words("and but or while with which who where when as then so because that")
_ABBREVIATIONS = _words("mr mrs ms dr st mt ft vs etc jr sr inc ltd co bros prof vol ep no approx")
_WORD_PUNCTUATION = "\"'()[]{}<>,;:"
_TERMINATORS = ".!?…"
_CJK_SENTENCE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af][。！？]")
_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
# Danbooru's tags are romanised and CJK writes no spaces between words: a run of
# this many CJK characters is a phrase (a name such as 初音ミク is shorter).
CJK_PHRASE_CHARS = 6
# A Japanese clause before a comma ends in a particle (少女が、...); tags do not.
_HIRAGANA_END = re.compile(r"[\u4e00-\u9fff\u30a0-\u30ff][\u3040-\u309f]\s*$")
COMMAS = (",", "，", "、")


def comma_joiner(comma: str) -> str:
    """How chunks of one sentence are joined again: the comma as typed (an ASCII
    one with its space; full-width and Japanese commas take none)."""
    return ", " if comma == "," else comma

KnownTag = Callable[[str], bool]


def _bare(word: str) -> str:
    return word.strip(_WORD_PUNCTUATION + _TERMINATORS).lower()


def _ends_with_terminator(word: str) -> bool:
    """``sleeps.`` ends a sentence; ``1.5``, ``st.``, ``c.c.``, ``!?`` and ``...`` do not."""
    word = word.rstrip("\"')]")
    base = word.rstrip(_TERMINATORS)
    # "c.c." and "u.s." are initials, not a word ending a sentence.
    if base == word or len(base) < 2 or not base[-1].isalpha() or "." in base:
        return False
    return base.lower().lstrip(_WORD_PUNCTUATION) not in _ABBREVIATIONS


def _ends_sentence(chunk: str) -> bool:
    words = chunk.split()
    return bool(words) and (_ends_with_terminator(words[-1]) or chunk.rstrip()[-1] in "。！？")


def _sentence_shape(chunk: str, words: list[str]) -> bool:
    n = len(words)
    if n == 0:
        return False
    if n >= 3 and (
        _ends_with_terminator(words[-1])
        or any(_ends_with_terminator(w) and nxt[:1].isupper() for w, nxt in pairwise(words))
    ):
        return True
    if _CJK_SENTENCE.search(chunk) or n >= 7:
        return True
    if len(_CJK_CHAR.findall(chunk)) >= CJK_PHRASE_CHARS or _HIRAGANA_END.search(chunk):
        return True
    bare = [_bare(w) for w in words]
    if (bare[0] in _DETERMINERS and n >= 3) or (bare[0] in _NUMBER_WORDS and n >= 4):
        return True
    # Tags are lower case: "A dog", "The monastery" open a phrase, "a girl" may be a tag.
    if n >= 2 and bare[0] in _DETERMINERS and words[0][:1].isupper():
        return True
    if n >= 4 and any(b in _STRONG_WORDS for b in bare):
        return True
    return n >= 5 and any(b in _WEAK_WORDS for b in bare)


def looks_like_sentence(chunk: str, is_known_tag: KnownTag | None = None) -> bool:
    """Whether a comma chunk reads as natural language rather than a tag.

    Words are whitespace-separated (``looking_at_viewer`` is one word, and tags
    typed with underscores are never sentences by length). A chunk is a sentence
    when any of these holds:

    * it has 3+ words and a sentence terminator (``. ! ?``) after a word of two
      or more letters, at the end or before a capitalised word (so ``1.5``,
      ``st. louis``, ``c.c.``, ``!?`` and a trailing ``solo.`` do not count), or
      it contains a CJK full stop, exclamation or question mark after CJK text,
      or six or more CJK characters (CJK has no spaces; tags are romanised), or
      ends in a hiragana particle after kanji or katakana (a clause: 少女が);
    * it has 7+ words (Danbooru tags are never that long);
    * it starts with an article, demonstrative or possessive and has 3+ words,
      or with a number word (``two``...) and has 4+ words (``two side up`` is a tag),
      or with a capitalised article or determiner and has 2+ words (``A dog``;
      tags are lower case, so ``a girl`` stays a tag);
    * it has 4+ words and a word that tags almost never use (articles, pronouns,
      forms of *be*/*have*, conjunctions);
    * it has 5+ words and a preposition (``hair over one eye`` stays a tag).

    A chunk that looks like a sentence is still a tag when ``is_known_tag``
    accepts it (with or without a trailing terminator): ``looking at viewer``,
    ``the legend of zelda``. The callback is only asked about such chunks, so a
    database lookup costs nothing for ordinary tags.
    """
    words = chunk.split()
    sentence = _sentence_shape(chunk, words)
    if sentence and is_known_tag is not None:
        plain = " ".join(words)
        trimmed = plain.rstrip(_TERMINATORS).rstrip()
        if is_known_tag(plain) or (trimmed and trimmed != plain and is_known_tag(trimmed)):
            return False
    return sentence


# -------------------------------------------------------------------------- tokenizer

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
# Each alternative is either fixed-length or a run of characters from a class
# that cannot overlap with where the next attempt starts, so the scan is linear.
_TOKEN_ALTERNATIVES = [
    # A1111: re_extra_net = <(\w+):([^>]+)>; excluding "<" bounds each attempt.
    r"(?P<net><\w{1,128}:[^<>]{1,4000}>)",
    r"(?P<emb>(?<!\w)embedding:[^\s,，、()\[\]<>:\\{}|]{1,256})",
    r"(?P<emo>(?<![^\s,，、(\[])>?[:;=][-']?[()\[\]](?=[ \t]*(?:[,，、\r\n)\]]|\Z)))",
    r"(?P<esc>\\[()\[\]\\])",
    rf"(?P<wclose>:\s*(?P<num>{_NUMBER})\s*[)\]])",
    r"(?P<open>[(\[])",
    r"(?P<close>[)\]])",
    r"(?P<brk>\bBREAK\b)",
    # Full-width (，) and Japanese enumeration (、) commas separate as "," does.
    r"(?P<sep>\r\n|[,，、\r\n])",
    r"(?P<pipe>\|)",
    r"(?P<dyn>\{[^{}\r\n|]{0,2000}\|[^{}\r\n]{0,4000}\})",
    r"(?P<text>(?:(?!BREAK|embedding:)[^\\()\[\]:;=>,，、\r\n<|{])+)",
    r"(?P<other>[\s\S])",
]
_TOKEN = re.compile("|".join(_TOKEN_ALTERNATIVES))
_TOKEN_NO_EMO = re.compile("|".join(a for a in _TOKEN_ALTERNATIVES if "<emo>" not in a))
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")
_HSPACES = re.compile(r"[ \t]{2,}")

# Token kinds.
_NET, _EMB, _EMO, _ESC, _WCLOSE, _OPEN, _CLOSE, _BRK, _SEP, _PIPE, _DYN, _TEXT, _OTHER = range(13)
_KIND = {
    "net": _NET, "emb": _EMB, "emo": _EMO, "esc": _ESC, "wclose": _WCLOSE, "open": _OPEN,
    "close": _CLOSE, "brk": _BRK, "sep": _SEP, "pipe": _PIPE, "dyn": _DYN, "text": _TEXT,
    "other": _OTHER,
}  # fmt: skip
_PAIRS = {"(": ")", "[": "]"}
_CONTENT = frozenset({_EMO, _ESC, _PIPE, _DYN, _TEXT, _OTHER})
# Group kinds, by what closes them.
_ROUND, _WEIGHTED, _SQUARE, _EDIT, _ALTERNATE = range(5)
_OPAQUE = frozenset({_EDIT, _ALTERNATE})


@dataclass(slots=True)
class _Tokens:
    source: str
    kind: list[int]
    start: list[int]
    end: list[int]
    match: list[int]  # the other bracket of a bracket token, else -1
    depth: list[int]  # open groups around the token (before it, for an opener)
    group: dict[int, int]  # opener index -> group kind
    weight: dict[int, float]  # opener index -> the multiplier of its group
    colon: dict[int, int]  # opener of a [ ] group -> its first direct ':' token
    pipe: dict[int, int]  # opener of a [ ] group -> its first direct '|' token

    def src(self, i: int) -> str:
        return self.source[self.start[i] : self.end[i]]

    def is_space(self, i: int) -> bool:
        return self.kind[i] == _TEXT and self.source[self.start[i] : self.end[i]].isspace()


def _tokenize(text: str) -> _Tokens:
    """Tokens plus matched brackets; raises on unbalanced or crossed brackets."""
    kinds: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    match: list[int] = []
    depth: list[int] = []
    group: dict[int, int] = {}
    weight: dict[int, float] = {}
    colon: dict[int, int] = {}
    pipe: dict[int, int] = {}
    stack: list[int] = []
    last_significant = _SEP  # start of prompt counts as a chunk boundary
    pos, size = 0, len(text)
    while pos < size:
        m = _TOKEN.match(text, pos)
        assert m is not None  # "other" matches any character
        kind = _KIND[m.lastgroup or "other"]
        if kind == _EMO and (
            last_significant not in (_SEP, _OPEN, _BRK, _NET, _EMB)
            or (last_significant == _OPEN and _PAIRS[text[starts[stack[-1]]]] == text[m.end() - 1])
        ):
            # An emoticon only when it is the whole chunk ("(wink ;)" is a group),
            # and "(:)" is a group too: the bracket closes what was just opened.
            m = _TOKEN_NO_EMO.match(text, pos)
            assert m is not None
            kind = _KIND[m.lastgroup or "other"]
        index = len(kinds)
        kinds.append(kind)
        starts.append(m.start())
        ends.append(m.end())
        match.append(-1)
        depth.append(len(stack))
        if kind == _OPEN:
            stack.append(index)
        elif kind in (_CLOSE, _WCLOSE):
            closer = text[m.end() - 1]
            if not stack:
                raise _error_at(text, m.end() - 1, f"unbalanced {closer!r}")
            opener = stack[-1]
            opener_char = text[starts[opener]]
            if (opener_char == "(") != (closer == ")"):
                expected = ")" if opener_char == "(" else "]"
                raise _error_at(
                    text,
                    m.end() - 1,
                    f"unbalanced {closer!r}",
                    f": expected {expected!r} to close the {opener_char!r} at"
                    f" {_where(text, starts[opener])}",
                )
            stack.pop()
            match[opener], match[index] = index, opener
            if closer == ")":
                if kind == _WCLOSE:
                    group[opener] = _WEIGHTED
                    weight[opener] = float(m.group("num"))
                else:
                    group[opener] = _ROUND
                    weight[opener] = _ATTENTION
            elif kind == _WCLOSE:
                group[opener] = _EDIT
            elif opener in pipe:
                group[opener] = _ALTERNATE
            else:
                group[opener] = _SQUARE
                weight[opener] = 1 / _ATTENTION
        elif (
            kind in (_PIPE, _OTHER)
            and stack
            and text[starts[stack[-1]]] == "["
            and text[m.start()] in ":|"
        ):
            firsts = colon if text[m.start()] == ":" else pipe
            firsts.setdefault(stack[-1], index)
        if not (kind == _TEXT and text[m.start() : m.end()].isspace()):
            last_significant = kind
        pos = m.end()
    if stack:
        opener = stack[-1]
        raise _error_at(text, starts[opener], f"unbalanced {text[starts[opener]]!r}")
    return _Tokens(text, kinds, starts, ends, match, depth, group, weight, colon, pipe)


# --------------------------------------------------------------------------- pieces


@dataclass(slots=True)
class _Atom:
    """A content token (or a whole edit/alternation group) inside a chunk."""

    lo: int  # first token
    hi: int  # last token
    clean: str  # model text
    raw: str  # source spelling, escapes and inner syntax kept
    weight: float
    group: int  # innermost enclosing weight group (opener index), -1 if none
    space: bool = False


@dataclass(slots=True)
class _Chunk:
    atoms: list[_Atom | None] = field(default_factory=list)  # None: a network stood here
    has_network: bool = False

    def content(self) -> list[_Atom]:
        return [a for a in self.atoms if a is not None and not a.space]

    def clean(self) -> str:
        parts = [" " if a is None else a.clean for a in self.atoms]
        return " ".join("".join(parts).split())


@dataclass(slots=True)
class _OpenText:
    """A text piece still collecting comma-separated chunks of the same sentence."""

    items: list[_Atom | str | None]  # atoms, network gaps, joiners (", "/" ") between chunks
    cleans: list[str]
    segment: int


def _range_clean(tokens: _Tokens, lo: int, hi: int) -> str:
    parts: list[str] = []
    for i in range(lo, hi + 1):
        kind = tokens.kind[i]
        if kind == _ESC:
            parts.append(tokens.source[tokens.end[i] - 1])
        elif kind == _DYN:
            parts.append(_dyn_clean(tokens.src(i)))
        elif kind in _CONTENT:
            parts.append(tokens.src(i))
        elif kind == _SEP:
            parts.append(", ")
        elif kind == _BRK:
            parts.append(" ")
    return " ".join("".join(parts).split()).strip(" ,")


def _range_raw(tokens: _Tokens, lo: int, hi: int) -> str:
    """Source of tokens lo..hi without the networks (they are pieces of their own)."""
    # A network leaves a space, not nothing: "\\<lora:x:1>]" must not become "\\]".
    parts = [" " if tokens.kind[i] in (_NET, _EMB) else tokens.src(i) for i in range(lo, hi + 1)]
    raw = "".join(parts)
    if any(tokens.kind[i] in (_NET, _EMB) for i in range(lo, hi + 1)):
        raw = _HSPACES.sub(" ", raw)
    return raw.strip()


def _dyn_clean(raw: str) -> str:
    first = raw[1:].split("|", 1)[0]
    return " ".join(re.sub(r"[()\[\]]", " ", unescape_tag(first)).split())


def _opaque_clean(tokens: _Tokens, opener: int) -> str:
    closer = tokens.match[opener]
    if tokens.group[opener] == _ALTERNATE:
        return _range_clean(tokens, opener + 1, tokens.pipe[opener] - 1)
    at = tokens.colon.get(opener)
    # [from:to:when] / [to:when]: the image ends with "to"; "[from::when]" with "from".
    to = _range_clean(tokens, (at if at is not None else opener) + 1, closer - 1)
    if to or at is None:
        return to
    return _range_clean(tokens, opener + 1, at - 1)


def _strip_bare_weight(tag: str) -> str:
    """``absurdres:1.2`` -> ``absurdres`` (A1111 ignores such a weight; the model should too)."""
    colon = tag.rfind(":")
    if colon <= 0:
        return tag
    head, tail = tag[:colon].rstrip(), tag[colon + 1 :].strip()
    if head and not head[-1].isdigit() and head[-1] != ":" and re.fullmatch(_NUMBER, tail):
        return head
    return tag


def _strip_period(tag: str) -> str:
    """``solo.`` -> ``solo``: a full stop after a tag is punctuation, not part of the tag.

    ``!`` and ``?`` stay (``k-on!``), and so do abbreviations and initials
    (``super smash bros.``, ``c.c.``).
    """
    words = tag.rsplit(None, 1)
    if tag.endswith(".") and not tag.endswith("..") and _ends_with_terminator(words[-1]):
        return tag[:-1].rstrip()
    return tag


def _same_weight(a: float, b: float) -> bool:
    return _format_weight(a) == _format_weight(b)


def _synthesize(items: Iterable[_Atom | str | None]) -> str:
    """Raw for a piece whose source cannot be copied: each run of equal weight wrapped.

    ``items`` are atoms, joiner strings between chunks, and ``None`` where a
    network was taken out.
    """
    out: list[str] = []
    run: list[str] = []
    run_weight: float | None = None
    pending = ""

    def flush() -> None:
        if run and run_weight is not None:
            text = _SPACES.sub(" ", "".join(run))
            core = text.strip()
            if core:
                lead = " " if text.startswith(" ") else ""
                trail = " " if text.endswith(" ") else ""
                out.append(lead + _wrap(core, run_weight) + trail)
        run.clear()

    for item in items:
        if item is None:
            run.append(" ")
        elif isinstance(item, str):
            pending = item if run_weight is not None else ""
        elif item.space:
            run.append(item.raw)
        else:
            if run_weight is not None and _same_weight(run_weight, item.weight):
                run.append(pending + item.raw)
            else:
                flush()
                if pending:
                    out.append(pending)
                run_weight = item.weight
                run.append(item.raw)
            pending = ""
    flush()
    return " ".join("".join(out).split())


class _Builder:
    def __init__(self, tokens: _Tokens, is_known_tag: KnownTag | None, max_pieces: int) -> None:
        self.t = tokens
        self.is_known_tag = is_known_tag
        self.max_pieces = max_pieces
        self.pieces: list[Piece] = []
        self.segment = 0
        self.open_text: _OpenText | None = None
        self.gap_newline = False
        self.gap_barrier = False
        self.gap_comma = ","
        """The comma typed before the current chunk (",", "，" or "、")."""

    # -- bookkeeping

    def add(self, piece: Piece) -> None:
        if len(self.pieces) >= self.max_pieces:
            raise _error_at(
                self.t.source,
                piece.start,
                f"too many pieces (limit {self.max_pieces} tags, texts, networks and BREAKs):"
                f" piece {self.max_pieces + 1} starts",
            )
        self.pieces.append(piece)

    def span(self, lo: int, hi: int) -> tuple[int, int, int, int]:
        """Widen tokens lo..hi over brackets that enclose exactly them.

        Returns the widened token range and the trimmed source offsets.
        """
        t = self.t
        while True:
            before, after = lo - 1, hi + 1
            while before >= 0 and t.is_space(before):
                before -= 1
            while after < len(t.kind) and t.is_space(after):
                after += 1
            if (
                before >= 0
                and t.kind[before] == _OPEN
                and t.match[before] == after
                and t.group[before] not in _OPAQUE
            ):
                lo, hi = before, after
            else:
                break
        text = t.source[t.start[lo] : t.end[hi]]
        start = t.start[lo] + (len(text) - len(text.lstrip()))
        end = t.end[hi] - (len(text) - len(text.rstrip()))
        return lo, hi, start, end

    def self_contained(self, lo: int, hi: int) -> bool:
        """Tokens lo..hi can be copied as they are: no bracket of theirs reaches outside."""
        t = self.t
        if t.depth[lo] != 0:
            return False
        for i in range(lo, hi + 1):
            other = t.match[i]
            if other != -1 and not lo <= other <= hi:
                return False
        return True

    def piece_from(
        self, kind: PieceKind, items: Sequence[_Atom | str | None], clean: str, segment: int
    ) -> Piece:
        atoms = [a for a in items if isinstance(a, _Atom) and not a.space]
        lo, hi, start, end = self.span(atoms[0].lo, atoms[-1].hi)
        raw = _range_raw(self.t, lo, hi) if self.self_contained(lo, hi) else _synthesize(items)
        weight = atoms[0].weight
        if any(not _same_weight(a.weight, weight) for a in atoms):
            weight = 1.0
        return Piece(kind, clean, raw, round(weight, 6), segment, start, end)

    # -- emitters

    def network(self, i: int, weight: float) -> None:
        t = self.t
        raw = t.src(i)
        if t.kind[i] == _NET:
            # A1111 takes networks out before reading weights: brackets around one do nothing.
            self.add(Piece("network", raw[1:-1], raw, 1.0, self.segment, t.start[i], t.end[i]))
            return
        # ComfyUI weights embeddings, so "(embedding:x:1.2)" keeps its brackets.
        lo, hi, start, end = self.span(i, i)
        raw = t.source[start:end] if self.self_contained(lo, hi) else _wrap(raw, weight)
        self.add(Piece("network", t.src(i), raw, round(weight, 6), self.segment, start, end))

    def brk(self, i: int) -> None:
        self.close_text()
        t = self.t
        self.add(Piece("break", "BREAK", "BREAK", 1.0, self.segment, t.start[i], t.end[i]))
        self.segment += 1
        self.gap_barrier = True

    def close_text(self) -> None:
        open_text = self.open_text
        if open_text is None:
            return
        self.open_text = None
        clean = "".join(open_text.cleans)
        self.add(self.piece_from("text", open_text.items, clean, open_text.segment))

    def chunk(self, chunk: _Chunk) -> None:
        """A comma chunk is finished: make it a tag, a text, or part of the open text."""
        clean = chunk.clean() if chunk.content() else ""
        if not clean:
            if chunk.has_network:
                self.gap_barrier = True
            return
        is_sentence = looks_like_sentence(clean, self.is_known_tag)
        open_text = self.open_text
        if open_text is not None and self.continues(open_text, clean, is_sentence):
            joiner = " " if self.gap_newline else comma_joiner(self.gap_comma)
            open_text.items.append(joiner)
            open_text.items.extend(chunk.atoms)
            open_text.cleans.extend((joiner, clean))
        elif is_sentence:
            self.close_text()
            self.open_text = _OpenText(list(chunk.atoms), [clean], self.segment)
        else:
            self.close_text()
            self.tags(chunk)
        self.gap_newline = self.gap_barrier = False

    def continues(self, open_text: _OpenText, clean: str, is_sentence: bool) -> bool:
        """Whether a chunk after an open text belongs to the same sentence."""
        if self.gap_barrier:
            return False
        last = open_text.cleans[-1]
        if self.gap_newline:
            # A line break inside a sentence: the line did not end it, and the next
            # line reads as its continuation.
            if _ends_sentence(last):
                return False
            return (is_sentence and clean[:1].islower()) or _bare(
                last.split()[-1]
            ) in _FUNCTION_WORDS
        first = _bare(clean.split()[0])
        return is_sentence or _ends_sentence(clean) or first in _CONTINUATION_WORDS

    def tags(self, chunk: _Chunk) -> None:
        """Tags of a chunk: a new tag wherever the weight group changes or a network sat."""
        runs: list[list[_Atom | None]] = []
        current: list[_Atom | None] | None = None
        current_group = -2
        broken = False
        for atom in chunk.atoms:
            if atom is None:
                broken = True
            elif atom.space:
                if current is not None:
                    current.append(atom)
            elif current is None or broken or atom.group != current_group:
                current = [atom]
                runs.append(current)
                current_group = atom.group
                broken = False
            else:
                current.append(atom)
        for run in runs:
            parts = [a.clean for a in run if a is not None]
            clean = _strip_period(_strip_bare_weight(" ".join("".join(parts).split())))
            if clean:
                self.add(self.piece_from("tag", list(run), clean, self.segment))


def parse_prompt(
    text: str,
    *,
    is_known_tag: KnownTag | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    max_pieces: int = DEFAULT_MAX_PIECES,
) -> ParsedPrompt:
    """Split an A1111 / ComfyUI prompt into tags, texts, BREAKs and networks.

    ``is_known_tag`` (e.g. ``TagDatabase.is_known``) keeps chunks that look like
    sentences as tags when they are real tags (see :func:`looks_like_sentence`).
    Raises :class:`PromptSyntaxError` for unbalanced brackets, control
    characters other than tab and newline, more than ``max_chars`` characters or
    more than ``max_pieces`` pieces. Carriage returns count as line breaks.
    Exceptions raised by ``is_known_tag`` itself are not caught.
    """
    if not isinstance(text, str):
        raise TypeError(f"prompt must be a str, not {type(text).__name__}")
    if len(text) > max_chars:
        raise PromptSyntaxError(f"prompt too long: {len(text)} characters (limit {max_chars})")
    bad = _CONTROL.search(text)
    if bad is not None:
        raise _error_at(
            text, bad.start(), f"control character U+{ord(bad.group()):04X} not allowed"
        )
    tokens = _tokenize(text)
    builder = _Builder(tokens, is_known_tag, max_pieces)
    multipliers = [1.0]
    groups = [-1]
    chunk = _Chunk()
    kinds, size, i = tokens.kind, len(tokens.kind), 0
    while i < size:
        kind = kinds[i]
        if kind in _CONTENT:
            raw = tokens.src(i)
            if kind == _ESC:
                clean = raw[1]
            elif kind == _DYN:
                clean = _dyn_clean(raw)
            elif kind == _EMO:
                clean, raw = raw, escape_tag(raw)
            else:
                clean = raw
            space = kind == _TEXT and raw.isspace()
            chunk.atoms.append(_Atom(i, i, clean, raw, multipliers[-1], groups[-1], space))
        elif kind == _OPEN:
            if tokens.group[i] in _OPAQUE:
                end = tokens.match[i]
                for j in range(i, end + 1):
                    if kinds[j] in (_NET, _EMB):
                        builder.network(j, multipliers[-1])
                        chunk.has_network = True
                atom = _Atom(
                    i,
                    end,
                    _opaque_clean(tokens, i),
                    _range_raw(tokens, i, end),
                    multipliers[-1],
                    groups[-1],
                )
                chunk.atoms.append(atom)
                i = end + 1
                continue
            multiplier = multipliers[-1] * tokens.weight[i]
            if not math.isfinite(multiplier):
                raise _error_at(text, tokens.start[i], "weight too large")
            multipliers.append(multiplier)
            groups.append(i)
        elif kind in (_CLOSE, _WCLOSE):
            multipliers.pop()
            groups.pop()
        elif kind == _SEP:
            builder.chunk(chunk)
            chunk = _Chunk()
            if tokens.src(i) in COMMAS:
                builder.gap_comma = tokens.src(i)
            else:
                builder.gap_newline = True
        elif kind == _BRK:
            builder.chunk(chunk)
            chunk = _Chunk()
            builder.brk(i)
        else:  # _NET, _EMB
            builder.network(i, multipliers[-1])
            chunk.atoms.append(None)
            chunk.has_network = True
        i += 1
    builder.chunk(chunk)
    builder.close_text()
    pieces = sorted(builder.pieces, key=lambda p: p.start)
    return ParsedPrompt(tuple(_lone_phrase(pieces, is_known_tag)))


def _lone_phrase(pieces: list[Piece], is_known_tag: KnownTag | None) -> list[Piece]:
    """A prompt that is one short phrase opened by an article ("a dog") is text.

    Among tags, "a girl" is one more tag; alone it is what a person types to
    describe a picture, and a tag model would take it for an unknown tag.
    """
    content = [i for i, p in enumerate(pieces) if p.kind in ("tag", "text")]
    if len(content) != 1 or pieces[content[0]].kind != "tag":
        return pieces
    piece = pieces[content[0]]
    words = piece.text.split()
    if len(words) < 2 or _bare(words[0]) not in _DETERMINERS:
        return pieces
    if " ".join(piece.raw.split()) != piece.text:
        return pieces  # weights, editing or choices are kept only on tags
    if is_known_tag is not None and is_known_tag(piece.text):
        return pieces
    return [replace(p, kind="text") if i == content[0] else p for i, p in enumerate(pieces)]


def joined_text(
    parsed: ParsedPrompt, source: str, keep: Callable[[Piece], bool] | None = None
) -> str:
    """The prompt's text pieces (those ``keep`` accepts) as one text, joined as they
    were typed.

    Pieces separated by tags, weights or networks (``a field, (masterpiece:1.2),
    wind in her hair``) keep the comma that stood between them, so the text
    reads as typed; a piece that ends a sentence is followed by a space.
    """
    out = ""
    previous: Piece | None = None
    for piece in parsed.pieces:
        if piece.kind != "text" or (keep is not None and not keep(piece)):
            continue
        if previous is not None:
            gap = source[previous.end : piece.start]
            comma = next((c for c in gap if c in COMMAS), None)
            out += " " if comma is None or _ends_sentence(out) else comma_joiner(comma)
        out += piece.text
        previous = piece
    return out


def render_pieces(pieces: Iterable[Piece | str]) -> str:
    """Write pieces (or already formatted strings) back as one A1111 prompt.

    Pieces are joined with ``", "``. After a text, a piece that :func:`parse_prompt`
    would read as the same sentence (another text, or a tag ending in ``.`` or
    starting with "and", "with"...) goes on a new line instead, as does anything
    after a text that ends a sentence. ``BREAK`` stands on its own line.
    """
    parts: list[str] = []
    previous: Piece | str | None = None
    for piece in pieces:
        if isinstance(piece, Piece) and piece.kind == "break":
            parts.append("\nBREAK\n")
            previous = None
            continue
        raw = (piece if isinstance(piece, str) else piece.raw).strip()
        if not raw:
            continue
        if previous is not None:
            parts.append("\n" if _would_join(previous, piece) else ", ")
        parts.append(raw)
        previous = piece
    return "".join(parts).strip()


def _would_join(previous: Piece | str, piece: Piece | str) -> bool:
    """Whether ``previous, piece`` would be read back as one text."""
    if isinstance(previous, str) or previous.kind != "text":
        return False
    if _ends_sentence(previous.text):
        return True
    if isinstance(piece, Piece):
        if piece.kind == "text":
            return True
        text = piece.text
    else:
        text = unescape_tag(piece)
    words = text.split()
    return bool(words) and (_ends_sentence(text) or _bare(words[0]) in _CONTINUATION_WORDS)
