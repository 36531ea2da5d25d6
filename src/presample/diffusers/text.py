"""A pipeline's CLIP text encoders, driven with token ids we chose ourselves.

diffusers' ``encode_prompt`` tokenises a string and cuts it at 77 tokens. To
encode past 77 tokens without cutting a thought (Omost's sub-prompt bags, the
A1111-style chunks of a long prompt) we pick the token ids ourselves and only
borrow the pipeline's encoders: SD 1.5 has one (``last_hidden_state``), SDXL
two (penultimate hidden states concatenated on the feature axis, the pooled
embedding from the second), exactly as ``encode_prompt`` reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

CHUNK = 77
"""Tokens per CLIP pass: bos, up to 75 ids, eos, padding."""


class EncoderMismatch(ValueError):
    """The pipeline's tokenizers split the same text differently."""


@dataclass(frozen=True)
class Specials:
    bos: int
    eos: int
    pad: int


@dataclass
class ClipStack:
    """One or two (tokenizer, text encoder) pairs, as a StableDiffusion(XL) pipeline holds them."""

    tokenizers: tuple[Any, ...]
    encoders: tuple[Any, ...]
    clip_skip: int | None = None
    """Layers to skip from the end, as diffusers' ``clip_skip`` (``None``: its default)."""

    def __post_init__(self) -> None:
        if not 1 <= len(self.tokenizers) == len(self.encoders) <= 2:
            raise ValueError("need one or two (tokenizer, text encoder) pairs")
        if self.clip_skip is not None and self.clip_skip < 0:
            raise ValueError(f"clip_skip must be >= 0, got {self.clip_skip}")

    @classmethod
    def from_pipe(cls, pipe: Any, clip_skip: int | None = None) -> ClipStack:
        """The text side of a ``StableDiffusionPipeline`` or ``StableDiffusionXLPipeline``."""
        pairs = [
            (getattr(pipe, t, None), getattr(pipe, e, None))
            for t, e in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2"))
        ]
        present = [(t, e) for t, e in pairs if t is not None and e is not None]
        if not present:
            raise ValueError(f"{type(pipe).__name__} has no CLIP tokenizer and text encoder")
        return cls(tuple(t for t, _ in present), tuple(e for _, e in present), clip_skip)

    @property
    def xl(self) -> bool:
        """SDXL's layout: two encoders, penultimate layers, a pooled embedding."""
        return len(self.encoders) == 2

    @property
    def device(self) -> torch.device:
        return next(self.encoders[0].parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.encoders[-1].parameters()).dtype

    def tokenize(self, text: str) -> list[tuple[int, ...]]:
        """``text``'s ids under each tokenizer, without bos/eos and without cutting."""
        ids = [
            tuple(tok(text, add_special_tokens=False, truncation=False, verbose=False).input_ids)
            for tok in self.tokenizers
        ]
        if len({len(i) for i in ids}) > 1:
            raise EncoderMismatch(
                f"the tokenizers split {text[:40]!r} into {', '.join(str(len(i)) for i in ids)} "
                "tokens; both must use the CLIP vocabulary"
            )
        return ids

    def specials(self) -> list[Specials]:
        out = []
        for tok in self.tokenizers:
            eos = tok.eos_token_id
            pad = tok.pad_token_id if tok.pad_token_id is not None else eos
            out.append(Specials(tok.bos_token_id, eos, pad))
        return out

    def chunk(self, ids: Sequence[int], encoder: int) -> list[int]:
        """bos + at most 75 ids + eos + padding to 77, with encoder ``encoder``'s specials."""
        s = self.specials()[encoder]
        out = [s.bos, *list(ids)[: CHUNK - 2], s.eos]
        return out + [s.pad] * (CHUNK - len(out))

    @torch.no_grad()
    def encode(
        self, chunks: Sequence[Sequence[Sequence[int]]]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encode 77-token chunks and concatenate them along the sequence.

        ``chunks[i][e]`` is chunk ``i``'s ids for encoder ``e``. Returns
        ``(1, 77 * len(chunks), dim)`` embeddings and, for SDXL, the pooled
        embedding of the first chunk (``(1, pooled_dim)``), else ``None``.
        """
        if not chunks:
            raise ValueError("nothing to encode")
        per_encoder: list[torch.Tensor] = []
        pooled: torch.Tensor | None = None
        for e, encoder in enumerate(self.encoders):
            ids = torch.tensor([list(c[e]) for c in chunks], dtype=torch.long, device=self.device)
            if any(len(c[e]) != CHUNK for c in chunks):
                raise ValueError("every chunk must hold exactly 77 ids")
            out = encoder(ids, output_hidden_states=True)
            if self.xl:
                # diffusers' SDXL encode_prompt: hidden_states[-(clip_skip + 2)], pooled from
                # the projection of the last encoder.
                hidden = out.hidden_states[-((self.clip_skip or 0) + 2)]
                if e == len(self.encoders) - 1:
                    first = out.text_embeds if hasattr(out, "text_embeds") else out.pooler_output
                    pooled = first[:1]
            elif self.clip_skip:
                # diffusers' SD encode_prompt: an earlier layer, through the final layer norm.
                # transformers 5 flattened CLIPTextModel (no ``text_model``); 4 nests it.
                norm = getattr(encoder, "text_model", encoder).final_layer_norm
                hidden = norm(out.hidden_states[-(self.clip_skip + 1)])
            else:
                hidden = out.last_hidden_state
            per_encoder.append(hidden.reshape(1, -1, hidden.shape[-1]))
        embeds = torch.cat(per_encoder, dim=-1)
        return embeds.to(self.dtype), None if pooled is None else pooled.to(self.dtype)
