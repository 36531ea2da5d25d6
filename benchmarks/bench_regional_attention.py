"""What Omost's regional cross-attention costs next to diffusers' plain attention.

    python benchmarks/bench_regional_attention.py

One SD 1.5-sized cross-attention layer (320 channels, 8 heads, 768-wide text)
at the 64 x 64 level of a 512 x 512 image, batch 2 (classifier-free guidance),
over the 1,771 tokens of seed 003's dragon canvas (23 CLIP passes, 5 layers).
Both processors see the same tokens; the median of a few calls is printed.
Run it on an idle machine: both sides are measured in the same run.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from presample.diffusers import RegionalAttnProcessor, RegionalState

BAGS = (4, 5, 5, 5, 4)  # seed 003's dragon canvas: bags per layer, global first


def seconds(proc: object, attn: Attention, hidden: torch.Tensor, text: torch.Tensor) -> float:
    times = []
    with torch.no_grad():
        proc(attn, hidden, text)  # type: ignore[operator]
        for _ in range(5):
            start = time.perf_counter()
            proc(attn, hidden, text)  # type: ignore[operator]
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    torch.manual_seed(0)
    attn = Attention(query_dim=320, cross_attention_dim=768, heads=8, dim_head=40).eval()
    masks = np.zeros((5, 90, 90), dtype=bool)
    masks[0] = True
    masks[1, 15:75, 0:60] = True
    masks[2, 10:80, 10:80] = True
    masks[3, 0:45, :] = True
    masks[4, 45:90, :] = True
    layer = np.repeat(np.arange(5), [77 * b for b in BAGS])
    state = RegionalState(masks, layer, (64, 64), cfg=True, negative_tokens=77)
    hidden = torch.randn(2, 64 * 64, 320)
    text = torch.randn(2, layer.size, 768)
    plain = seconds(AttnProcessor2_0(), attn, hidden, text)
    regional = seconds(RegionalAttnProcessor(state), attn, hidden, text)
    print(f"tokens {layer.size}, pixels {64 * 64}, batch 2, threads {torch.get_num_threads()}")
    print(f"plain     {plain * 1000:8.1f} ms")
    print(f"regional  {regional * 1000:8.1f} ms  ({regional / plain:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
