"""Write a LLaMA model and its tokenizer as a GGUF file.

GGUF is what llama.cpp and its front ends load, and what the reference
extension downloads. We write it with the ``gguf`` package (the llama.cpp
project's own writer); the tensor names and the Q/K row permutation follow
llama.cpp's ``convert_hf_to_gguf.py`` conventions so any GGUF reader,
transformers' included, reads the file back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.backend import NO_REMOTE_CODE

GGUF_DTYPES = ("f32", "f16", "bf16", "q8_0", "q5_0")
QUANTS = {"q8_0": "Q8_0", "q5_0": "Q5_0"}
QUANT_BLOCK = 32  # values per Q8_0/Q5_0 block: rows of other lengths stay f32


def _permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp stores Q and K rows interleaved per rotary pair (HF keeps halves)."""
    rows = weight.shape[0]
    return (
        weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def _tensor_map(config: Any, layers: int) -> dict[str, tuple[str, int | None]]:
    """GGUF name -> (HF name, heads to permute by or None)."""
    names: dict[str, tuple[str, int | None]] = {
        "token_embd.weight": ("model.embed_tokens.weight", None),
        "output_norm.weight": ("model.norm.weight", None),
    }
    if not getattr(config, "tie_word_embeddings", False):
        # Tied models have no output tensor; llama.cpp then reuses token_embd.
        names["output.weight"] = ("lm_head.weight", None)
    for i in range(layers):
        hf = f"model.layers.{i}"
        names.update(
            {
                f"blk.{i}.attn_norm.weight": (f"{hf}.input_layernorm.weight", None),
                f"blk.{i}.attn_q.weight": (
                    f"{hf}.self_attn.q_proj.weight",
                    config.num_attention_heads,
                ),
                f"blk.{i}.attn_k.weight": (
                    f"{hf}.self_attn.k_proj.weight",
                    config.num_key_value_heads,
                ),
                f"blk.{i}.attn_v.weight": (f"{hf}.self_attn.v_proj.weight", None),
                f"blk.{i}.attn_output.weight": (f"{hf}.self_attn.o_proj.weight", None),
                f"blk.{i}.ffn_norm.weight": (f"{hf}.post_attention_layernorm.weight", None),
                f"blk.{i}.ffn_gate.weight": (f"{hf}.mlp.gate_proj.weight", None),
                f"blk.{i}.ffn_up.weight": (f"{hf}.mlp.up_proj.weight", None),
                f"blk.{i}.ffn_down.weight": (f"{hf}.mlp.down_proj.weight", None),
            }
        )
    return names


def export_gguf(
    model_dir: str | Path, out: str | Path, *, dtype: str = "f16", name: str | None = None
) -> Path:
    """Convert a saved transformers LLaMA folder (ours) into one GGUF file.

    ``name`` is the ``general.name`` GGUF tools show (default: the folder's name).
    """
    import gguf
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if dtype not in GGUF_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(GGUF_DTYPES)}")
    model_dir, out = Path(model_dir), Path(out)
    config = AutoConfig.from_pretrained(model_dir, **NO_REMOTE_CODE)
    if config.model_type != "llama":
        raise ValueError(f"only LLaMA models can be exported, not {config.model_type!r}")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, **NO_REMOTE_CODE)
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}

    writer = gguf.GGUFWriter(str(out), "llama")
    head_dim = config.hidden_size // config.num_attention_heads
    writer.add_name(name or model_dir.name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(getattr(config, "rope_theta", 10_000.0)))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(
        {
            "f16": gguf.LlamaFileType.MOSTLY_F16,
            "bf16": gguf.LlamaFileType.MOSTLY_BF16,
            "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
            "q5_0": gguf.LlamaFileType.MOSTLY_Q5_0,
        }.get(dtype, gguf.LlamaFileType.ALL_F32)
    )
    _add_tokenizer(writer, model_dir, config.vocab_size)

    for gguf_name, (hf_name, heads) in _tensor_map(config, config.num_hidden_layers).items():
        tensor = state[hf_name]
        if heads is not None:
            tensor = _permute(tensor, heads)
        # Norm vectors stay f32 (llama.cpp convention); matrices take the chosen type.
        tensor = np.ascontiguousarray(tensor)
        if dtype == "f16" and tensor.ndim == 2:
            writer.add_tensor(gguf_name, tensor.astype(np.float16))
        elif dtype == "bf16" and tensor.ndim == 2:
            bf16 = gguf.GGMLQuantizationType.BF16
            writer.add_tensor(gguf_name, gguf.quants.quantize(tensor, bf16), raw_dtype=bf16)
        elif dtype in QUANTS and tensor.ndim == 2 and tensor.shape[1] % QUANT_BLOCK == 0:
            kind = getattr(gguf.GGMLQuantizationType, QUANTS[dtype])
            writer.add_tensor(gguf_name, gguf.quants.quantize(tensor, kind), raw_dtype=kind)
        else:
            writer.add_tensor(gguf_name, tensor)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def _pre_tokenizer(tokenizer_json: dict[str, Any]) -> str:
    """llama.cpp's name for how the text is split before BPE.

    Our own tokenizers are plain byte-level ("gpt-2"); SmolLM2's (kept by runs
    fine-tuned from it) first splits every digit, which llama.cpp calls "smollm".
    """
    pre = tokenizer_json.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    if any(s.get("type") == "Digits" and s.get("individual_digits") for s in steps):
        return "smollm"
    return "gpt-2"


