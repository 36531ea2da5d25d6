"""A dequantised copy of a GGUF model, so transformers reads it once, not at every start.

transformers reads a GGUF file by parsing all of its metadata (tens of
thousands of vocabulary entries, twice) and dequantising every tensor in
NumPy: about ten seconds for the shipped 135M model on two cores, at every
``presample`` command. The first load writes the result as a plain
transformers folder (config + float32 safetensors) under the user's cache
folder; later loads read that in about a second. The folder's name is a hash
of the file's path, size and modification time, the precision and the
transformers version (whose GGUF reading may change), so a replaced file never
meets a stale copy. Nothing in the name comes from the file's contents.

``PRESAMPLE_CACHE_DIR`` moves the cache; ``PRESAMPLE_GGUF_CACHE=0`` turns it off.
A cache that cannot be written is skipped silently: it only saves time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

WEIGHTS = "model.safetensors"


def cache_root() -> Path | None:
    """Where dequantised copies live, or ``None`` when caching is off."""
    if os.environ.get("PRESAMPLE_GGUF_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    configured = os.environ.get("PRESAMPLE_CACHE_DIR", "").strip()
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(base) / "presample"


def cache_folder(gguf_path: Path, dtype: str) -> Path | None:
    """The folder for this exact file's copy in ``dtype`` (it may not exist yet)."""
    root = cache_root()
    if root is None:
        return None
    import transformers

    stat = gguf_path.stat()
    key = "\0".join(
        (str(gguf_path.resolve()), str(stat.st_size), str(stat.st_mtime_ns), dtype,
         transformers.__version__)
    )  # fmt: skip
    return root / "gguf" / hashlib.sha256(key.encode()).hexdigest()[:32]


def ready(folder: Path | None) -> bool:
    return folder is not None and all((folder / f).is_file() for f in (WEIGHTS, "config.json"))


def store(model: Any, folder: Path) -> None:
    """Write ``model`` to ``folder`` atomically (a half-written copy is never read).

    Not ``save_pretrained``: transformers refuses to serialise a model it read
    from GGUF. The weights are plain tensors by now, so safetensors writes them
    (tied ones once) next to the config without its GGUF quantisation entry.
    """
    from safetensors.torch import save_model

    config = model.config.to_dict()
    config.pop("quantization_config", None)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=folder.parent))
        try:
            save_model(model, str(staging / WEIGHTS), metadata={"format": "pt"})
            (staging / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
            os.replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except (OSError, ValueError, RuntimeError):
        return
