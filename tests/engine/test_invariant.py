"""Batch invariance of the bf16 CPU path: a row computes the same bits alone or in any batch."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from presample.engine import invariant  # noqa: E402
from presample.engine.backend import GenerationJob  # noqa: E402
from presample.engine.sampling import Sampling  # noqa: E402
from presample.engine.torch_backend import TorchBackend, pick_dtype  # noqa: E402

pytestmark = pytest.mark.skipif(
    not invariant.supported(), reason="this CPU/PyTorch has no oneDNN bf16 kernels"
)


def test_packed_linear_rows_do_not_depend_on_the_batch() -> None:
    gen = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(384, 1024, bias=True)
    packed = invariant.PackedLinear(linear.to(torch.bfloat16))
    x = torch.randn(600, 384, generator=gen).to(torch.bfloat16)
    alone = packed(x[7:8])[0]
    for rows in (8, 9, 17, 32, 100, 600):
        assert torch.equal(packed(x[:rows])[7], alone), rows
    assert torch.equal(packed(x[3:40])[4], alone)  # and in any position
    # Same numbers as the stock bf16 linear of a single row.
    stock = torch.nn.functional.linear(x[7:8], linear.weight, linear.bias)[0]
    assert torch.allclose(alone.float(), stock.float(), atol=1e-2, rtol=1e-2)


def _backend(model_dir: Path) -> TorchBackend:
    return TorchBackend.load(model_dir, dtype="bfloat16", device="cpu")


def test_auto_precision_on_this_cpu_is_the_invariant_bf16(tiny_model_dir: Path) -> None:
    assert pick_dtype("auto", "cpu") == "bfloat16"
    backend = _backend(tiny_model_dir)
    assert invariant.is_rowwise(backend.model)
    assert not any(isinstance(m, torch.nn.Linear) for m in backend.model.modules())


def test_generation_is_bitwise_the_same_alone_and_in_mixed_batches(tiny_model_dir: Path) -> None:
    backend = _backend(tiny_model_dir)
    backend.eos_id = -1  # random weights: run every row to its full length
    sampling = Sampling(max_new_tokens=40, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0)
    target = GenerationJob("tag: 1girl, long hair, smile", sampling, seed=3)
    alone = backend.generate([target])[0]
    fillers = [
        GenerationJob("a", sampling.with_(max_new_tokens=5), seed=1),
        GenerationJob("rating: general\ntag: 1boy, " + "red hair, " * 12, sampling, seed=2),
        GenerationJob("target: <|long|>\ntag: scenery, night, sky", sampling, seed=4),
    ]
    for position in range(4):
        jobs = [*fillers[:position], target, *fillers[position:]]
        assert backend.generate(jobs)[position].text == alone.text, position


def test_prefill_logits_match_a_row_alone(tiny_model_dir: Path) -> None:
    """The strongest form: identical logits, not just identical drawn tokens.

    Twelve rows of 1-120 tokens: with stock SDPA over the padded batch most rows
    differ from their solo run in the last bits (checked when this was written).
    """
    backend = _backend(tiny_model_dir)
    rnd = random.Random(0)
    vocab = len(backend.tokenizer)
    ids = [[rnd.randrange(3, vocab) for _ in range(rnd.randrange(1, 120))] for _ in range(12)]

    def last_logits(rows: list[list[int]]) -> torch.Tensor:
        width = max(map(len, rows))
        input_ids = torch.full((len(rows), width), backend.pad_id)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            input_ids[r, width - len(row) :] = torch.tensor(row)
            mask[r, width - len(row) :] = 1
        with torch.inference_mode():
            out = backend.model(
                input_ids=input_ids,
                attention_mask=mask,
                position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                logits_to_keep=1,
                row_starts=[width - len(row) for row in rows],
            )
        return out.logits[:, -1]

    batch = last_logits(ids)
    for r, row in enumerate(ids):
        assert torch.equal(batch[r], last_logits([row])[0]), r
