"""Prompts past 77 tokens, encoded without cutting: sub-prompt bags, A1111-style chunks.

diffusers' pipelines cut a prompt at 77 CLIP tokens, and a presampled prompt
is usually longer. Here the prompt is read with ``presample.syntax`` (the
A1111 / ComfyUI syntax): each tag or sentence fragment is a sub-prompt, and
the sub-prompts of each ``BREAK`` segment are packed greedily, in order, into
bags of at most 75 tokens (``canvas.tokens.greedy_bags``, Omost's rule), so a
tag is never split across two CLIP passes. Each bag is one 77-token pass; the
passes are concatenated along the sequence, as A1111 does. A sub-prompt longer
than 75 tokens on its own is split into 75-token runs (nothing is dropped).

Weights ``(tag:1.2)`` / ``[tag]`` scale their tokens' embeddings, then each
pass is rescaled to its original mean (A1111's ``emphasis``). A text fragment
whose parts carry different weights is encoded at weight 1 (``syntax`` keeps
one weight per piece). ``<lora:...>`` and other extra networks are not text:
they are left out and listed in ``TextEmbeddings.networks`` (load LoRAs with
``pipe.load_lora_weights``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..canvas.tokens import SUBPROMPT_LIMIT, greedy_bags
from ..syntax import parse_prompt
from .text import CHUNK, ClipStack


@dataclass
class TextEmbeddings:
    embeds: torch.Tensor
    """``(1, 77 * chunks, dim)``."""
    pooled: torch.Tensor | None
    """SDXL: the pooled embedding of the first pass; else ``None``."""
    chunks: int
    texts: tuple[str, ...]
    """What each 77-token pass holds, as text."""
    networks: tuple[str, ...] = ()
    """Extra networks found in the prompt (``<lora:x:0.8>``), not encoded."""


@dataclass(frozen=True)
class _Piece:
    text: str
    weight: float
    ids: tuple[tuple[int, ...], ...]  # per tokenizer


# A clause: text up to and including its run of commas / sentence punctuation.
_CLAUSE = re.compile(r"[^,.;!?]+[,.;!?]*|[,.;!?]+")


def _sub_prompts(segment: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """A segment's sub-prompts: each tag, each clause of a sentence, with its comma.

    CLIP's tokenizer splits words from punctuation, so the clauses' tokens
    concatenated are exactly the segment's tokens.
    """
    out = []
    for index, (text, weight) in enumerate(segment):
        written = text if index == len(segment) - 1 else f"{text},"
        out += [(c.strip(), weight) for c in _CLAUSE.findall(written) if c.strip()]
    return out


def _segments(stack: ClipStack, prompt: str) -> tuple[list[list[_Piece]], list[str]]:
    parsed = parse_prompt(prompt)
    segments: list[list[tuple[str, float]]] = [[]]
    networks: list[str] = []
    for piece in parsed.pieces:
        if piece.kind == "break":
            segments.append([])
        elif piece.kind == "network":
            networks.append(piece.raw)
        elif piece.text.strip():
            segments[-1].append((piece.text, piece.weight))
    out = []
    for segment in segments:
        pieces = []
        for text, weight in _sub_prompts(segment):
            ids = stack.tokenize(text)
            if len(ids[0]) <= SUBPROMPT_LIMIT:
                pieces.append(_Piece(text, weight, tuple(ids)))
                continue
            # A clause longer than a pass is split into runs: nothing is dropped.
            for at in range(0, len(ids[0]), SUBPROMPT_LIMIT):
                run = tuple(i[at : at + SUBPROMPT_LIMIT] for i in ids)
                shown = stack.tokenizers[0].decode(list(run[0]))
                pieces.append(_Piece(shown, weight, run))
        out.append(pieces)
    return [s for s in out if s] or [[]], networks


@dataclass(frozen=True)
class PromptChunks:
    """A prompt cut into 77-token passes at sub-prompt boundaries."""

    ids: tuple[tuple[tuple[int, ...], ...], ...]
    """``ids[i][e]``: pass ``i``'s 77 ids for tokenizer ``e`` (bos, tokens, eos, padding)."""
    weights: tuple[tuple[float, ...], ...]
    """``weights[i]``: the 77 token weights of pass ``i`` (1.0 for bos, eos and padding)."""
    texts: tuple[str, ...]
    """What each pass holds, as text."""
    networks: tuple[str, ...]
    """Extra networks found in the prompt (``<lora:x:0.8>``), not encoded."""


def prompt_chunks(stack: ClipStack, prompt: str) -> PromptChunks:
    """Cut ``prompt`` into passes: BREAK segments, then greedy bags of whole sub-prompts."""
    segments, networks = _segments(stack, prompt)
    encoders = len(stack.tokenizers)
    ids, weights, texts = [], [], []
    for pieces in segments:
        groups = greedy_bags([len(p.ids[0]) for p in pieces], SUBPROMPT_LIMIT) or [[]]
        for group in groups:
            ids.append(
                tuple(
                    tuple(stack.chunk([t for i in group for t in pieces[i].ids[e]], e))
                    for e in range(encoders)
                )
            )
            w = [1.0] + [pieces[i].weight for i in group for _ in pieces[i].ids[0]]
            weights.append(tuple(w + [1.0] * (CHUNK - len(w))))
            texts.append(" ".join(pieces[i].text for i in group))
    return PromptChunks(tuple(ids), tuple(weights), tuple(texts), tuple(networks))


