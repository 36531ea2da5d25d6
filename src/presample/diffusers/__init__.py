"""diffusers helpers: long prompts past 77 tokens, and Omost canvases as regional attention.

Needs ``diffusers`` and PyTorch (the ``diffusers`` extra: ``pip install -e
'.[diffusers]'`` in the repository); nothing here is imported by ``import presample``. ::

    from presample.diffusers import encode_long_prompt, presample_and_encode, regional_pipeline

    kwargs = encode_long_prompt(pipe, long_prompt, negative="lowres")   # SD 1.5 or SDXL
    image = pipe(**kwargs).images[0]

    with regional_pipeline(pipe, canvas, negative_prompt="lowres") as kwargs:
        image = pipe(**kwargs, num_inference_steps=25).images[0]

Lower level: ``ClipStack`` (a pipeline's tokenizers and text encoders driven
with our own token ids), ``encode_canvas`` (a canvas as embeddings, masks and
each token's layer), ``RegionalAttnProcessor`` / ``regional_attention`` (the
processor on a UNet's cross-attention layers for a ``with`` block).
"""

from __future__ import annotations

from .attention import (
    RegionalAttentionError,
    RegionalAttnProcessor,
    RegionalState,
    cross_attention_names,
    install,
    regional_attention,
)
from .long_prompt import (
    PromptChunks,
    TextEmbeddings,
    encode_long_prompt,
    encode_text,
    presample_and_encode,
    prompt_chunks,
)
from .regional import CanvasEmbeddings, encode_canvas, regional_pipeline
from .text import ClipStack, EncoderMismatch

__all__ = [
    "CanvasEmbeddings",
    "ClipStack",
    "EncoderMismatch",
    "PromptChunks",
    "RegionalAttentionError",
    "RegionalAttnProcessor",
    "RegionalState",
    "TextEmbeddings",
    "cross_attention_names",
    "encode_canvas",
    "encode_long_prompt",
    "encode_text",
    "install",
    "presample_and_encode",
    "prompt_chunks",
    "regional_attention",
    "regional_pipeline",
]
