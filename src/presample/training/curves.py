"""Loss curves: one JSON line per logged step in ``log.jsonl``, plotted to ``loss.png``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LOG_FILE = "log.jsonl"
PLOT_FILE = "loss.png"


def append_log(run_dir: Path, row: dict[str, Any]) -> None:
    with (run_dir / LOG_FILE).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / LOG_FILE
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    # A resumed run logs again from its checkpoint: the latest row of a step wins.
    latest: dict[tuple[int, str], dict[str, Any]] = {}
    for row in rows:
        latest[(row["step"], "val" if "val_loss" in row else "train")] = row
    return sorted(latest.values(), key=lambda r: r["step"])


def plot(run_dir: Path) -> Path | None:
    """Train and validation loss against tokens seen; ``None`` without matplotlib or data."""
    rows = read_log(run_dir)
    if not rows:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    train = [r for r in rows if "loss" in r]
    val = [r for r in rows if "val_loss" in r]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train", lw=1)
    if val:
        ax.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = run_dir / PLOT_FILE
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
