"""Omost's regional cross-attention as a diffusers attention processor.

Every layer's tokens are concatenated into one sequence (T tokens); token
``j`` belongs to layer ``layer[j]`` whose mask covers some latent pixels.
For a cross-attention over ``h x w`` pixels (``shared/spec/OMOST.md``)::

    Attn = softmax( (Q K^T / sqrt(d)) * S - inf * (1 - M) ) V
    M[p, j] = 1 when pixel p is inside the mask of token j's layer
    S[j]    = h * w / |mask of token j's layer|

so a region's tokens are never seen outside its box and small regions get
sharper scores; the global layer covers every pixel, so no row is empty.
Masks are resized to each UNet level's ``h x w`` with nearest-exact sampling
(the integer formula of ``canvas.layout``, so non-square latents and odd
sizes land where PyTorch's ``nearest-exact`` puts them). Scaling the scores
of column ``j`` by ``S[j]`` is the same as scaling key ``j``, which lets
PyTorch's fused ``scaled_dot_product_attention`` do the work.

Self-attention is unchanged (Omost's self-attention processor is plain
attention), so only cross-attention layers get this processor. With
classifier-free guidance the unconditional half of the batch keeps plain
attention over its own tokens, as Omost encodes the negative prompt as one
unmasked condition.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..canvas.layout import resize_nearest_exact
from ..errors import InputError


class RegionalAttentionError(InputError):
    """The UNet was called with inputs the regional state does not describe."""


@dataclass
class RegionalState:
    """What the processor needs: layer masks, each token's layer, the latent size.

    ``masks`` is ``(layers, rows, cols)`` boolean on any grid (Omost's 90 x 90);
    ``token_layer[j]`` is token ``j``'s layer, or -1 for padding no pixel may
    attend to. ``cfg``: the batch is ``[unconditional, conditional]`` halves
    (diffusers' order) and only the conditional half is regional; the
    unconditional half attends plainly to its first ``negative_tokens`` tokens
    (all tokens when ``None``).
    """

    masks: np.ndarray
    token_layer: np.ndarray
    latent_size: tuple[int, int]
    """``(height, width)`` of the latent the UNet is called on (image size / 8)."""
    cfg: bool = False
    negative_tokens: int | None = None
    _cache: dict[tuple[int, int, str], tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        masks = np.asarray(self.masks, dtype=bool)
        if masks.ndim != 3 or 0 in masks.shape:
            raise ValueError(f"masks must be (layers, rows, cols), got shape {masks.shape}")
        layer = np.asarray(self.token_layer, dtype=np.int64)
        if layer.ndim != 1 or layer.size == 0:
            raise ValueError("token_layer must be a non-empty 1-D array")
        if layer.min() < -1 or layer.max() >= masks.shape[0]:
            raise ValueError(f"token_layer values must be in -1..{masks.shape[0] - 1}")
        # Resizing samples pixels, so a union covering the grid covers every resized grid.
        used = np.unique(layer[layer >= 0])
        if not masks[used].any(axis=0).all():
            raise ValueError(
                "some pixels are in no layer's mask; include a global layer covering the image"
            )
        h, w = self.latent_size
        if h < 1 or w < 1:
            raise ValueError(f"latent_size must be positive, got {self.latent_size}")
        if self.negative_tokens is not None and not 1 <= self.negative_tokens <= layer.size:
            raise ValueError(f"negative_tokens must be in 1..{layer.size}")
        self.masks, self.token_layer = masks, layer

    @property
    def tokens(self) -> int:
        return int(self.token_layer.size)

    def level_size(self, pixels: int) -> tuple[int, int]:
        """The ``(h, w)`` of the UNet level whose attention sees ``pixels`` positions.

        Each down block halves the latent with a stride-2 convolution
        (``ceil(n / 2)``); the up path interpolates back to the same sizes.
        """
        h, w = self.latent_size
        while h * w > pixels and (h > 1 or w > 1):
            h, w = (h + 1) // 2, (w + 1) // 2
        if h * w != pixels:
            raise RegionalAttentionError(
                f"an attention layer sees {pixels} positions, which is no UNet level of a "
                f"{self.latent_size[0]}x{self.latent_size[1]} latent; pass the latent size "
                "of the call (image size / vae scale factor)"
            )
        return h, w

    def mask_and_scale(
        self, h: int, w: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``M`` as ``(h*w, T)`` bool and ``S`` as ``(T,)`` float for an ``h x w`` level."""
        key = (h, w, str(device))
        if key not in self._cache:
            # (rows, cols, layers) so the 2-D resize moves every layer at once.
            resized = resize_nearest_exact(self.masks.transpose(1, 2, 0), w, h)
            layers = resized.reshape(h * w, -1)  # (pixels, layers)
            area = np.maximum(layers.sum(axis=0), 1)  # an empty mask is never attended anyway
            pad = self.token_layer < 0
            index = np.where(pad, 0, self.token_layer)
            allowed = layers[:, index] & ~pad[None, :]
            scale = np.where(pad, 1.0, (h * w) / area[index])
            self._cache[key] = (
                torch.from_numpy(np.ascontiguousarray(allowed)).to(device),
                torch.from_numpy(scale.astype(np.float32)).to(device),
            )
        return self._cache[key]


class RegionalAttnProcessor:
    """Cross-attention with Omost's regional score formula (see the module docstring)."""

    def __init__(self, state: RegionalState) -> None:
        self.state = state

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> torch.Tensor:
        state = self.state
        if encoder_hidden_states is None:
            raise RegionalAttentionError("the regional processor serves cross-attention only")
        if attention_mask is not None:
            raise RegionalAttentionError(
                "regional attention does not combine with an encoder attention mask"
            )
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
            h, w = height, width
        else:
            h, w = state.level_size(hidden_states.shape[1])
        batch, tokens, _ = encoder_hidden_states.shape
        if tokens != state.tokens:
            raise RegionalAttentionError(
                f"the prompt embeddings hold {tokens} tokens but the regional state "
                f"describes {state.tokens}; encode the canvas and the negative prompt together"
            )
        if state.cfg and batch % 2:
            raise RegionalAttentionError(f"a guided batch must have an even size, got {batch}")

        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        head_dim = key.shape[-1] // attn.heads

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(x.shape[0], -1, attn.heads, head_dim).transpose(1, 2)

        query, key, value = heads(query), heads(key), heads(value)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        allowed, scale = state.mask_and_scale(h, w, query.device)
        split = batch // 2 if state.cfg else 0
        outputs = []
        if split:
            # The unconditional half: plain attention over the negative prompt's own tokens.
            valid = torch.zeros(tokens, dtype=torch.bool, device=query.device)
            valid[: state.negative_tokens or tokens] = True
            outputs.append(
                F.scaled_dot_product_attention(
                    query[:split],
                    key[:split],
                    value[:split],
                    attn_mask=valid[None, None, None, :],
                    scale=attn.scale,
                )
            )
        scaled_key = key[split:] * scale.to(key.dtype)[None, None, :, None]
        outputs.append(
            F.scaled_dot_product_attention(
                query[split:],
                scaled_key,
                value[split:],
                attn_mask=allowed[None, None, :, :],
                scale=attn.scale,
            )
        )
        hidden_states = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
        hidden_states = hidden_states.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim)
        hidden_states = attn.to_out[0](hidden_states.to(query.dtype))
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def cross_attention_names(unet: Any) -> list[str]:
    """The processor names of the UNet's cross-attention layers (``...attn2.processor``)."""
    names = []
    for name in unet.attn_processors:
        module = unet.get_submodule(name.removesuffix(".processor"))
        if getattr(module, "is_cross_attention", False):
            names.append(name)
    return names


def install(unet: Any, state: RegionalState) -> dict[str, Any]:
    """Put the regional processor on every cross-attention layer; return the originals.

    Self-attention layers keep their processors. Give the returned dict to
    ``unet.set_attn_processor`` (or use ``regional_attention``) to restore.
    """
    originals = dict(unet.attn_processors)
    cross = set(cross_attention_names(unet))
    if not cross:
        raise ValueError(f"{type(unet).__name__} has no cross-attention layers")
    processor = RegionalAttnProcessor(state)
    # set_attn_processor pops entries from the dict it is given: hand it a copy.
    unet.set_attn_processor(
        {name: processor if name in cross else proc for name, proc in originals.items()}
    )
    return originals


@contextmanager
def regional_attention(unet: Any, state: RegionalState) -> Iterator[RegionalState]:
    """Regional cross-attention for the ``with`` block; the previous processors come back after."""
    originals = install(unet, state)
    try:
        yield state
    finally:
        unet.set_attn_processor(dict(originals))
