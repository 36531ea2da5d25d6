"""Random TIPO v2 models in both published formats, for tests and benchmarks.

The published weights (``KBlueLeaf/TIPO-v2.1-1B-A200M``) cannot be fetched
here, so what loads them is tested on models of the same architecture and
file layout with random weights (``spec/TIPO_V2.md`` §2, §3, §5, §6):

- a ``kohaku`` folder: ``config.json`` as the publisher's exporter writes it
  (with its ``auto_map``, which presample must never run), ``model.safetensors``
  with the publisher's key names and stacked experts, and a 65,536-id
  byte-level BPE ``tokenizer.json`` whose special tokens sit at the published
  ids (``<|bos|>`` 64000 ... ``<|gen_meta|>`` 64016);
- a ``dots1`` GGUF of the same weights as the publisher's exporter writes it
  (K/V heads repeated to the query heads, gpt2 tokenizer with ``pre=default``).

The architecture and file formats are the publisher's; this code is ours.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..tipo import SPECIAL_TOKENS

VOCAB = 65_536
BPE_VOCAB = 64_000
"""Ids below this are byte-level BPE pieces; the rest are added special tokens."""
BOS, EOS, PAD, UNK = "<|bos|>", "<|eos|>", "<|pad|>", "<|unk|>"
CHATML = ("<|im_start|>", "<|im_end|>", "<|think|>", "<|/think|>",
          "<|tool_call|>", "<|/tool_call|>", "<|tool_result|>", "<|/tool_result|>")  # fmt: skip
ADDED_TOKENS: tuple[str, ...] = (
    BOS, EOS, PAD, UNK, *SPECIAL_TOKENS, *CHATML,
    *(f"<|reserved_{i}|>" for i in range(4 + len(SPECIAL_TOKENS) + len(CHATML), VOCAB - BPE_VOCAB)),
)  # fmt: skip
# DeepSeek-V3's pre-tokenizer as llama.cpp writes it ("deepseek3-llm"): digits in
# runs of up to three, CJK runs, one punctuation mark glued to the letters after it.
DEEPSEEK_SPLITS = (
    r"\p{N}{1,3}",
    r"[一-龥぀-ゟ゠-ヿ]+",
    r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"
    r"| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
)


@dataclass(frozen=True, slots=True)
class KohakuShape:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    moe_intermediate_size: int
    n_routed_experts: int
    num_experts_per_tok: int
    n_shared_experts: int = 1
    first_k_dense: int = 1


SHAPES = {
    # The published model (spec §2): 990,785,216 parameters.
    "full": KohakuShape(768, 16, 12, 2, 64, 2048, 384, 64, 8),
    # Every structural feature (dense layer 0, GQA, shared expert, top-k < experts)
    # at a size that loads in a second.
    "tiny": KohakuShape(64, 3, 4, 2, 16, 96, 32, 8, 3),
}


def kohaku_config(shape: KohakuShape) -> dict[str, Any]:
    """``config.json`` as the publisher's ``to_hf.py`` writes it (spec §3)."""
    return {
        "architectures": ["KohakuForCausalLM"],
        "model_type": "kohaku",
        "auto_map": {
            "AutoConfig": "configuration_kohaku.KohakuConfig",
            "AutoModel": "modeling_kohaku.KohakuModel",
            "AutoModelForCausalLM": "modeling_kohaku.KohakuForCausalLM",
        },
        "vocab_size": VOCAB,
        **asdict(shape),
        "norm_topk_prob": True,
        "routed_scaling_factor": 1.0,
        "scoring_func": "sigmoid",
        "max_position_embeddings": 4096,
        "rope_theta": 100000.0,
        "rms_norm_eps": 1e-06,
        "qk_norm": True,
        "tie_word_embeddings": False,
        "dtype": "float16",
    }


