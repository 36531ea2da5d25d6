"""Tiny random StableDiffusion / SDXL pipelines built in the test: no downloads.

The CLIP tokenizer is built from a vocabulary written here: every byte
character (and its end-of-word form) plus a few whole words, so any text
tokenises and common words take one token, as with the real vocabulary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WORDS = ("a", "cat", "dog", "the", "on", "sofa", "sky", "red", "blue", "girl", "1girl", ",", ".")
MERGES = [("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>"), ("t", "h"), ("th", "e</w>")]


def _byte_chars() -> list[str]:
    # GPT-2 / CLIP's reversible byte-to-unicode table.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_clip_tokenizer(folder: Path) -> Path:
    chars = _byte_chars()
    vocab: list[str] = chars + [c + "</w>" for c in chars]
    for a, b in MERGES:
        if a + b not in vocab:
            vocab.append(a + b)
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in MERGES) + "\n"
    )
    return folder


def clip_tokenizer(folder: Path, pad: str = "<|endoftext|>") -> Any:
    from transformers import CLIPTokenizer

    write_clip_tokenizer(folder)
    return CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token=pad, model_max_length=77
    )


def _text_config(vocab: int, hidden: int, projection: int) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        projection_dim=projection,
        bos_token_id=vocab - 2,
        eos_token_id=vocab - 1,
        pad_token_id=vocab - 1,
    )


def _text_encoder(cls: Any, config: Any) -> Any:
    """A random CLIP text model whose outputs have a non-zero mean, as trained ones do
    (a fresh final layer norm would centre every token on exactly 0)."""
    import torch

    model = cls(config).eval()
    with torch.no_grad():
        getattr(model, "text_model", model).final_layer_norm.bias.normal_(0.3, 0.5)
    return model


def _vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 8),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=32,
    )


def sd15_unet(cross_dim: int = 16) -> Any:
    """An SD 1.5-shaped UNet: cross-attention at three levels, a mid block."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16, 16),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_dim,
        attention_head_dim=4,
        norm_num_groups=4,
    )


def sdxl_unet(cross_dim: int = 32, pooled: int = 8) -> Any:
    """An SDXL-shaped UNet: text_time embeddings, linear projections, deeper transformers."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cross_dim,
        attention_head_dim=(2, 4, 4),
        transformer_layers_per_block=(1, 1, 2),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=4,
        projection_class_embeddings_input_dim=pooled + 6 * 4,
        norm_num_groups=4,
    )


def sd15_pipe(folder: Path) -> Any:
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    tokenizer = clip_tokenizer(folder / "tok")
    encoder = _text_encoder(CLIPTextModel, _text_config(len(tokenizer), 16, 16))
    return StableDiffusionPipeline(
        vae=_vae(),
        text_encoder=encoder,
        tokenizer=tokenizer,
        unet=sd15_unet(16),
        scheduler=DDIMScheduler(steps_offset=1, clip_sample=False),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def sdxl_pipe(folder: Path) -> Any:
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    tok1 = clip_tokenizer(folder / "tok1")
    tok2 = clip_tokenizer(folder / "tok2", pad="!")
    enc1 = _text_encoder(CLIPTextModel, _text_config(len(tok1), 16, 8))
    enc2 = _text_encoder(CLIPTextModelWithProjection, _text_config(len(tok2), 16, 8))
    return StableDiffusionXLPipeline(
        vae=_vae(),
        text_encoder=enc1,
        text_encoder_2=enc2,
        tokenizer=tok1,
        tokenizer_2=tok2,
        unet=sdxl_unet(32, 8),
        scheduler=EulerDiscreteScheduler(),
        force_zeros_for_empty_prompt=True,
    )
