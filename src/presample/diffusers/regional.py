"""A canvas as diffusers inputs: per-layer bag encodings, their masks, the regional state.

Each layer (global first, then regions far to near, ``canvas.layout.conditions``)
is packed into Omost's sub-prompt bags (``canvas.tokens.bag_condition``) with
the pipeline's own tokenizer; every bag is one 77-token CLIP pass and a
layer's passes are concatenated, then all layers are concatenated into one
sequence whose tokens remember their layer. The pooled embedding (SDXL) comes
from the global layer's first bag, as in Omost's pipeline.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..canvas.layout import Condition, conditions
from ..canvas.model import GRID, Canvas
from ..canvas.tokens import EncodedCondition, bag_condition
from .attention import RegionalState, regional_attention
from .long_prompt import _zero_negative, encode_text, extend
from .text import CHUNK, ClipStack, EncoderMismatch


@dataclass
class CanvasEmbeddings:
    """A canvas encoded for one StableDiffusion(XL) pipeline."""

    prompt_embeds: torch.Tensor
    """``(1, T, dim)``: every layer's bags, 77 tokens each, layer after layer."""
    pooled_prompt_embeds: torch.Tensor | None
    """``(1, pooled_dim)`` from the global layer's first bag (SDXL), else ``None``."""
    masks: np.ndarray
    """``(layers, 90, 90)`` boolean: the global layer is all ones."""
    token_layer: np.ndarray
    """``(T,)``: the layer of each token."""
    layers: tuple[EncodedCondition, ...]

    @property
    def tokens(self) -> int:
        return int(self.token_layer.size)

    def state(
        self, latent_size: tuple[int, int], *, cfg: bool = False, negative_tokens: int | None = None
    ) -> RegionalState:
        return RegionalState(
            masks=self.masks,
            token_layer=self.token_layer,
            latent_size=latent_size,
            cfg=cfg,
            negative_tokens=negative_tokens,
        )


def _bags(stack: ClipStack, condition: Condition) -> list[EncodedCondition]:
    """The condition's bags under each tokenizer; they must group the suffixes alike."""
    cache: dict[str, list[tuple[int, ...]]] = {}

    def ids(text: str, encoder: int) -> tuple[int, ...]:
        if text not in cache:
            cache[text] = stack.tokenize(text)  # every tokenizer at once, lengths checked
        return cache[text][encoder]

    per = [
        bag_condition(condition, encode=lambda t, e=e: ids(t, e))
        for e in range(len(stack.tokenizers))
    ]
    if any([b.suffixes for b in p.bags] != [b.suffixes for b in per[0].bags] for p in per[1:]):
        raise EncoderMismatch("the two tokenizers pack this layer into different bags")
    return per


def encode_canvas(stack: ClipStack | Any, canvas: Canvas) -> CanvasEmbeddings:
    """Encode every layer of ``canvas`` losslessly with ``stack`` (a ClipStack or a pipeline)."""
    if not isinstance(stack, ClipStack):
        stack = ClipStack.from_pipe(stack)
    layers = conditions(canvas)
    chunks: list[list[list[int]]] = []
    token_layer: list[int] = []
    encoded: list[EncodedCondition] = []
    for index, condition in enumerate(layers):
        per = _bags(stack, condition)
        encoded.append(per[0])
        for bag_index in range(len(per[0].bags)):
            chunk = [stack.chunk(p.bags[bag_index].ids, e) for e, p in enumerate(per)]
            chunks.append(chunk)
            token_layer.extend([index] * CHUNK)
    # The pooled embedding is the first chunk's: the global layer's first bag, as in Omost.
    embeds, pooled = stack.encode(chunks)
    masks = np.stack([c.mask(GRID, GRID) for c in layers])
    return CanvasEmbeddings(
        prompt_embeds=embeds,
        pooled_prompt_embeds=pooled,
        masks=masks,
        token_layer=np.asarray(token_layer, dtype=np.int64),
        layers=tuple(encoded),
    )


def _guided(pipe: Any, guidance_scale: float) -> bool:
    """Whether the pipeline will run classifier-free guidance (diffusers' own rule)."""
    return guidance_scale > 1 and getattr(pipe.unet.config, "time_cond_proj_dim", None) is None


@contextmanager
def regional_pipeline(
    pipe: Any,
    canvas: Canvas,
    *,
    negative_prompt: str = "",
    height: int | None = None,
    width: int | None = None,
    guidance_scale: float = 7.5,
    clip_skip: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Regional attention on ``pipe`` for the block; yields the keyword arguments for the call.

    ::

        with regional_pipeline(pipe, canvas, negative_prompt="blurry", height=1024,
                               width=1024, guidance_scale=5.0) as kwargs:
            image = pipe(**kwargs, num_inference_steps=25).images[0]

    The kwargs hold the embeddings (positive: the canvas; negative: the
    negative prompt, encoded past 77 tokens and padded to the same length),
    ``guidance_scale``, and ``height`` and ``width`` when the pipeline takes
    them; add anything else the pipeline takes. For img2img pipelines (Omost
    starts from its colour composition at strength 0.95-0.99), give the
    image's ``height`` and ``width`` here. The UNet's previous attention
    processors are restored when the block ends, even on error.
    """
    stack = ClipStack.from_pipe(pipe, clip_skip)
    scale = getattr(pipe, "vae_scale_factor", 8)
    height = height or pipe.unet.config.sample_size * scale
    width = width or pipe.unet.config.sample_size * scale
    if height % scale or width % scale:
        raise ValueError(f"height and width must be multiples of {scale}, got {width}x{height}")
    cfg = _guided(pipe, guidance_scale)
    positive = encode_canvas(stack, canvas)
    kwargs: dict[str, Any] = {"guidance_scale": guidance_scale}
    if {"height", "width"} <= set(inspect.signature(pipe.__call__).parameters):
        # img2img pipelines take their size from the image instead.
        kwargs.update(height=height, width=width)
    negative_tokens = None
    prompt_embeds = positive.prompt_embeds
    token_layer = positive.token_layer
    if cfg:
        zero = _zero_negative(pipe, negative_prompt)
        negative = encode_text(stack, negative_prompt, zero=zero)
        negative_tokens = negative.embeds.shape[1]
        tokens = max(prompt_embeds.shape[1], negative_tokens)
        # Padding either side is never attended: the canvas's padding has no layer,
        # the negative half attends only to its own tokens.
        prompt_embeds = extend(stack, prompt_embeds, tokens)
        negative_embeds = extend(stack, negative.embeds, tokens, zero=zero)
        token_layer = np.concatenate(
            [token_layer, np.full(prompt_embeds.shape[1] - token_layer.size, -1, np.int64)]
        )
        kwargs["negative_prompt_embeds"] = negative_embeds
        if positive.pooled_prompt_embeds is not None:
            kwargs["negative_pooled_prompt_embeds"] = negative.pooled
    kwargs["prompt_embeds"] = prompt_embeds
    if positive.pooled_prompt_embeds is not None:
        kwargs["pooled_prompt_embeds"] = positive.pooled_prompt_embeds
    state = RegionalState(
        masks=positive.masks,
        token_layer=token_layer,
        latent_size=(height // scale, width // scale),
        cfg=cfg,
        negative_tokens=negative_tokens,
    )
    with regional_attention(pipe.unet, state):
        yield kwargs
