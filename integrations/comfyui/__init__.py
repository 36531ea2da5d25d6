"""presample for ComfyUI: drop this folder into ComfyUI/custom_nodes/.

The nodes live in the presample package (``presample.integrations.comfyui``),
installed from the package registry by ``requirements.txt`` (no compiler
needed); this file only hands ComfyUI their mappings.
"""

try:
    from presample.integrations.comfyui import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
except ImportError as exc:  # pragma: no cover - shown in ComfyUI's console at start-up
    raise ImportError(
        "presample is not installed in ComfyUI's Python: run "
        "`python -m pip install -r custom_nodes/presample/requirements.txt` "
        f"with ComfyUI's Python ({exc})"
    ) from exc

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
