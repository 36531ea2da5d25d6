"""A dequantised copy of a GGUF model, so transformers reads it once, not at every start.

transformers reads a GGUF file by parsing all of its metadata (tens of
thousands of vocabulary entries, twice) and dequantising every tensor in
NumPy: about ten seconds for the shipped 135M model on two cores, at every
``presample`` command. The first load writes the result as a plain
transformers folder (config + safetensors in the precision asked for) under
the user's cache folder; later loads read that in about a second. The folder's
name is a hash of the file's path, inode, size, modification and change times,
the precision and the transformers version (whose GGUF reading may change): a
file replaced by any means, even a copy that keeps the old modification time,
gets a new inode or change time, so it never meets a stale copy. Nothing in
the name comes from the file's contents. Storing a copy removes older copies
of the same path, so the cache holds one per file and precision.

``PRESAMPLE_CACHE_DIR`` moves the cache; ``PRESAMPLE_GGUF_CACHE=0`` turns it off.
A cache that cannot be written is skipped silently: it only saves time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

WEIGHTS = "model.safetensors"
SOURCE = "source.json"
# A half-written copy older than this was left by a killed process.
STALE_PARTIAL_SECONDS = 3600


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
    """The folder for this exact file's copy in ``dtype`` (it may not exist yet);
    ``None`` when caching is off or no cache folder can be named."""
    try:
        root = cache_root()
        if root is None:
            return None
        stat = gguf_path.stat()
        path = str(gguf_path.resolve())
    except (OSError, RuntimeError):  # no home folder, a file gone since it was found
        return None
    import transformers

    key = "\0".join(
        (path, str(stat.st_ino), str(stat.st_size), str(stat.st_mtime_ns), str(stat.st_ctime_ns),
         dtype, transformers.__version__)
    )  # fmt: skip
    return root / "gguf" / hashlib.sha256(key.encode()).hexdigest()[:32]


def ready(folder: Path | None) -> bool:
    return folder is not None and all((folder / f).is_file() for f in (WEIGHTS, "config.json"))


def store(model: Any, folder: Path, source: Path | None = None) -> None:
    """Write ``model`` to ``folder`` atomically (a half-written copy is never read).

    Not ``save_pretrained``: transformers refuses to serialise a model it read
    from GGUF. The weights are plain tensors by now, so safetensors writes them
    (tied ones once) next to the config without its GGUF quantisation entry.
    With ``source`` (the GGUF file), older copies of that file are removed.
    """
    from safetensors.torch import save_model

    config = model.config.to_dict()
    config.pop("quantization_config", None)
    dtype = str(config.get("dtype") or config.get("torch_dtype") or "")
    origin = {"path": str(source.resolve()) if source else "", "dtype": dtype}
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        prune(folder.parent, origin, keep=folder)
        staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=folder.parent))
        try:
            save_model(model, str(staging / WEIGHTS), metadata={"format": "pt"})
            (staging / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
            (staging / SOURCE).write_text(json.dumps(origin), encoding="utf-8")
            os.replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except (OSError, ValueError, RuntimeError):
        return


def prune(root: Path, origin: dict[str, str], keep: Path) -> None:
    """Remove copies of the same file and precision other than ``keep`` (folders
    whose ``source.json`` holds every item of ``origin``), and half-written
    copies a killed process left behind. Also used by the ONNX conversions."""
    now = time.time()
    for entry in root.iterdir():
        if entry == keep or not entry.is_dir():
            continue
        if entry.name.startswith(".partial-"):
            if now - entry.stat().st_mtime > STALE_PARTIAL_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
            continue
        try:
            recorded = json.loads((entry / SOURCE).read_text("utf-8"))
            same = origin["path"] and all(recorded.get(k) == v for k, v in origin.items())
        except (OSError, ValueError):
            continue  # not ours to judge
        if same:
            shutil.rmtree(entry, ignore_errors=True)
