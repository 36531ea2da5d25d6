"""Options shared by every command that runs a model."""

from __future__ import annotations

import argparse


def add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--model",
        default=None,
        help="'default' (shipped), a folder, a .gguf file, or a Hugging Face id "
        "such as KBlueLeaf/TIPO-200M-ft2 (default: default)",
    )
    g.add_argument(
        "--models-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="folder with downloaded GGUF files, e.g. ComfyUI/models/kgen (repeatable)",
    )
    g.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "onnx", "transformers", "llama.cpp"],
        help="inference engine: onnx (ONNX Runtime, int8, CPU; the model is converted once "
        "and cached; needs presample[onnx]), transformers (PyTorch; CPU/CUDA/MPS, batched) or "
        "llama.cpp (GGUF files; needs presample[llamacpp], which compiles); auto is onnx on "
        "the CPU for LLaMA-family models when installed, else transformers (default: auto)",
    )
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps (default: auto)")
    g.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "int8", "float32", "bfloat16", "float16"],
        help="weights precision (default: int8 on onnx; on transformers batch-invariant "
        "bfloat16 on CPUs with bf16 support, else float32; float16 on GPU)",
    )
    s = p.add_argument_group("sampling (defaults: the model family's usual settings)")
    s.add_argument("--temperature", type=float, help="0 = greedy")
    s.add_argument("--top-p", type=float)
    s.add_argument("--top-k", type=int, help="0 = off")
    s.add_argument("--min-p", type=float, help="0 = off")
    s.add_argument("--repetition-penalty", type=float, help="1 = off")
    s.add_argument("--max-new-tokens", type=int)


def sampling_overrides(args: argparse.Namespace) -> dict[str, float | int]:
    names = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_new_tokens")
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def load_settings(args: argparse.Namespace):  # -> LoadSettings (imported lazily)
    """How to load the model the options name."""
    from pathlib import Path

    from ..presampler import LoadSettings

    return LoadSettings(
        model=args.model,
        backend=args.backend,
        device=args.device,
        dtype=args.dtype,
        models_dirs=tuple(Path(d) for d in args.models_dir),
        sampling=sampling_overrides(args),
    )


def open_presampler(args: argparse.Namespace):  # -> Presampler (imported lazily)
    """Load the model the options name, turning failures into one-line errors."""
    return load_settings(args).open()
