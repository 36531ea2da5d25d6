"""Turning a LLaMA-family model into the ONNX model the ONNX Runtime engine runs.

The conversion is ONNX Runtime GenAI's model builder (``onnxruntime-genai``),
run once per model file and kept in the user's cache folder: it writes the
graph with ONNX Runtime's fused CPU operators (grouped-query attention,
``MatMulNBits`` int8 weights with int8 activations) from a transformers
folder. We only prepare that folder: our GGUF-only folders and ``.gguf``
files are read by transformers (dequantised in memory) and written as a plain
float32 folder the builder reads; nothing is kept but the ONNX model.

The builder is run as a command (``python -m onnxruntime_genai.models.builder``),
its documented interface, in a child process: its Python functions change
between releases and it holds the whole float32 model in memory while it
works, which is freed when the child exits.

The folder's name is a hash of where the weights come from (path, inode, size,
modification and change times of the file or folder), the
precision and the versions of the builder and of this conversion, so a
replaced file never meets a stale copy. ``PRESAMPLE_CACHE_DIR`` moves the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import install_hint
from . import gguf_cache
from .backend import NO_REMOTE_CODE, ModelError, load_error

# Bumped when what we hand the builder changes, so older conversions are not reused.
CONVERSION_VERSION = "2"
PRECISIONS = ("int8", "fp32")
DEFAULT_PRECISION = "int8"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
SOURCE_FILE = gguf_cache.SOURCE  # also what gguf_cache.prune reads
# Architectures the builder writes for us and our decode loop drives (its
# attention keeps one key/value cache per layer, named past_key_values.N.*).
SUPPORTED_MODEL_TYPES = ("llama",)


def available() -> bool:
    """Whether ONNX Runtime and its model builder are installed (``presample[onnx]``)."""
    try:
        import onnxruntime  # noqa: F401
        import onnxruntime_genai  # noqa: F401
    except ImportError:
        return False
    return True


def cache_folder(identity: dict[str, str], precision: str) -> Path | None:
    """Where the ONNX copy of this model lives (it may not exist yet); ``None``
    when there is no cache folder (``PRESAMPLE_GGUF_CACHE=0`` turns caching off,
    which for this engine means converting into a temporary folder each run)."""
    root = gguf_cache.cache_root()
    if root is None:
        return None
    try:
        import onnxruntime_genai

        builder = onnxruntime_genai.__version__
    except (ImportError, AttributeError):
        builder = "?"
    key = json.dumps(
        {**identity, "precision": precision, "builder": builder, "version": CONVERSION_VERSION},
        sort_keys=True,
    )
    return root / "onnx" / hashlib.sha256(key.encode()).hexdigest()[:32]


def ready(folder: Path | None) -> bool:
    return folder is not None and all(
        (folder / f).is_file() for f in (MODEL_FILE, TOKENIZER_FILE, SOURCE_FILE)
    )


def file_identity(path: Path) -> dict[str, str]:
    """Who a local file or folder is, without reading its contents (see module doc)."""
    target = path
    if path.is_dir():
        weights = sorted(
            [*path.glob("*.safetensors"), *path.glob("*.gguf"), *path.glob("*.bin")]
        )
        target = weights[0] if weights else path / "config.json"
    stat = target.stat()
    return {
        "path": str(target.resolve()),
        "inode": str(stat.st_ino),
        "size": str(stat.st_size),
        "mtime": str(stat.st_mtime_ns),
        "ctime": str(stat.st_ctime_ns),
    }


def convert(
    source: str | Path,
    *,
    gguf_file: str | None = None,
    identity: dict[str, str],
    precision: str = DEFAULT_PRECISION,
    announce: Any = None,
) -> Path:
    """The ONNX folder for a local model, converting it the first time.

    ``source`` is a transformers folder or a folder holding ``gguf_file``;
    ``announce`` (a callable taking one line) hears that a conversion
    starts, since it takes a while (about 20 s for the shipped model on 2 cores).
    """
    if precision not in PRECISIONS:
        raise ModelError(f"unknown ONNX precision {precision!r}; use {', '.join(PRECISIONS)}")
    if not available():
        raise ModelError(
            "the ONNX Runtime engine needs onnxruntime and onnxruntime-genai: "
            f"{install_hint('onnx')}"
        )
    folder = cache_folder(identity, precision)
    if ready(folder):
        return folder  # type: ignore[return-value]
    if announce is not None:
        announce(
            f"preparing {identity['path']} for ONNX Runtime "
            "(once; it is kept in the cache folder) ..."
        )
    parent = folder.parent if folder is not None else Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".partial-", dir=parent))
    try:
        hf = work / "hf"
        _write_float32_folder(source, hf, gguf_file=gguf_file)
        out = work / "onnx"
        _run_builder(hf, out, work / "builder-cache", precision)
        tokenizer = hf / TOKENIZER_FILE
        if not tokenizer.is_file():
            raise ModelError(f"{source}: its tokenizer has no {TOKENIZER_FILE}; cannot run on ONNX")
        shutil.copyfile(tokenizer, out / TOKENIZER_FILE)
        (out / SOURCE_FILE).write_text(
            json.dumps({**identity, "precision": precision, "model": _card(hf)}, indent=2),
            encoding="utf-8",
        )
        if folder is None:  # no cache: the caller reads it from the temporary folder
            final = Path(tempfile.mkdtemp(prefix="presample-onnx-"))
            shutil.rmtree(final)
            os.replace(out, final)
            return final
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        os.replace(out, folder)
        # One copy per file and precision: a replaced model file's old conversion goes.
        gguf_cache.prune(parent, {"path": identity["path"], "precision": precision}, keep=folder)
        return folder
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _card(hf: Path) -> dict[str, Any]:
    """What the ONNX decode loop needs to know about the model."""
    config = json.loads((hf / "config.json").read_text(encoding="utf-8"))
    tokenizer_config: dict[str, Any] = {}
    if (hf / "tokenizer_config.json").is_file():
        tokenizer_config = json.loads((hf / "tokenizer_config.json").read_text(encoding="utf-8"))
    return {
        "layers": int(config["num_hidden_layers"]),
        "kv_heads": int(config.get("num_key_value_heads") or config["num_attention_heads"]),
        "head_size": int(
            config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
        ),
        "context_length": int(config.get("max_position_embeddings", 2048)),
        "eos_token_id": _first_id(config.get("eos_token_id")),
        "bos_token_id": _first_id(config.get("bos_token_id")),
        "eos_token": _token_text(tokenizer_config.get("eos_token")),
        "bos_token": _token_text(tokenizer_config.get("bos_token")),
    }


def _first_id(value: Any) -> int | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return int(value) if isinstance(value, int) else None


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _write_float32_folder(source: str | Path, out: Path, *, gguf_file: str | None) -> None:
    """The model as a float32 transformers folder with its tokenizer.

    Loaded and written by us rather than handed to the builder as is: the
    builder reads only float16/float32 GGUF files, and transformers refuses to
    ``save_pretrained`` a model it read from GGUF (``gguf_cache.store``'s way).
    """
    try:
        import torch
        from safetensors.torch import save_model
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ModelError(
            f"preparing a model for ONNX Runtime needs PyTorch and transformers: "
            f"{install_hint('onnx')} ({exc})"
        ) from None
    kwargs: dict[str, Any] = {"local_files_only": True, **NO_REMOTE_CODE}
    if gguf_file is not None:
        kwargs["gguf_file"] = gguf_file
    # Our GGUF-only folders keep the exact tokenizer beside model.gguf (see TorchBackend.load).
    folder_tokenizer = gguf_file is not None and (Path(source) / TOKENIZER_FILE).is_file()
    tokenizer_kwargs = {"local_files_only": True, **NO_REMOTE_CODE} if folder_tokenizer else kwargs
    where = f"{source}/{gguf_file}" if gguf_file else str(source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source), **tokenizer_kwargs)
        model = AutoModelForCausalLM.from_pretrained(str(source), dtype=torch.float32, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise load_error(where, exc) from exc
    model_type = getattr(model.config, "model_type", "")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelError(
            f"the ONNX Runtime engine runs {', '.join(SUPPORTED_MODEL_TYPES)} models; "
            f"{where} is {model_type!r} (use --backend transformers)"
        )
    out.mkdir(parents=True)
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config["architectures"] = [type(model).__name__]
    config["dtype"] = config["torch_dtype"] = "float32"
    save_model(model, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    tokenizer.save_pretrained(str(out))
    del model


def _run_builder(hf: Path, out: Path, cache: Path, precision: str) -> None:
    command = [
        sys.executable, "-m", "onnxruntime_genai.models.builder",
        "-i", str(hf), "-o", str(out), "-p", precision, "-e", "cpu", "-c", str(cache),
    ]  # fmt: skip
    # prune_lm_head: the vocabulary projection only for a pass's last position.
    # Reading a prompt used to project every position (a fifth of a prefill's work
    # here) for logits nobody reads; the decode loop takes the last position anyway.
    options = ["prune_lm_head=true"]
    if precision == "int8":
        # accuracy_level 4: int8 activations too (VNNI dot products); 1.2x the
        # speed of float activations here with the same text (benchmarks/).
        options.append("accuracy_level=4")
    command += ["--extra_options", *options]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ModelError(f"cannot run the ONNX model builder: {exc}") from None
    if done.returncode != 0 or not (out / MODEL_FILE).is_file():
        lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()]
        raise ModelError(
            "the ONNX model builder failed: " + (lines[-1] if lines else f"exit {done.returncode}")
        )
