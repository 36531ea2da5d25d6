"""Hugging Face models as local folders: the cached copy, or one download.

Every engine then loads a plain folder, so network access happens here only,
once, and fails fast: a model in the cache is used without asking the network
(no update checks, which retry for a minute and a half when the machine is
offline), and a model not in the cache is looked up with one short request
before anything is downloaded, so an offline machine gets one clear line at
once instead of a dozen retries.
"""

from __future__ import annotations

import os
from pathlib import Path

from .backend import ModelError, first_line

# What a model folder needs: configs, tokenizer files, safetensors weights. The
# published repos also hold GGUF copies (hundreds of MB) no engine here reads
# from a Hub folder.
FOLDER_FILES = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt"]
LOOKUP_TIMEOUT_SECONDS = 10.0


def offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return value in ("1", "true", "yes", "on")


def cached_folder(repo: str) -> Path | None:
    """The cached snapshot of ``repo`` when it holds a model's config, else ``None``."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:
        return None
    try:
        folder = Path(snapshot_download(repo, allow_patterns=FOLDER_FILES, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    return folder if (folder / "config.json").is_file() else None


def model_folder(repo: str) -> Path:
    """A local folder with ``repo``'s model: the cache, else a download; one-line errors."""
    folder = cached_folder(repo)
    if folder is not None:
        return folder
    hint = " (or pass its GGUF file, or the folder holding it with --models-dir)"
    if offline():
        raise ModelError(
            f"{repo} is not in the Hugging Face cache and HF_HUB_OFFLINE is set: download "
            f"it once online{hint}"
        )
    try:
        from huggingface_hub import HfApi, snapshot_download
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError
    except ImportError as exc:
        raise ModelError(f"downloading {repo} needs huggingface_hub: {exc}") from None
    try:
        HfApi().model_info(repo, timeout=LOOKUP_TIMEOUT_SECONDS)
    except (RepositoryNotFoundError, GatedRepoError) as exc:
        raise ModelError(f"{repo}: {first_line(exc)}") from None
    except Exception as exc:  # no network: httpx / OS errors, whatever the transport raises
        raise ModelError(
            f"{repo} is not in the Hugging Face cache and huggingface.co cannot be reached "
            f"({first_line(exc)}): download it once online{hint}, or set HF_HUB_OFFLINE=1 "
            "to use only what is cached"
        ) from None
    try:
        downloaded = Path(snapshot_download(repo, allow_patterns=FOLDER_FILES))
        if not any(downloaded.glob("*.safetensors")):  # older repos: PyTorch pickles only
            downloaded = Path(snapshot_download(repo, allow_patterns=[*FOLDER_FILES, "*.bin"]))
    except Exception as exc:  # a broken connection halfway
        raise ModelError(f"downloading {repo} failed: {first_line(exc)}") from None
    if not (downloaded / "config.json").is_file():
        raise ModelError(f"{repo} has no config.json: not a transformers model repo")
    return downloaded


def gguf_file(repo: str, filename: str) -> Path:
    """One published GGUF file of ``repo``: the cached copy, else one download.

    For llama.cpp, which reads GGUF files only; the same fail-fast rules as
    ``model_folder``.
    """
    try:
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )
    except ImportError as exc:
        raise ModelError(f"downloading {repo} needs huggingface_hub: {exc}") from None
    try:
        return Path(hf_hub_download(repo, filename, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    hint = f" (or download {filename} yourself and pass the file)"
    if offline():
        raise ModelError(
            f"{repo}/{filename} is not in the Hugging Face cache and HF_HUB_OFFLINE is set{hint}"
        )
    try:
        HfApi().model_info(repo, timeout=LOOKUP_TIMEOUT_SECONDS)
    except (RepositoryNotFoundError, GatedRepoError) as exc:
        raise ModelError(f"{repo}: {first_line(exc)}") from None
    except Exception as exc:  # no network, whatever the transport raises
        raise ModelError(
            f"{repo}/{filename} is not in the Hugging Face cache and huggingface.co cannot be "
            f"reached ({first_line(exc)}){hint}"
        ) from None
    try:
        return Path(hf_hub_download(repo, filename))
    except EntryNotFoundError:
        raise ModelError(f"{repo} has no file {filename}") from None
    except Exception as exc:  # a broken connection halfway
        raise ModelError(f"downloading {repo}/{filename} failed: {first_line(exc)}") from None
