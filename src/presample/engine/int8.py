"""Weight-only int8 for CPU decoding.

Decoding one token reads every weight once, so on a CPU the speed is set by
memory bandwidth and int8 weights (a quarter of fp32, half of bf16) go that
much faster. Weight-only matters: dynamic quantisation (``quantize_dynamic``)
also quantises activations with one scale for the whole batch, so a prompt's
output would depend on the other prompts it is batched with. Here activations
stay bf16 and each output row depends on its own input row only.

Hand-written because the library path (torchao's ``int8_weight_only``) adds a
compiled package whose wheels track PyTorch releases; the kernel itself,
``torch._weight_int8pack_mm``, ships in PyTorch.
"""

from __future__ import annotations

from typing import Any

import torch


class Int8Linear(torch.nn.Module):
    """A Linear layer with per-output-channel symmetric int8 weights."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-8) / 127.0
        self.register_buffer("weight_int8", torch.round(weight / scale[:, None]).to(torch.int8))
        self.register_buffer("scale", scale.to(torch.bfloat16))
        bias = linear.bias
        self.register_buffer("bias", None if bias is None else bias.detach().to(torch.bfloat16))
        self.out_features = linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1]).to(torch.bfloat16)
        out = torch._weight_int8pack_mm(flat, self.weight_int8, self.scale)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


def available() -> bool:
    return hasattr(torch, "_weight_int8pack_mm")


def quantize_int8(model: Any) -> Any:
    """Replace every Linear (the LM head included) in place; the rest runs in bf16."""
    model = model.to(torch.bfloat16)
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, torch.nn.Linear):
                setattr(module, name, Int8Linear(child))
    return model