def _add_tokenizer(writer: Any, model_dir: Path, vocab_size: int) -> None:
    """The tokenizer as the model llama.cpp knows it by.

    Byte-level BPE (our own tokenizers, SmolLM2's) is llama.cpp's "gpt2";
    SentencePiece-style BPE with byte fallback (LLaMA's, the published TIPO
    models') is its "llama" model, with scores. Writing the latter as "gpt2"
    made a ``.gguf`` unreadable without the ``tokenizer.json`` beside it
    (transformers: ``BPE: Token '▁' out of vocabulary``).

    A model whose embedding has more rows than the tokenizer has pieces gets
    unused filler pieces, so llama.cpp's vocabulary matches the embedding.
    """
    data = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    config = json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    vocab: dict[str, int] = data["model"]["vocab"]
    added = {t["content"]: t["id"] for t in data.get("added_tokens", [])}
    if data["model"].get("byte_fallback"):
        _add_sentencepiece_vocab(writer, model_dir, vocab_size)
    else:
        add_byte_level_vocab(writer, data, vocab, added, vocab_size, pre=_pre_tokenizer(data))
    for setter, key in (
        (writer.add_bos_token_id, "bos_token"),
        (writer.add_eos_token_id, "eos_token"),
        (writer.add_pad_token_id, "pad_token"),
        (writer.add_unk_token_id, "unk_token"),
    ):
        token = config.get(key)
        if isinstance(token, dict):
            token = token.get("content")
        if token in added or token in vocab:
            setter(added.get(token, vocab.get(token)))
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)


def add_byte_level_vocab(
    writer: Any,
    data: dict[str, Any],
    vocab: dict[str, int],
    added: dict[str, int],
    size: int,
    *,
    pre: str,
) -> None:
    """A byte-level BPE ``tokenizer.json`` as llama.cpp's "gpt2" model; ``pre`` is
    llama.cpp's name of the pre-tokenizer."""
    size = max(max([*vocab.values(), *added.values()]) + 1, size)
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [5] * size  # unused, until a piece fills the slot
    for text, index in vocab.items():
        tokens[index] = text
        types[index] = 1  # normal
    for text, index in added.items():
        tokens[index] = text
        types[index] = 3  # control
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)


def _add_sentencepiece_vocab(writer: Any, model_dir: Path, size: int) -> None:
    """Pieces, scores and types as llama.cpp's converter reads them (gguf's ``LlamaHfVocab``)."""
    import gguf

    tokens: list[bytes] = []
    scores: list[float] = []
    types: list[int] = []
    for text, score, kind in gguf.LlamaHfVocab(model_dir).all_tokens():
        tokens.append(text)
        scores.append(score)
        types.append(int(kind))
    for i in range(len(tokens), size):
        tokens.append(f"[PAD{i}]".encode())
        scores.append(-1000.0)
        types.append(int(gguf.TokenType.UNUSED))
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
