"""Fixtures for the host integrations: a ComfyUI-style models folder and the CLI."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMFY_FOLDER = ROOT / "integrations" / "comfyui"
A1111_FOLDER = ROOT / "integrations" / "a1111"

# Settings that keep the tiny random model quick: short targets and short outputs.
SMALL = {"tag_length": "very_short", "nl_length": "very_short"}
SMALL_CLI = ["--tag-length", "very_short", "--nl-length", "very_short", "--max-new-tokens", "16",
             "--temperature", "0.35", "--top-p", "0.95", "--top-k", "60", "--min-p", "0.1",
             "--repetition-penalty", "1.17"]  # fmt: skip


def load_custom_node(folder: Path, name: str) -> ModuleType:
    """Import a custom-node folder as ComfyUI's ``load_custom_node`` does.

    ComfyUI builds a module spec from the folder's ``__init__.py``, registers the
    module under the folder's name, executes it, then reads its mappings.
    """
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


@pytest.fixture()
def comfy_models(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``ComfyUI/models`` with the tiny model linked in as ``presample/tiny``."""
    root = tmp_path / "models"
    (root / "presample").mkdir(parents=True)
    (root / "kgen").mkdir()
    (root / "presample" / "tiny").symlink_to(tiny_model_dir, target_is_directory=True)
    monkeypatch.setenv("PRESAMPLE_COMFYUI_MODELS_DIR", str(root))
    monkeypatch.delitem(sys.modules, "folder_paths", raising=False)
    return root
