"""Batch-invariant bfloat16 decoding on the CPU.

A seed must give the same prompt whether the request runs alone or in a batch
of 32 (issue: determinism). Stock kernels break that: PyTorch's fp32 and bf16
``linear`` pick different blocking for different batch sizes, and SDPA over a
left-padded batch sums a row's attention in a different order than it would
alone, so logits move in the last bits and a sampled token sometimes flips.

Two swaps make every row's arithmetic independent of its neighbours:

- **Packed linears**: oneDNN's bf16 inner product on a pre-packed weight
  (``torch.ops.mkldnn._linear_pointwise``, the kernel ``torch.compile`` uses
  for frozen bf16 linears on CPU) computes each output row the same way for any
  number of rows (checked up to 4,800 rows in the tests), and on CPUs with AMX
  it is also several times faster than ``F.linear`` on a batch.
- **Row-wise attention**: each row attends over its own keys only, the
  padding sliced away, exactly the shapes it would have alone.

No library offers this (vLLM/SGLang "batch-invariant" modes are CUDA-only), so
it is written here against transformers' public attention registry.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

ATTENTION_NAME = "presample_rowwise"


def supported() -> bool:
    """Whether this PyTorch build has oneDNN bf16 kernels for this CPU."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class PackedLinear(nn.Module):
    """A bf16 ``nn.Linear`` whose weight is packed once for oneDNN."""

    def __init__(self, linear: nn.Linear, batch_hint: int = 32) -> None:
        super().__init__()
        weight = linear.weight.detach().to(torch.bfloat16)
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.register_buffer(
            "packed", torch.ops.mkldnn._reorder_linear_weight(weight, batch_hint), persistent=False
        )
        bias = linear.bias
        self.register_buffer(
            "bias",
            None if bias is None else bias.detach().to(torch.bfloat16),
            persistent=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(
            x.to(torch.bfloat16), self.packed, self.bias, "none", [], ""
        )


def pack_linears(model: nn.Module, batch_hint: int = 32) -> nn.Module:
    """Replace every ``nn.Linear`` (the LM head included) by a :class:`PackedLinear`."""
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                setattr(module, child_name, PackedLinear(child, batch_hint))
        del name
    return model


def rowwise_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    row_starts: list[int] | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """SDPA per row over the row's own (unpadded) keys.

    ``row_starts[r]`` is the cache index of row r's first real token (its left
    padding). Neighbouring rows with the same start share one call: SDPA computes each
    (row, head) pair independently, so grouping does not change results.
    """
    batch, heads, q_len, head_dim = query.shape
    if row_starts is None:
        raise RuntimeError("rowwise attention needs row_starts (passed by the decode loop)")
    kv_len = key.shape[2]
    groups = getattr(module, "num_key_value_groups", 1)
    out = query.new_zeros(batch, q_len, heads, head_dim)
    # Runs of neighbouring rows with the same padding share one call on views;
    # gathering rows with index_select instead would copy the whole KV cache
    # every layer and step (a third of the decode time at batch 32).
    first = 0
    for row in range(1, batch + 1):
        if row < batch and row_starts[row] == row_starts[first]:
            continue
        start = row_starts[first]
        # Queries are the last q_len cache positions; those inside the padding are dropped.
        q_start = max(0, start - (kv_len - q_len))
        q = query[first:row, :, q_start:]
        k = key[first:row, :, start:]
        v = value[first:row, :, start:]
        if q.shape[2] > 1 and q.shape[2] != k.shape[2]:
            raise RuntimeError("rowwise attention supports a prefill from an empty cache only")
        if q_len == 1:
            attended = _decode_attention(q, k, v, scaling, groups)
        else:
            attended = F.scaled_dot_product_attention(
                q, k, v, is_causal=True, scale=scaling, enable_gqa=groups > 1
            )
        out[first:row, q_start:] = attended.transpose(1, 2)
        first = row
    return out, None


def _decode_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scaling: float | None, groups: int
) -> torch.Tensor:
    """One query per row: two batched products and a float32 softmax.

    SDPA's CPU flash kernel spends ~6x longer on a single query (it is built
    for blocks of queries); batched matmuls compute every (row, head) on its
    own, so this stays batch-invariant (tested).
    """
    if groups > 1:
        k = k.repeat_interleave(groups, dim=1)
        v = v.repeat_interleave(groups, dim=1)
    scale = scaling if scaling is not None else q.shape[-1] ** -0.5
    scores = torch.matmul(q, k.transpose(-1, -2)).float() * scale
    return torch.matmul(torch.softmax(scores, dim=-1).to(v.dtype), v)


def install_rowwise_attention(model: nn.Module) -> None:
    """Point the model's attention at :func:`rowwise_attention`.

    transformers keeps attention functions in a registry keyed by name;
    registering ours under one fixed name is idempotent and leaves other models alone.
    """
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_NAME, rowwise_attention)
    model.config._attn_implementation = ATTENTION_NAME


