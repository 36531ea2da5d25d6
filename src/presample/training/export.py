"""Export a training run as a model folder ``presample`` loads: ``Presampler(folder)``.

The folder holds the weights as safetensors (bf16 or fp16 to stay small), the
tokenizer, ``presample.json`` (name, layout, quality tags) and a model card
with the data it was trained on, their licences, steps, tokens and losses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..registry import CARD_FILE, FOLDER_GGUF, SAFETENSORS_FILE
from .base import BASE_PROVENANCE
from .checkpoint import latest_checkpoint, load_checkpoint, load_weights
from .curves import read_log
from .gguf_export import export_gguf
from .train import CONFIG_FILE, TOKENIZER_DIR, TrainConfig, run_model

DTYPES = ("bfloat16", "float16", "float32")

# The files of ../shared/data the data preparation reads, with their terms
# (from its README.md).
DATA_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("prompts/civitai_prompts.jsonl.gz", "real text-to-image prompts from Civitai users",
     "no licence stated; user-generated content"),
    ("tags/danbooru.csv", "Danbooru tag table (via the shipped tag database)",
     "MIT (a1111 tag-autocomplete); public Danbooru metadata"),
    ("captions/IIW-400.jsonl, CM_3600.jsonl, LocNar_Eval.jsonl",
     "ImageInWords detailed descriptions and object descriptions", "CC-BY-4.0 (Google)"),
    ("captions/dpg_bench_prompts.jsonl", "DPG-Bench dense prompts", "Apache-2.0 (ELLA)"),
    ("captions/ella_prompts_pairs.txt", "ELLA short/long prompt pairs", "Apache-2.0 (ELLA)"),
    ("captions/coco_captions_val2017.json.gz", "COCO 2017 val captions", "CC-BY-4.0"),
    ("captions/cc3m_validation.tsv.gz", "Conceptual Captions validation captions",
     "Google CC3M terms (free for any purpose)"),
)  # fmt: skip


def export_run(
    run_dir: Path,
    out_dir: Path,
    *,
    name: str = "presample-tipo-20m",
    dtype: str = "bfloat16",
    gguf: str | None = None,
    gguf_only: bool = False,
) -> Path:
    """Write the latest checkpoint of ``run_dir`` as a model folder; returns ``out_dir``.

    ``gguf`` (a ``gguf_export`` type) adds ``model.gguf``; ``gguf_only`` then
    drops the safetensors, the smallest folder to ship (transformers dequantises
    the GGUF when loading, llama.cpp runs it as is).
    """
    import torch
    from transformers import PreTrainedTokenizerFast

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if gguf_only and not gguf:
        raise ValueError("gguf_only needs a GGUF type")
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint to export")
    config = TrainConfig.from_json((run_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(run_dir / TOKENIZER_DIR))
    weights, state = load_checkpoint(checkpoint)
    model = run_model(run_dir, config, tokenizer)
    load_weights(model, weights)
    model = model.to(getattr(torch, dtype)).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    # Requests that leave the lengths out get "short": in the training prompts
    # only ~2% of records have the 36+ tags "long" asks for, and ~4% of the long
    # captions have its 4-8 sentences (92% have one or two), so a small model
    # asked for "long" loops on duplicates or retries in vain (11 attempts, 7 s).
    defaults = {"tag_length": "short", "nl_length": "short"}
    card = {"name": name, "layout": "tipo", "quality": True, "defaults": defaults}
    (out_dir / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    params = sum(p.numel() for p in model.parameters())
    weights_kind = f"safetensors, {dtype}"
    if gguf:
        export_gguf(out_dir, out_dir / FOLDER_GGUF, dtype=gguf, name=name)
        weights_kind += f"; `{FOLDER_GGUF}` {gguf}"
        if gguf_only:
            (out_dir / SAFETENSORS_FILE).unlink()
            weights_kind = f"`{FOLDER_GGUF}`, {gguf} (dequantised by transformers at load)"
    (out_dir / "README.md").write_text(
        model_card(name, config, state["progress"], read_log(run_dir), params, weights_kind,
                   run_dir),
        encoding="utf-8",
    )  # fmt: skip
    return out_dir


def model_card(
    name: str,
    config: TrainConfig,
    progress: dict[str, Any],
    log: list[dict[str, Any]],
    params: int,
    weights_kind: str,
    run_dir: Path,
) -> str:
    train = [row for row in log if "loss" in row and row["step"] <= progress["step"]]
    val = [row for row in log if "val_loss" in row and row["step"] <= progress["step"]]
    counts_path = Path(config.data_dir) / "counts.json"
    counts = json.loads(counts_path.read_text(encoding="utf-8")) if counts_path.is_file() else {}
    splits = counts.get("splits", {})
    if config.base:
        origin = f"fine-tuned from `{Path(config.base).name}` (a pretrained LLaMA)"
        shape = f"`{Path(config.base).name}`" + (
            f" cut to {config.base_layers} layers" if config.base_layers else ""
        )
        tokenizer = "the base's byte-level BPE + the 13 TIPO tokens"
    else:
        origin = "trained from scratch"
        shape = f"`{config.shape}`"
        tokenizer = f"byte-level BPE, {config.vocab_size} pieces + the 13 TIPO tokens"
    lines = [
        f"# {name}",
        "",
        f"A small LLaMA {origin} by presample to speak the TIPO layout",
        "(`spec/TIPO.md`): tag expansion and the seven caption tasks, `<|gen_meta|>`,",
        "length targets. It is presample's offline default; the published TIPO models",
        "are stronger.",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | LlamaForCausalLM {shape}, {params / 1e6:.1f}M parameters |",
        f"| weights | {weights_kind} |",
        f"| tokenizer | {tokenizer} |",
        f"| steps | {progress['step']} of {config.steps} (batch {config.batch_size} x "
        f"{config.seq_len} tokens, packed) |",
        f"| tokens seen | {progress['tokens']:,} |",
        f"| optimiser | AdamW lr {config.lr}, wd {config.weight_decay}, betas "
        f"{config.beta1}/{config.beta2}, cosine with {config.warmup} warm-up steps |",
        f"| last train loss | {train[-1]['loss']:.3f} |" if train else "| last train loss | - |",
        f"| last validation loss | {val[-1]['val_loss']:.3f} |"
        if val
        else "| last validation loss | - |",
        "",
        "## Data",
        "",
        "Built by `presample train prepare` from these files of the project's shared data;",
        "train / validation / test are split by source record (a hash of its id).",
        "",
        "| file | what | licence / terms |",
        "|---|---|---|",
        *(f"| `{file}` | {what} | {terms} |" for file, what, terms in DATA_SOURCES),
        "",
    ]
    if str(config.base) in BASE_PROVENANCE:
        what, licence = BASE_PROVENANCE[str(config.base)]
        lines += [f"Base model: {what}; licence {licence}.", ""]
    if splits:
        lines += [
            "Records: "
            + ", ".join(f"{split} {info['records']:,}" for split, info in splits.items())
            + ".",
            "",
        ]
    lines += [
        "The Civitai prompts are heavily NSFW-skewed; every training record carries an",
        "inferred `rating:` line, so ask for `general` to keep outputs safe.",
        "",
        f"Reproduce: `presample train prepare && presample train run --run-dir {run_dir}`,",
        "then `presample train export`.",
        "",
    ]
    return "\n".join(lines)