def random_kohaku_weights(shape: KohakuShape, *, seed: int = 0) -> dict[str, np.ndarray]:
    """float32 weights under the publisher's key names (spec §3), stacked experts."""
    rng = np.random.default_rng(seed)
    h, hd = shape.hidden_size, shape.head_dim
    q, kv = shape.num_attention_heads * hd, shape.num_key_value_heads * hd
    e, i, ff = shape.n_routed_experts, shape.moe_intermediate_size, shape.intermediate_size
    shared = i * shape.n_shared_experts

    def normal(*dims: int, std: float = 0.05) -> np.ndarray:
        return rng.standard_normal(dims, dtype=np.float32) * np.float32(std)

    def norm(size: int) -> np.ndarray:
        return (1.0 + normal(size, std=0.1)).astype(np.float32)

    weights = {
        "model.embed_tokens.weight": normal(VOCAB, h, std=0.5),
        "lm_head.weight": normal(VOCAB, h),
        "model.norm.weight": norm(h),
    }
    for n in range(shape.num_hidden_layers):
        p = f"model.layers.{n}."
        weights |= {
            p + "input_layernorm.weight": norm(h),
            p + "post_attention_layernorm.weight": norm(h),
            p + "self_attn.q_proj.weight": normal(q, h),
            p + "self_attn.k_proj.weight": normal(kv, h),
            p + "self_attn.v_proj.weight": normal(kv, h),
            p + "self_attn.o_proj.weight": normal(h, q),
            p + "self_attn.q_norm.weight": norm(hd),
            p + "self_attn.k_norm.weight": norm(hd),
        }
        if n < shape.first_k_dense:
            weights |= {
                p + "mlp.gate_proj.weight": normal(ff, h),
                p + "mlp.up_proj.weight": normal(ff, h),
                p + "mlp.down_proj.weight": normal(h, ff),
            }
            continue
        weights |= {
            p + "mlp.gate.weight": normal(e, h, std=0.5),
            # Large enough to change which experts are picked: the bias steers
            # selection only, and a test must see a wrong use of it.
            p + "mlp.expert_bias": normal(e, std=0.3),
            p + "mlp.gate_proj": normal(e, i, h),
            p + "mlp.up_proj": normal(e, i, h),
            p + "mlp.down_proj": normal(e, h, i),
            p + "mlp.shared_expert.gate_proj.weight": normal(shared, h),
            p + "mlp.shared_expert.up_proj.weight": normal(shared, h),
            p + "mlp.shared_expert.down_proj.weight": normal(h, shared),
        }
    return weights


def v2_tokenizer(texts: Iterable[str], *, bos_template: bool = True) -> Any:
    """A 65,536-id tokenizer with the published special-token ids (spec §6).

    Byte-level BPE trained on ``texts`` with DeepSeek's pre-tokenizer, padded
    with unreachable pieces up to id 63,999, then the 1,536 added tokens.
    ``bos_template=False`` leaves out the BOS post-processor, as tokenizers
    exported before 2026-08-05 did.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    splits = [pre_tokenizers.Split(Regex(r), behavior="isolated") for r in DEEPSEEK_SPLITS]
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    trained = Tokenizer(models.BPE())
    trained.pre_tokenizer = pre_tokenizers.Sequence([*splits, byte_level])
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    trained.train_from_iterator(texts, trainer=trainer)
    data = json.loads(trained.to_str())
    vocab: dict[str, int] = data["model"]["vocab"]
    for index in range(len(vocab), BPE_VOCAB):
        vocab[f"<fill_{index}>"] = index  # no merge ever builds these
    data["model"]["vocab"] = vocab
    core = Tokenizer.from_str(json.dumps(data))
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(list(ADDED_TOKENS))
    if core.token_to_id(BOS) != BPE_VOCAB or core.get_vocab_size() != VOCAB:
        raise AssertionError("special tokens did not land at the published ids")
    if bos_template:
        core.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, BPE_VOCAB)]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=131072,
        clean_up_tokenization_spaces=False,
    )


def write_kohaku(
    folder: Path,
    texts: Iterable[str],
    *,
    shape: str = "tiny",
    seed: int = 0,
    bos_template: bool = True,
) -> Path:
    """A random ``kohaku`` model folder in the published layout (fp16 weights)."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    chosen = SHAPES[shape]
    weights = random_kohaku_weights(chosen, seed=seed)
    stored = {k: v.astype(np.float16) for k, v in weights.items()}
    save_file(stored, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(kohaku_config(chosen), indent=2) + "\n")
    v2_tokenizer(texts, bos_template=bos_template).save_pretrained(folder)
    return folder


