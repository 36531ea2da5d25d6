"""Token-safe text: CLIP token counts, Omost's sub-prompt bags, 77-token chunks.

Omost encodes each condition losslessly: every sub-prompt (a sentence, the
tag line ...) is under 75 CLIP tokens and stands on its own, so the suffixes
are packed greedily, in order, into bags that fit beside the prefixes, and
each bag is one 77-token CLIP pass (``lib_omost/pipeline.py``,
``encode_bag_of_subprompts_greedy``). Nothing is ever cut mid-thought.

Token counts use the real CLIP BPE vocabulary (49,408 tokens) through
``instant-clip-tokenizer`` (the ``canvas`` extra): a 3 MB wheel whose only
dependency is numpy, with the vocabulary compiled in, so no network and no
torch. Any other encoder can be passed as ``encode=`` (a function from text
to token ids without bos/eos, e.g. a Hugging Face ``CLIPTokenizer`` wrapped
as ``lambda t: tok(t, add_special_tokens=False).input_ids``).
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import install_hint
from ..formatting import Target, escape
from .layout import Condition, conditions
from .model import Canvas, sentence

Encode = Callable[[str], Sequence[int]]

SUBPROMPT_LIMIT = 75
"""Tokens one CLIP pass holds between its bos and eos."""
CONTEXT_LENGTH = SUBPROMPT_LIMIT + 2
BOS = 49406
EOS = 49407
PAD = 49407
"""SD 1.5's and SDXL's first tokenizer pad with eos; OpenCLIP bigG (SDXL's second) pads with 0."""


class MissingTokenizer(ImportError):
    """The CLIP vocabulary package is not installed."""


@functools.lru_cache(maxsize=1)
def _instant() -> object:
    try:
        import instant_clip_tokenizer
    except ImportError as exc:
        raise MissingTokenizer(
            "counting CLIP tokens needs instant-clip-tokenizer: "
            f"{install_hint('canvas')} (wheels for Python 3.10-3.12; "
            "elsewhere pass encode=..., e.g. a Hugging Face CLIPTokenizer)"
        ) from exc
    return instant_clip_tokenizer.Tokenizer()


# Hugging Face's BasicTokenizer puts spaces around these (CJK ideographs), so each
# becomes a word of its own before byte-pair encoding.
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def _clean(text: str) -> str:
    """Hugging Face ``CLIPTokenizer``'s cleaning when ``ftfy`` is absent (as in Omost).

    Drop NUL, U+FFFD and control characters, turn tabs, newlines and space
    separators into spaces, isolate CJK ideographs, NFC, collapse whitespace.
    Lower-casing is left to the BPE encoder.
    """
    out: list[str] = []
    for ch in text:
        if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif ch == "\ufffd" or unicodedata.category(ch).startswith("C"):
            continue
        elif any(lo <= ord(ch) <= hi for lo, hi in _CJK_RANGES):
            out.extend((" ", ch, " "))
        else:
            out.append(ch)
    return " ".join(unicodedata.normalize("NFC", "".join(out)).split())


def clip_encode(text: str) -> list[int]:
    """CLIP BPE token ids of ``text``, without bos/eos.

    Matches Hugging Face's ``CLIPTokenizer`` as Omost's pipeline ran it (no
    ``ftfy``), checked on 3,400 real prompts and captions in the tests' fixtures.
    """
    return list(_instant().encode(_clean(text)))  # type: ignore[attr-defined]


def count_tokens(text: str, encode: Encode | None = None) -> int:
    """How many CLIP tokens ``text`` takes (no bos/eos)."""
    return len((encode or clip_encode)(text))


def chunk77(ids: Sequence[int], *, bos: int = BOS, eos: int = EOS, pad: int = PAD) -> list[int]:
    """One CLIP pass: bos, at most 75 ids, eos, then padding to 77 (Omost's ``get_77_tokens``)."""
    out = [bos, *list(ids[:SUBPROMPT_LIMIT]), eos]
    return out + [pad] * (CONTEXT_LENGTH - len(out))


def greedy_bags(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Omost's greedy, order-preserving first fit; returns the indexes in each bag.

    A new bag opens when the next item would exceed ``capacity`` (a bag may
    fill it exactly); an item larger than ``capacity`` still gets a bag of its
    own. The README's sizes 25, 35, 5, 60, 15, 25 give [0, 1, 2], [3], [4, 5]
    with bags kept under 75 (capacity 74), and [0, 1, 2], [3, 4], [5] with
    Omost's actual capacity of 75.
    """
    bags: list[list[int]] = []
    current: list[int] = []
    total = 0
    for index, size in enumerate(lengths):
        if total + size > capacity:
            if current:
                bags.append(current)
            current, total = [index], size
        else:
            current.append(index)
            total += size
    if current:
        bags.append(current)
    return bags


@dataclass(frozen=True)
class Bag:
    """Prefixes plus some consecutive suffixes: one CLIP pass."""

    suffixes: tuple[int, ...]
    """Indexes into the condition's ``suffixes``."""
    text: str
    """The prefixes and the bag's suffixes joined by spaces."""
    ids: tuple[int, ...]
    """Prefix then suffix token ids (no bos/eos); ``chunk`` cuts to 75."""

    @property
    def length(self) -> int:
        return len(self.ids)

    def chunk(self, *, bos: int = BOS, eos: int = EOS, pad: int = PAD) -> list[int]:
        return chunk77(self.ids, bos=bos, eos=eos, pad=pad)


@dataclass(frozen=True)
class EncodedCondition:
    """A condition's bags: what Omost encodes and concatenates (77 x k tokens)."""

    condition: Condition
    prefix_tokens: int
    suffix_tokens: tuple[int, ...]
    """Each suffix's length after Omost's cut to 75."""
    bags: tuple[Bag, ...]

    @property
    def capacity(self) -> int:
        return SUBPROMPT_LIMIT - self.prefix_tokens

    def ids(self, *, bos: int = BOS, eos: int = EOS, pad: int = PAD) -> list[int]:
        """All bags as 77-token chunks, concatenated along the sequence."""
        return [t for bag in self.bags for t in bag.chunk(bos=bos, eos=eos, pad=pad)]

    def to_dict(self) -> dict[str, object]:
        return {
            **self.condition.to_dict(),
            "prefix_tokens": self.prefix_tokens,
            "suffix_tokens": list(self.suffix_tokens),
            "bags": [
                {"suffixes": list(b.suffixes), "tokens": b.length, "text": b.text}
                for b in self.bags
            ],
        }


def bag_condition(condition: Condition, encode: Encode | None = None) -> EncodedCondition:
    """Pack a condition's suffixes into bags beside its prefixes, exactly as Omost.

    Capacity is 75 minus the prefixes' tokens. Each suffix is cut to 75 tokens
    first (Omost's ``[:75]``; a real sub-prompt never is). A condition without
    suffixes (Omost always has some) gets one bag of just the prefixes.
    """
    enc = encode or clip_encode
    prefix_ids = [t for p in condition.prefixes for t in enc(p)]
    suffix_ids = [list(enc(s))[:SUBPROMPT_LIMIT] for s in condition.suffixes]
    lengths = [len(ids) for ids in suffix_ids]
    groups = greedy_bags(lengths, SUBPROMPT_LIMIT - len(prefix_ids)) or [[]]
    bags = tuple(
        Bag(
            suffixes=tuple(group),
            text=" ".join([*condition.prefixes, *(condition.suffixes[i] for i in group)]),
            ids=tuple(prefix_ids + [t for i in group for t in suffix_ids[i]]),
        )
        for group in groups
    )
    return EncodedCondition(condition, len(prefix_ids), tuple(lengths), bags)


def bag_canvas(canvas: Canvas, encode: Encode | None = None) -> list[EncodedCondition]:
    """Every layer's bags, global first then regions far to near."""
    return [bag_condition(c, encode) for c in conditions(canvas)]


@dataclass(frozen=True)
class LengthWarning:
    """A sub-prompt over the 75-token budget (Omost promises they never are)."""

    layer: int
    """Index in ``conditions(canvas)``: 0 is the global layer."""
    part: str
    """``prefix`` or ``suffix``."""
    index: int
    text: str
    tokens: int

    def __str__(self) -> str:
        shown = self.text if len(self.text) <= 50 else self.text[:47] + "..."
        return (
            f"layer {self.layer} {self.part} {self.index}: {self.tokens} CLIP tokens "
            f"(over {SUBPROMPT_LIMIT}): {shown!r}"
        )


def check_lengths(
    layers: Sequence[Condition], encode: Encode | None = None, limit: int = SUBPROMPT_LIMIT
) -> list[LengthWarning]:
    """Every prefix or suffix longer than ``limit`` tokens."""
    enc = encode or clip_encode
    warnings: list[LengthWarning] = []
    for layer, cond in enumerate(layers):
        for part, texts in (("prefix", cond.prefixes), ("suffix", cond.suffixes)):
            for index, text in enumerate(texts):
                n = len(enc(text))
                if n > limit:
                    warnings.append(LengthWarning(layer, part, index, text, n))
    return warnings


# --- the prompt prefix tree ---------------------------------------------------------------


@dataclass(frozen=True)
class PromptNode:
    """A node of Omost's prompt prefix tree; a root-to-leaf path reads as one prompt."""

    text: str
    children: tuple[PromptNode, ...] = ()

    def paths(self) -> list[str]:
        """Every root-to-leaf prompt, depth first, in canvas order."""
        if not self.children:
            return [self.text]
        return [f"{self.text} {rest}" for child in self.children for rest in child.paths()]


def prompt_tree(canvas: Canvas) -> PromptNode:
    """Root: the global description; children: the global details and the region
    descriptions (in canvas order); leaves: each region's detailed descriptions.

    "A cat and a dog." -> "The cat on sofa." gives the prompt
    "A cat and a dog. The cat on sofa."
    """
    g = canvas.global_description
    children = [PromptNode(sentence(d)) for d in g.detailed_descriptions]
    for region in canvas.regions:
        leaves = tuple(PromptNode(sentence(d)) for d in region.detailed_descriptions)
        children.append(PromptNode(sentence(region.description), leaves))
    return PromptNode(sentence(g.description), tuple(children))


# --- a flat prompt for UIs without regional prompting -------------------------------------

_SEPARATORS = {Target.A1111: "\nBREAK\n", Target.COMFYUI: "\n\n", Target.PLAIN: "\n\n"}


def flat_prompt(
    canvas: Canvas,
    target: Target | str = Target.PLAIN,
    *,
    regions: bool = True,
    encode: Encode | None = None,
) -> str:
    """The canvas as one prompt string, one bag per CLIP chunk where the UI allows.

    All layers' bags in layer order (global, then regions far to near; only
    the global layer with ``regions=False``), as if every mask covered the
    whole image. A1111 gets ``BREAK`` between bags, which starts a new
    77-token chunk there, so each bag is encoded exactly as Omost does. ComfyUI's
    text box has no such keyword: its text is the bags separated by blank
    lines (for a lossless encoding, feed each ``Bag.text`` to its own
    CLIPTextEncode and join them with ConditioningConcat). Literal brackets are
    escaped for the target so they are not read as weights.
    """
    target = Target(target)
    layers = bag_canvas(canvas, encode)
    if not regions:
        layers = layers[:1]
    texts = [escape(bag.text, target) for layer in layers for bag in layer.bags]
    return _SEPARATORS[target].join(texts)