class RowRouter(nn.Module):
    """A mixture-of-experts router (DeepSeek-V3 style, as in TIPO v2) whose choice
    for a token does not depend on the other tokens of the batch.

    The stock router's float32 ``F.linear`` blocks its matrix product by the
    number of rows, so a near tie between two experts can break differently in
    a batch and send a token through another expert. Here each score is a
    product-and-sum over one contiguous row, the same arithmetic for any batch;
    the weights stay float32 as the model was trained. Same maths as
    ``Dots1TopkRouter`` with one group: sigmoid scores, the bias steers the
    choice only, the chosen scores renormalised and scaled.
    """

    def __init__(self, router: nn.Module) -> None:
        super().__init__()
        self.top_k = int(router.top_k)
        self.norm_topk_prob = bool(router.norm_topk_prob)
        self.routed_scaling_factor = float(router.routed_scaling_factor)
        # Plain attributes, not buffers: ``model.to(bfloat16)`` must leave them float32.
        self.weight = router.weight.detach().float().clone()
        self.bias = router.e_score_correction_bias.detach().float().clone()

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = hidden.reshape(-1, self.weight.shape[1]).float()
        logits = (rows[:, None, :] * self.weight[None]).sum(-1)
        scores = logits.sigmoid()
        chosen = torch.topk(scores + self.bias, k=self.top_k, dim=-1, sorted=True)[1]
        weights = scores.gather(1, chosen)
        if self.norm_topk_prob:
            weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        return logits, weights * self.routed_scaling_factor, chosen


class PackedExperts(nn.Module):
    """Routed experts as packed oneDNN bf16 linears, one pair per expert.

    Only the experts some token chose run (PyTorch's CPU grouped matmul visits
    all 64 every call: half of a batch-1 step), each on its own tokens' rows, so
    a token's result is the same alone or batched: the packed kernel computes
    each row alike, and a token's expert outputs are summed in expert order in
    float32 whatever else is in the batch.
    """

    def __init__(self, experts: nn.Module, batch_hint: int = 32) -> None:
        super().__init__()
        gate_up = experts.gate_up_proj.detach().to(torch.bfloat16)
        down = experts.down_proj.detach().to(torch.bfloat16)
        reorder = torch.ops.mkldnn._reorder_linear_weight
        self.gate_up = [reorder(w.contiguous(), batch_hint) for w in gate_up]
        self.down = [reorder(w.contiguous(), batch_hint) for w in down]
        self.act = experts.act_fn

    def forward(
        self, hidden: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor
    ) -> torch.Tensor:
        linear = torch.ops.mkldnn._linear_pointwise
        out = torch.zeros(hidden.shape, dtype=torch.float32)
        x = hidden.to(torch.bfloat16)
        # One stable sort groups the (token, choice) pairs by expert, tokens ascending.
        chosen = top_k_index.reshape(-1)
        order = torch.argsort(chosen, stable=True)
        tokens = order // top_k_index.shape[-1]
        weights = top_k_weights.reshape(-1)[order].float()[:, None]
        start = 0
        for expert, count in enumerate(torch.bincount(chosen, minlength=len(self.down)).tolist()):
            if not count:
                continue
            rows, end = tokens[start : start + count], start + count
            gate, up = linear(x[rows], self.gate_up[expert], None, "none", [], "").chunk(2, -1)
            y = linear(self.act(gate) * up, self.down[expert], None, "none", [], "")
            out.index_add_(0, rows, y.float() * weights[start:end])
            start = end
        return out.to(hidden.dtype)


def pack_experts(model: nn.Module, batch_hint: int = 32) -> None:
    """Swap each MoE layer's router and experts for the batch-invariant ones above.

    Recognised by their parts (transformers' fused experts: ``gate_up_proj``
    and ``down_proj`` stacked per expert; a router with a selection bias and
    one group); any other MoE is left as it is. Call before ``model.to(bf16)``
    so the router keeps its float32 weights.
    """
    for module in list(model.modules()):
        experts, router = getattr(module, "experts", None), getattr(module, "gate", None)
        if experts is None or router is None:
            continue
        fused = getattr(experts, "gate_up_proj", None)
        bias = getattr(router, "e_score_correction_bias", None)
        one_group = getattr(router, "num_group", 1) == 1
        if fused is None or fused.dim() != 3 or bias is None or not one_group:
            continue
        module.gate = RowRouter(router)
        module.experts = PackedExperts(experts, batch_hint)


def make_invariant(model: nn.Module) -> nn.Module:
    """bf16 weights, packed linears and experts, row-wise attention (module docstring)."""
    pack_experts(model)
    model = model.to(torch.bfloat16)
    pack_linears(model)
    install_rowwise_attention(model)
    return model


def is_rowwise(model: Any) -> bool:
    return getattr(getattr(model, "config", None), "_attn_implementation", None) == ATTENTION_NAME