def _emphasis(embeds: torch.Tensor, weights: Sequence[Sequence[float]]) -> torch.Tensor:
    """A1111's emphasis: scale each token by its weight, keep each pass's mean."""
    if all(w == 1.0 for row in weights for w in row):
        return embeds
    z = embeds.reshape(len(weights), CHUNK, -1)
    w = torch.tensor(weights, dtype=z.dtype, device=z.device)[:, :, None]
    before = z.float().mean(dim=(1, 2), keepdim=True)
    z = z * w
    after = z.float().mean(dim=(1, 2), keepdim=True)
    # A pass whose weighted mean is 0 cannot be rescaled; leave it as weighted.
    ratio = torch.where(after == 0, torch.ones_like(after), before / after)
    z = z * ratio.to(z.dtype)
    return z.reshape(embeds.shape)


def encode_text(stack: ClipStack, prompt: str, *, zero: bool = False) -> TextEmbeddings:
    """``prompt`` in as many 77-token passes as it needs (see the module docstring).

    ``zero``: the text is encoded as zeros (SDXL's ``force_zeros_for_empty_prompt``).
    """
    chunks = prompt_chunks(stack, prompt)
    embeds, pooled = stack.encode(chunks.ids)
    embeds = _emphasis(embeds, chunks.weights)
    if zero:
        embeds = torch.zeros_like(embeds)
        pooled = None if pooled is None else torch.zeros_like(pooled)
    return TextEmbeddings(embeds, pooled, len(chunks.ids), chunks.texts, chunks.networks)


def extend(
    stack: ClipStack, embeds: torch.Tensor, tokens: int, *, zero: bool = False
) -> torch.Tensor:
    """Pad ``embeds`` to ``tokens`` with passes of the empty prompt (A1111 pads this way)."""
    missing = tokens - embeds.shape[1]
    if missing <= 0:
        return embeds
    if missing % CHUNK:
        raise ValueError(f"can only pad by whole 77-token passes, not {missing} tokens")
    if zero:
        filler = torch.zeros_like(embeds[:, :CHUNK])
    else:
        filler, _ = stack.encode([[stack.chunk([], e) for e in range(len(stack.tokenizers))]])
        filler = filler.to(embeds)
    return torch.cat([embeds, filler.repeat(1, missing // CHUNK, 1)], dim=1)


def _zero_negative(pipe: Any, negative_prompt: str) -> bool:
    """SDXL pipelines use zeros for an empty negative prompt (``force_zeros_for_empty_prompt``)."""
    return not negative_prompt and bool(getattr(pipe.config, "force_zeros_for_empty_prompt", False))


def encode_long_prompt(
    pipe: Any, prompt: str, negative: str = "", *, clip_skip: int | None = None
) -> dict[str, Any]:
    """The keyword arguments for ``pipe(...)`` that carry ``prompt`` past 77 tokens.

    ::

        kwargs = encode_long_prompt(pipe, long_prompt, negative="blurry, lowres")
        image = pipe(**kwargs, num_inference_steps=25).images[0]

    Returns ``prompt_embeds`` and ``negative_prompt_embeds`` (plus the pooled
    pair for SDXL), both ``77 * k`` tokens long: the shorter is padded with
    passes of the empty prompt so the pipeline can batch them for guidance.
    Works for ``StableDiffusionPipeline`` and ``StableDiffusionXLPipeline``
    (and their img2img / inpaint variants, which take the same arguments).
    """
    stack = ClipStack.from_pipe(pipe, clip_skip)
    positive = encode_text(stack, prompt)
    zero = _zero_negative(pipe, negative)
    negative_text = encode_text(stack, negative, zero=zero)
    tokens = max(positive.embeds.shape[1], negative_text.embeds.shape[1])
    kwargs: dict[str, Any] = {
        "prompt_embeds": extend(stack, positive.embeds, tokens),
        "negative_prompt_embeds": extend(stack, negative_text.embeds, tokens, zero=zero),
    }
    if positive.pooled is not None:
        kwargs["pooled_prompt_embeds"] = positive.pooled
        kwargs["negative_pooled_prompt_embeds"] = negative_text.pooled
    return kwargs


def presample_and_encode(
    pipe: Any,
    presampler: Any,
    request: Any,
    *,
    negative: str = "",
    clip_skip: int | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Presample ``request`` and encode the detailed prompt for ``pipe`` in one call.

    ::

        with Presampler() as p:
            result, kwargs = presample_and_encode(pipe, p, "1girl, scenery")
            image = pipe(**kwargs).images[0]

    Returns the ``PresampleResult`` (its ``prompt`` is what was encoded) and
    the kwargs of ``encode_long_prompt``.
    """
    result = presampler(request)
    return result, encode_long_prompt(pipe, result.prompt, negative, clip_skip=clip_skip)
