"""Checkpoints that let a run continue exactly: model, optimiser, schedule, RNGs, data position.

A checkpoint is a folder ``step-NNNNNNN`` written under a temporary name and
renamed when complete, so a kill in the middle never leaves a broken latest
checkpoint; ``latest`` names the newest complete one.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

LATEST = "latest"
KEEP = 2


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = checkpoint_dir(run_dir) / LATEST
    if not pointer.is_file():
        return None
    path = checkpoint_dir(run_dir) / pointer.read_text(encoding="utf-8").strip()
    return path if path.is_dir() else None


def save_checkpoint(
    run_dir: Path,
    step: int,
    *,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    streams: list[dict[str, Any]],
    progress: dict[str, Any],
) -> Path:
    """Write the state of step ``step``; ``streams`` holds every worker's data position."""
    import torch
    from safetensors.torch import save_file

    root = checkpoint_dir(run_dir)
    final = root / f"step-{step:07d}"
    tmp = root / f".tmp-step-{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state: dict[str, Any] = {}
    seen: set[int] = set()
    for name, tensor in model.state_dict().items():
        # Tied weights (a pretrained base's lm_head = embeddings) are stored once;
        # safetensors refuses shared memory and load_weights() re-ties them.
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            state[name] = tensor.detach().contiguous()
    save_file(state, str(tmp / "model.safetensors"))
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "streams": streams,
            "progress": progress,
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
        },
        tmp / "state.pt",
    )
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    (root / f".{LATEST}").write_text(final.name, encoding="utf-8")
    (root / f".{LATEST}").replace(root / LATEST)
    for old in sorted(root.glob("step-*"))[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model state dict, everything else) of a checkpoint folder."""
    import torch
    from safetensors.torch import load_file

    weights = load_file(str(path / "model.safetensors"))
    # weights_only=False: the state holds Python RNG tuples; the file is our own.
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    return weights, state


def load_weights(model: Any, weights: dict[str, Any]) -> None:
    """Load a checkpoint's weights into ``model``, re-tying what was stored once."""
    missing, unexpected = model.load_state_dict(weights, strict=False)
    tied = {"lm_head.weight"} if getattr(model.config, "tie_word_embeddings", False) else set()
    if unexpected or set(missing) - tied:
        raise ValueError(
            f"checkpoint does not fit the model: missing {sorted(set(missing) - tied)}, "
            f"unexpected {sorted(unexpected)}"
        )
    model.tie_weights()


def restore_rngs(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch_rng"])
    random.setstate(state["python_rng"])
