"""TIPO v2 weights in transformers' native ``Dots1`` model, without their code.

The publisher ships TIPO v2 as a ``kohaku`` folder (``config.json`` with an
``auto_map`` pointing at its own Python files) and as ``dots1`` GGUF files.
presample never runs a model's own code, and transformers' GGUF reader has no
``dots1``; but the architecture *is* Dots1 (Qwen3 attention with per-head
QK-norm before RoPE, a DeepSeek-V3 sigmoid router whose bias steers selection
only, a leading dense layer, one shared expert: ``spec/TIPO_V2.md`` §4). So
both formats are read into plain tensors under the publisher's names, renamed
to Dots1's, and handed to ``Dots1ForCausalLM.from_pretrained(state_dict=...)``.
``tests/engine/test_tipo_v2.py`` checks the logits against a forward pass
written from the spec's formulas alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .backend import ModelError

KOHAKU = "kohaku"
DOTS1 = "dots1"
BOS_ID, EOS_ID, PAD_ID = 64000, 64001, 64002
MIN_TRANSFORMERS = "4.53"
# llama.cpp's split for a byte-level vocabulary whose GGUF says ``pre=default``
# (llama-vocab.cpp), applied in turn: punctuation runs, then GPT-2's rule, then
# digit runs, then groups of three digits.
LLAMACPP_DEFAULT_SPLITS = (
    r"[\p{P}\$\+<=>\^~\|]+",
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)",
    r"\p{N}+",
    r"[0-9][0-9][0-9]",
)


def is_kohaku(folder: Path) -> bool:
    """A folder in the publisher's format (``model_type: kohaku``)."""
    return read_config(folder).get("model_type") == KOHAKU


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def dots1_settings(kohaku: dict[str, Any], *, where: str) -> dict[str, Any]:
    """``Dots1Config`` arguments for a kohaku config (spec §4).

    Kohaku's other router and attention options (softmax scoring, no QK-norm)
    have no Dots1 equivalent; no published TIPO model uses them, so a config
    asking for them is refused rather than run wrongly.
    """
    if kohaku.get("scoring_func", "sigmoid") != "sigmoid" or not kohaku.get("qk_norm", True):
        raise ModelError(
            f"{where}: this kohaku model uses {kohaku.get('scoring_func')!r} routing or no "
            "QK-norm; presample runs the published TIPO v2 architecture only"
        )
    try:
        hidden, heads = int(kohaku["hidden_size"]), int(kohaku["num_attention_heads"])
        return {
            "vocab_size": int(kohaku["vocab_size"]),
            "hidden_size": hidden,
            "intermediate_size": int(kohaku["intermediate_size"]),
            "moe_intermediate_size": int(kohaku["moe_intermediate_size"]),
            "num_hidden_layers": int(kohaku["num_hidden_layers"]),
            "num_attention_heads": heads,
            "num_key_value_heads": int(kohaku["num_key_value_heads"]),
            "head_dim": int(kohaku.get("head_dim", hidden // heads)),
            "n_routed_experts": int(kohaku["n_routed_experts"]),
            "num_experts_per_tok": int(kohaku["num_experts_per_tok"]),
            "n_shared_experts": int(kohaku.get("n_shared_experts", 1)),
            # One group: DeepSeek's group-limited routing is plain top-k, as Kohaku's.
            "n_group": 1,
            "topk_group": 1,
            "first_k_dense_replace": int(kohaku.get("first_k_dense", 1)),
            "norm_topk_prob": bool(kohaku.get("norm_topk_prob", True)),
            "routed_scaling_factor": float(kohaku.get("routed_scaling_factor", 1.0)),
            "rope_theta": float(kohaku.get("rope_theta", 100000.0)),
            "rms_norm_eps": float(kohaku.get("rms_norm_eps", 1e-6)),
            "hidden_act": "silu",
            "attention_bias": False,
            "sliding_window": None,
            "max_position_embeddings": int(kohaku.get("max_position_embeddings", 4096)),
            "tie_word_embeddings": bool(kohaku.get("tie_word_embeddings", False)),
            "bos_token_id": int(kohaku.get("bos_token_id", BOS_ID)),
            "eos_token_id": int(kohaku.get("eos_token_id", EOS_ID)),
            "pad_token_id": int(kohaku.get("pad_token_id", PAD_ID)),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{where}: config.json lacks or garbles {exc} (a kohaku model)") from None


def dots1_weights(kohaku: dict[str, Any], *, fused: bool) -> dict[str, Any]:
    """Kohaku tensor names -> Dots1's (spec §4): only the MoE layers differ.

    ``fused``: transformers >= 5 keeps a layer's experts as two stacked tensors
    (gate and up concatenated); 4.53-4.57 as one module per expert.
    """
    import torch

    out: dict[str, Any] = {}
    for name, tensor in kohaku.items():
        prefix, _, rest = name.partition(".mlp.")
        if not rest or rest.startswith(("gate_proj.weight", "up_proj.weight", "down_proj.weight")):
            out[name] = tensor  # attention, norms, embeddings and the dense layer
        elif rest == "expert_bias":
            out[f"{prefix}.mlp.gate.e_score_correction_bias"] = tensor
        elif rest == "gate.weight":
            out[name] = tensor
        elif rest.startswith("shared_expert."):
            out[f"{prefix}.mlp.shared_experts.{rest.removeprefix('shared_expert.')}"] = tensor
        elif rest in ("gate_proj", "up_proj", "down_proj"):
            if not fused:
                for expert, weight in enumerate(tensor):
                    out[f"{prefix}.mlp.experts.{expert}.{rest}.weight"] = weight
            elif rest == "down_proj":
                out[f"{prefix}.mlp.experts.down_proj"] = tensor
            elif rest == "gate_proj":
                up = kohaku[f"{prefix}.mlp.up_proj"]
                out[f"{prefix}.mlp.experts.gate_up_proj"] = torch.cat([tensor, up], dim=1)
        else:
            raise ModelError(f"unexpected tensor {name!r} in a kohaku model")
    return out


def load_model(folder: Path, *, gguf_file: str | None, dtype: Any, where: str) -> Any:
    """A ``Dots1ForCausalLM`` holding a kohaku folder's or a dots1 GGUF's weights."""
    import torch

    try:
        from transformers import Dots1Config, Dots1ForCausalLM
    except ImportError:
        raise ModelError(
            f"TIPO v2 models need transformers >= {MIN_TRANSFORMERS} (its Dots1 model): "
            "pip install -U 'transformers>=4.53'"
        ) from None
    if gguf_file is not None:
        kohaku_config, weights = read_dots1_gguf(folder / gguf_file)
    else:
        kohaku_config = read_config(folder)
        weights = _read_safetensors(folder, where=where)
    config = Dots1Config(**dots1_settings(kohaku_config, where=where))
    with torch.device("meta"):
        fused = any(".experts.gate_up_proj" in k for k in Dots1ForCausalLM(config).state_dict())
    # Read-only arrays (memory-mapped files) are copied: torch wants writable memory.
    tensors = {k: torch.from_numpy(v if v.flags.writeable else v.copy())
               for k, v in weights.items()}  # fmt: skip
    state = dots1_weights(tensors, fused=fused)
    try:
        model, info = Dots1ForCausalLM.from_pretrained(
            None, config=config, state_dict=state, dtype=dtype, output_loading_info=True
        )
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot load TIPO v2 weights from {where}: {exc}") from None
    # transformers fills a missing tensor with random numbers and says so in a
    # log line; a model half random must not run.
    missing = sorted({*info.get("missing_keys", ()), *info.get("unexpected_keys", ())})
    if missing:
        raise ModelError(
            f"{where}: not the published TIPO v2 layout ({len(missing)} tensors missing or "
            f"unexpected, e.g. {missing[0]})"
        )
    return model


def _read_safetensors(folder: Path, *, where: str) -> dict[str, Any]:
    from safetensors.numpy import load_file

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ModelError(f"{where}: a kohaku folder without model.safetensors")
    weights: dict[str, Any] = {}
    for file in files:
        weights |= load_file(file)
    return weights


# ---------------------------------------------------------------------- GGUF


def read_dots1_gguf(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A dots1 GGUF as (kohaku config, float32 tensors under kohaku names).

    The publisher's exporter repeats each key/value head for its query group
    (llama.cpp's dots1 wants as many K/V heads as Q heads); the repeats are
    found and dropped, so the model runs with the GQA it was trained with.
    """
    import gguf
    import numpy as np

    from .llamacpp_backend import gguf_reader

    reader = gguf_reader(path)

    def meta(key: str, default: Any = None) -> Any:
        field = reader.fields.get(f"dots1.{key}")
        return field.contents() if field is not None else default

    heads = int(meta("attention.head_count"))
    hidden = int(meta("embedding_length"))
    head_dim = int(meta("attention.key_length", hidden // heads))
    tensors: dict[str, Any] = {}
    for tensor in reader.tensors:
        shape = tuple(int(d) for d in reversed(tensor.shape))
        data = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        tensors[tensor.name] = np.asarray(data, dtype=np.float32).reshape(shape)

    layers = int(meta("block_count"))
    dense = int(meta("leading_dense_block_count", 1))
    kv_heads = _distinct_heads(tensors, layers, heads, head_dim)
    weights = {
        "model.embed_tokens.weight": tensors["token_embd.weight"],
        "model.norm.weight": tensors["output_norm.weight"],
        "lm_head.weight": tensors.get("output.weight", tensors["token_embd.weight"]),
    }
    group = heads // kv_heads
    for n in range(layers):
        p, b = f"model.layers.{n}.", f"blk.{n}."
        weights |= {
            p + "input_layernorm.weight": tensors[b + "attn_norm.weight"],
            p + "post_attention_layernorm.weight": tensors[b + "ffn_norm.weight"],
            p + "self_attn.q_proj.weight": tensors[b + "attn_q.weight"],
            p + "self_attn.o_proj.weight": tensors[b + "attn_output.weight"],
            p + "self_attn.q_norm.weight": tensors[b + "attn_q_norm.weight"],
            p + "self_attn.k_norm.weight": tensors[b + "attn_k_norm.weight"],
        }
        for short, key in (("k", "k_proj"), ("v", "v_proj")):
            full = tensors[b + f"attn_{short}.weight"].reshape(heads, head_dim, hidden)
            weights[p + f"self_attn.{key}.weight"] = full[::group].reshape(-1, hidden)
        if n < dense:
            for short in ("gate", "up", "down"):
                weights[p + f"mlp.{short}_proj.weight"] = tensors[b + f"ffn_{short}.weight"]
            continue
        weights |= {
            p + "mlp.gate.weight": tensors[b + "ffn_gate_inp.weight"],
            p + "mlp.expert_bias": tensors[b + "exp_probs_b.bias"],
        }
        for short in ("gate", "up", "down"):
            weights[p + f"mlp.{short}_proj"] = tensors[b + f"ffn_{short}_exps.weight"]
            weights[p + f"mlp.shared_expert.{short}_proj.weight"] = tensors[
                b + f"ffn_{short}_shexp.weight"
            ]

    config = {
        "model_type": KOHAKU,
        "vocab_size": int(tensors["token_embd.weight"].shape[0]),
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "intermediate_size": int(meta("feed_forward_length")),
        "moe_intermediate_size": int(meta("expert_feed_forward_length")),
        "n_routed_experts": int(meta("expert_count")),
        "num_experts_per_tok": int(meta("expert_used_count")),
        "n_shared_experts": int(meta("expert_shared_count", 1)),
        "first_k_dense": dense,
        "norm_topk_prob": bool(meta("expert_weights_norm", True)),
        "routed_scaling_factor": float(meta("expert_weights_scale", 1.0)),
        "scoring_func": "sigmoid" if int(meta("expert_gating_func", 2)) == 2 else "softmax",
        "rope_theta": float(meta("rope.freq_base", 100000.0)),
        "rms_norm_eps": float(meta("attention.layer_norm_rms_epsilon", 1e-6)),
        "max_position_embeddings": int(meta("context_length", 4096)),
    }
    return config, weights


def _distinct_heads(tensors: dict[str, Any], layers: int, heads: int, head_dim: int) -> int:
    """How many different K/V heads the file's repeated ones hold (the model's GQA)."""
    import numpy as np

    for kv in range(1, heads + 1):
        if heads % kv:
            continue
        group = heads // kv
        if all(
            np.array_equal(
                np.repeat(w.reshape(heads, head_dim, -1)[::group], group, axis=0),
                w.reshape(heads, head_dim, -1),
            )
            for n in range(layers)
            for w in (tensors[f"blk.{n}.attn_k.weight"], tensors[f"blk.{n}.attn_v.weight"])
        ):
            return kv
    return heads


def check_gguf_tokens(path: Path) -> None:
    """Refuse a dots1 GGUF that does not say which ids start and end a text.

    Without them llama.cpp falls back to ids of its own choosing, and the model
    would read an input that starts with the wrong token.
    """

    from .llamacpp_backend import gguf_reader

    reader = gguf_reader(path)
    keys = ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id")
    if any(key not in reader.fields for key in keys):
        raise ModelError(
            f"{path} has no BOS/EOS token ids (tokenizer.ggml.bos_token_id); it is not a "
            "complete TIPO v2 export: use the publisher's GGUF or the kohaku folder"
        )


def gguf_tokenizer(path: Path) -> Any:
    """The tokenizer a byte-level (``gpt2``) GGUF describes, as llama.cpp reads it.

    Written here because transformers' GGUF reader refuses the ``dots1``
    architecture before it looks at the tokenizer, and its tokenizer builders
    are internal API that moved between releases. The pieces are the file's;
    the split is llama.cpp's for ``pre=default`` (``LLAMACPP_DEFAULT_SPLITS``;
    ``spec/TIPO_V2.md`` §6: not DeepSeek's, so ids can differ from
    ``tokenizer.json`` on some tags). Tested id for id against llama.cpp.
    """
    import gguf
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
    )
    from transformers import PreTrainedTokenizerFast

    from .llamacpp_backend import gguf_reader

    reader = gguf_reader(path)

    def field(key: str) -> Any:
        item = reader.fields.get(f"tokenizer.ggml.{key}")
        return item.contents() if item is not None else None

    if field("model") != "gpt2":
        raise ModelError(f"{path}: tokenizer {field('model')!r}, not the byte-level BPE of TIPO v2")
    check_gguf_tokens(path)
    tokens: list[str] = field("tokens")
    types: list[int] = field("token_type") or [1] * len(tokens)
    bos, eos = field("bos_token_id"), field("eos_token_id")
    control = [t for t, kind in zip(tokens, types, strict=True) if kind == gguf.TokenType.CONTROL]
    control_set = set(control)
    vocab = {t: i for i, t in enumerate(tokens) if t not in control_set}
    merges = [tuple(m.split(" ", 1)) for m in field("merges") or []]
    core = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    splits = [pre_tokenizers.Split(Regex(r), behavior="isolated") for r in LLAMACPP_DEFAULT_SPLITS]
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.pre_tokenizer = pre_tokenizers.Sequence([*splits, byte_level])
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in control])
    ids = {t: i for i, t in enumerate(tokens)}
    if any(core.token_to_id(t) != ids[t] for t in control):
        raise ModelError(f"{path}: its special tokens do not follow the ordinary pieces")
    bos_token, eos_token = tokens[int(bos)], tokens[int(eos)]
    # Training samples start with exactly one BOS (spec §6); early exports said
    # add_bos_token false, which would leave it out.
    core.post_processor = processors.TemplateProcessing(
        single=f"{bos_token} $A", special_tokens=[(bos_token, int(bos))]
    )
    pad = field("padding_token_id")
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=bos_token,
        eos_token=eos_token,
        pad_token=tokens[int(pad)] if pad is not None else eos_token,
        clean_up_tokenization_spaces=False,
    )


def folder_tokenizer(folder: Path, *, where: str) -> Any:
    """A kohaku folder's ``tokenizer.json``, always starting a text with one BOS."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    if not (folder / "tokenizer.json").is_file():
        raise ModelError(
            f"{where} has no tokenizer.json: a TIPO v2 folder needs the tokenizer files "
            "published with the weights (tokenizer.json, tokenizer_config.json)"
        )
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(folder))
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else BOS_ID
    if tokenizer("x")["input_ids"][:1] != [bos]:
        # Tokenizers exported before 2026-08-05 have no BOS post-processor.
        token = tokenizer.convert_ids_to_tokens(bos)
        tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{token} $A", special_tokens=[(token, bos)]
        )
    return tokenizer