def export_dots1_gguf(folder: Path, out: Path, *, dtype: str = "f16") -> Path:
    """The kohaku folder as the publisher's ``to_gguf.py`` writes it (spec §5).

    ``dtype`` is ``f32``, ``f16`` or ``q8_0`` for the matrices; 1-D tensors
    stay f32 as llama.cpp expects.
    """
    import gguf
    from safetensors.numpy import load_file

    from .gguf_export import add_byte_level_vocab

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    weights = {k: v.astype(np.float32) for k, v in load_file(folder / "model.safetensors").items()}
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = config["head_dim"]
    writer = gguf.GGUFWriter(str(out), "dots1")
    writer.add_name(folder.name)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    # llama.cpp's dots1 builds K/V with as many heads as Q: the publisher's
    # exporter repeats each KV head for its query group (exact GQA).
    writer.add_head_count_kv(heads)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_freq_base(float(config["rope_theta"]))
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(float(config["rms_norm_eps"]))
    writer.add_expert_count(config["n_routed_experts"])
    writer.add_expert_used_count(config["num_experts_per_tok"])
    writer.add_expert_shared_count(config["n_shared_experts"])
    writer.add_leading_dense_block_count(config["first_k_dense"])
    writer.add_expert_feed_forward_length(config["moe_intermediate_size"])
    writer.add_expert_weights_norm(bool(config["norm_topk_prob"]))
    writer.add_expert_weights_scale(float(config["routed_scaling_factor"]))
    writer.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID)
    writer.add_vocab_size(config["vocab_size"])
    writer.add_file_type(
        {"f16": gguf.LlamaFileType.MOSTLY_F16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}.get(
            dtype, gguf.LlamaFileType.ALL_F32
        )
    )
    tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    added = {t["content"]: t["id"] for t in tokenizer["added_tokens"]}
    add_byte_level_vocab(writer, tokenizer, tokenizer["model"]["vocab"], added, VOCAB,
                         pre="default")  # fmt: skip
    writer.add_bos_token_id(added[BOS])
    writer.add_eos_token_id(added[EOS])
    writer.add_pad_token_id(added[PAD])
    writer.add_unk_token_id(added[UNK])
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)

    def add(name: str, tensor: np.ndarray) -> None:
        tensor = np.ascontiguousarray(tensor, dtype=np.float32)
        if tensor.ndim == 1 or dtype == "f32":
            writer.add_tensor(name, tensor)
        elif dtype == "f16":
            writer.add_tensor(name, tensor.astype(np.float16))
        else:
            kind = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(name, gguf.quants.quantize(tensor, kind), raw_dtype=kind)

    group = heads // kv_heads
    add("token_embd.weight", weights["model.embed_tokens.weight"])
    add("output_norm.weight", weights["model.norm.weight"])
    add("output.weight", weights["lm_head.weight"])
    for n in range(config["num_hidden_layers"]):
        p, b = f"model.layers.{n}.", f"blk.{n}."
        add(b + "attn_norm.weight", weights[p + "input_layernorm.weight"])
        add(b + "ffn_norm.weight", weights[p + "post_attention_layernorm.weight"])
        add(b + "attn_q.weight", weights[p + "self_attn.q_proj.weight"])
        for short, key in (("k", "k_proj"), ("v", "v_proj")):
            kv = weights[p + f"self_attn.{key}.weight"].reshape(kv_heads, head_dim, -1)
            repeated = np.repeat(kv, group, axis=0).reshape(heads * head_dim, -1)
            add(b + f"attn_{short}.weight", repeated)
        add(b + "attn_output.weight", weights[p + "self_attn.o_proj.weight"])
        add(b + "attn_q_norm.weight", weights[p + "self_attn.q_norm.weight"])
        add(b + "attn_k_norm.weight", weights[p + "self_attn.k_norm.weight"])
        if n < config["first_k_dense"]:
            for short in ("gate", "up", "down"):
                add(b + f"ffn_{short}.weight", weights[p + f"mlp.{short}_proj.weight"])
            continue
        add(b + "ffn_gate_inp.weight", weights[p + "mlp.gate.weight"])
        add(b + "exp_probs_b.bias", weights[p + "mlp.expert_bias"])
        for short in ("gate", "up", "down"):
            add(b + f"ffn_{short}_exps.weight", weights[p + f"mlp.{short}_proj"])
            shared = weights[p + f"mlp.shared_expert.{short}_proj.weight"]
            add(b + f"ffn_{short}_shexp.weight", shared)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
