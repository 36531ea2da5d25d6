"""LLaMA configurations for TIPO-format models, from tiny test models to TIPO-200M."""

from __future__ import annotations

from typing import Any

# Shapes of the published models (spec/TIPO.md) and of our own.
SHAPES: dict[str, dict[str, int]] = {
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 4, "intermediate_size": 128},
    "20m": {"hidden_size": 384, "num_hidden_layers": 8, "num_attention_heads": 6,
            "num_key_value_heads": 6, "intermediate_size": 1024},
    "tipo-200m": {"hidden_size": 768, "num_hidden_layers": 20, "num_attention_heads": 12,
                  "num_key_value_heads": 12, "intermediate_size": 2304},
    "tipo-500m": {"hidden_size": 1280, "num_hidden_layers": 20, "num_attention_heads": 20,
                  "num_key_value_heads": 20, "intermediate_size": 3840},
}  # fmt: skip


def llama_config(shape: str, vocab_size: int, *, context: int = 1024, **overrides: Any) -> Any:
    from transformers import LlamaConfig

    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    return LlamaConfig(
        vocab_size=vocab_size,
        max_position_embeddings=context,
        rope_theta=10_000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
        **{**SHAPES[shape], **overrides},
    )


def random_model(shape: str, vocab_size: int, *, seed: int = 0, **overrides: Any) -> Any:
    """A randomly initialised LlamaForCausalLM (tests and benchmarks)."""
    import torch
    from transformers import LlamaForCausalLM

    # fork_rng: seeding the initialisation must not disturb the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(llama_config(shape, vocab_size, **overrides)).eval()
