"""Weight-only int8: close to the float model, each row independent of the others."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from presample import PresampleRequest  # noqa: E402
from presample.engine import int8  # noqa: E402
from presample.engine.sampling import Sampling  # noqa: E402
from presample.presampler import Presampler  # noqa: E402

pytestmark = pytest.mark.skipif(not int8.available(), reason="no int8 kernel in this PyTorch")


def test_int8_linear_is_close_and_row_independent() -> None:
    gen = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(64, 96, bias=True)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(96, 64, generator=gen) * 0.1)
    q = int8.Int8Linear(linear)
    x = torch.randn(5, 64, generator=gen)
    exact, approx = linear(x), q(x).float()
    assert torch.allclose(exact, approx, atol=0.05, rtol=0.05)
    assert q.weight_int8.dtype == torch.int8  # a quarter of the fp32 bytes


def test_int8_presampler_runs_and_reproduces(tiny_model_dir: Path) -> None:
    p = Presampler(str(tiny_model_dir), dtype="int8", sampling=Sampling(max_new_tokens=12))
    assert p.backend.info.dtype == "int8"
    req = PresampleRequest(prompt="1girl, scenery", seed=3, tag_length="very_short",
                           nl_length="very_short")  # fmt: skip
    assert p(req).prompt == p(req).prompt
