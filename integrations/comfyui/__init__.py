"""presample for ComfyUI: drop this folder into ComfyUI/custom_nodes/.

The nodes live in the presample package (``presample.integrations.comfyui``),
installed into ComfyUI's Python from a checkout of the presample repository
(it is not on the package index; docs/comfyui.md); this file only hands
ComfyUI their mappings.
"""

from pathlib import Path

try:
    from presample.integrations.comfyui import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
except ImportError as exc:  # pragma: no cover - shown in ComfyUI's console at start-up
    # Linked from the repository (custom_nodes/presample -> integrations/comfyui), the
    # repository is two folders up; copied, the user knows where they copied it from.
    _repo = Path(__file__).resolve().parents[1]
    _where = str(_repo) if (_repo / "pyproject.toml").is_file() else "/path/to/presample"
    raise ImportError(
        "presample is not installed in ComfyUI's Python: run "
        f"`python -m pip install '{_where}[torch,gguf,canvas]'` with ComfyUI's Python ({exc})"
    ) from exc

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
