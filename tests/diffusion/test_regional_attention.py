"""The regional cross-attention processor on tiny SD 1.5- and SDXL-shaped UNets.

The reference here is the spec's formula written out the way Omost's own
processor computes it (``sim * S``, ``masked_fill(-inf)``, softmax, masks
resized with PyTorch's ``nearest-exact``), independently of the code under test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from canvas.answers import answer

from presample.canvas import parse_canvas
from presample.diffusers import (
    RegionalAttentionError,
    RegionalAttnProcessor,
    RegionalState,
    cross_attention_names,
    encode_canvas,
    install,
    regional_attention,
)

from .tiny import sd15_unet, sdxl_unet


def _masks() -> np.ndarray:
    """Global, a left box and a small top-right box on the 90 grid."""
    masks = np.zeros((3, 90, 90), dtype=bool)
    masks[0] = True
    masks[1, 15:75, 0:45] = True
    masks[2, 0:30, 60:90] = True
    return masks


def _state(latent: tuple[int, int], **kw: Any) -> RegionalState:
    layer = np.repeat([0, 1, 2], [6, 5, 4])
    return RegionalState(masks=_masks(), token_layer=layer, latent_size=latent, **kw)


def _reference(
    attn: Any, hidden: torch.Tensor, enc: torch.Tensor, state: RegionalState, hw: tuple[int, int]
) -> torch.Tensor:
    h, w = hw
    masks = torch.from_numpy(state.masks).float()[:, None]
    resized = F.interpolate(masks, (h, w), mode="nearest-exact").reshape(len(masks), h * w)
    layer = torch.from_numpy(state.token_layer)
    m = resized[layer].T  # (h*w, T)
    s = (h * w) / resized.sum(dim=1)[layer]  # (T,)
    b = hidden.shape[0]
    q = attn.to_q(hidden)
    k = attn.to_k(enc)
    v = attn.to_v(enc)
    d = k.shape[-1] // attn.heads
    q, k, v = (x.view(b, -1, attn.heads, d).transpose(1, 2) for x in (q, k, v))
    sim = q @ k.transpose(-2, -1) * attn.scale
    sim = sim * s[None, None, None, :]
    sim = sim.masked_fill(m[None, None] < 0.5, float("-inf")).softmax(dim=-1)
    out = (sim @ v).transpose(1, 2).reshape(b, -1, attn.heads * d)
    return attn.to_out[1](attn.to_out[0](out))


def _level(pixels: int, latent: tuple[int, int]) -> tuple[int, int]:
    h, w = latent
    while h * w != pixels:
        h, w = -(-h // 2), -(-w // 2)
    return h, w


def _record(unet: Any) -> tuple[list[tuple[Any, dict[str, Any], torch.Tensor]], list[Any]]:
    """Each cross-attention call's module, inputs and output."""
    calls: list[tuple[Any, dict[str, Any], torch.Tensor]] = []
    handles = []
    for name in cross_attention_names(unet):
        module = unet.get_submodule(name.removesuffix(".processor"))

        def hook(mod: Any, args: tuple, kwargs: dict, out: torch.Tensor) -> None:
            calls.append(
                (mod, {"hidden": args[0] if args else kwargs["hidden_states"], **kwargs}, out)
            )

        handles.append(module.register_forward_hook(hook, with_kwargs=True))
    return calls, handles


def _unet_inputs(unet: Any, latent: tuple[int, int], tokens: int, batch: int = 1) -> dict[str, Any]:
    g = torch.Generator().manual_seed(3)
    dim = unet.config.cross_attention_dim
    inputs: dict[str, Any] = {
        "sample": torch.randn(batch, 4, *latent, generator=g),
        "timestep": torch.tensor(500),
        "encoder_hidden_states": torch.randn(batch, tokens, dim, generator=g),
    }
    if unet.config.addition_embed_type == "text_time":
        pooled = (
            unet.config.projection_class_embeddings_input_dim
            - 6 * unet.config.addition_time_embed_dim
        )
        inputs["added_cond_kwargs"] = {
            "text_embeds": torch.randn(batch, pooled, generator=g),
            "time_ids": torch.tensor(
                [[*(8 * x for x in latent), 0, 0, *(8 * x for x in latent)]] * batch,
                dtype=torch.float32,
            ),
        }
    return inputs


UNETS = {"sd15": sd15_unet, "sdxl": sdxl_unet}


@pytest.fixture(scope="module", params=sorted(UNETS))
def unet(request: pytest.FixtureRequest) -> Any:
    torch.manual_seed(0)
    return UNETS[request.param]().eval()


def test_only_cross_attention_layers_get_the_processor_and_originals_come_back(unet: Any) -> None:
    before = dict(unet.attn_processors)
    cross = cross_attention_names(unet)
    assert cross and all(n.endswith("attn2.processor") for n in cross)
    with regional_attention(unet, _state((16, 16))):
        during = unet.attn_processors
        for name, proc in during.items():
            if name in cross:
                assert isinstance(proc, RegionalAttnProcessor)
            else:
                assert proc is before[name]  # self-attention untouched
    assert unet.attn_processors == before


def test_processors_are_restored_when_the_block_fails(unet: Any) -> None:
    before = dict(unet.attn_processors)
    with pytest.raises(RuntimeError, match="boom"), regional_attention(unet, _state((16, 16))):
        raise RuntimeError("boom")
    assert unet.attn_processors == before


@pytest.mark.parametrize("latent", [(16, 16), (12, 20), (13, 7)])
def test_every_level_follows_the_spec_formula(unet: Any, latent: tuple[int, int]) -> None:
    """All cross-attention calls of a UNet forward, square, wide and odd latents."""
    state = _state(latent)
    calls, handles = _record(unet)
    try:
        with torch.no_grad(), regional_attention(unet, state):
            unet(**_unet_inputs(unet, latent, state.tokens))
    finally:
        for h in handles:
            h.remove()
    sizes = set()
    for module, inputs, out in calls:
        hw = _level(inputs["hidden"].shape[1], latent)
        sizes.add(hw)
        with torch.no_grad():
            expected = _reference(
                module, inputs["hidden"], inputs["encoder_hidden_states"], state, hw
            )
        torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    assert len(sizes) >= 2  # more than one UNet level was checked


def test_a_global_only_state_is_plain_attention(unet: Any) -> None:
    """One layer covering everything: S = 1, nothing masked, the UNet's default output."""
    tokens = 12
    state = RegionalState(np.ones((1, 90, 90), bool), np.zeros(tokens, np.int64), (12, 20))
    inputs = _unet_inputs(unet, (12, 20), tokens)
    with torch.no_grad():
        plain = unet(**inputs).sample
        with regional_attention(unet, state):
            regional = unet(**inputs).sample
    torch.testing.assert_close(regional, plain, rtol=1e-4, atol=1e-5)


def _first_cross_output(unet: Any, inputs: dict[str, Any], state: RegionalState) -> torch.Tensor:
    calls, handles = _record(unet)
    try:
        with torch.no_grad(), regional_attention(unet, state):
            unet(**inputs)
    finally:
        for h in handles:
            h.remove()
    return calls[0][2]


@pytest.mark.parametrize("region", [1, 2])
def test_a_regions_tokens_never_reach_pixels_outside_its_mask(unet: Any, region: int) -> None:
    latent = (12, 20)
    state = _state(latent)
    inputs = _unet_inputs(unet, latent, state.tokens)
    base = _first_cross_output(unet, inputs, state)
    perturbed = dict(inputs)
    enc = inputs["encoder_hidden_states"].clone()
    enc[:, torch.from_numpy(state.token_layer == region)] += 5.0
    perturbed["encoder_hidden_states"] = enc
    changed = _first_cross_output(unet, perturbed, state)
    hw = _level(base.shape[1], latent)
    inside = (
        F.interpolate(
            torch.from_numpy(state.masks[region]).float()[None, None], hw, mode="nearest-exact"
        )
        .flatten()
        .bool()
    )
    assert 0 < int(inside.sum()) < inside.numel()
    diff = (changed - base).abs().amax(dim=-1)[0]  # per pixel
    assert torch.all(diff[~inside] == 0)
    assert torch.all(diff[inside] > 1e-4)


def test_guided_batch_keeps_the_unconditional_half_plain(unet: Any) -> None:
    """Rows [negative, positive]: the negative attends plainly to its own tokens only."""
    latent = (12, 20)
    negative_tokens = 7
    state = _state(latent, cfg=True, negative_tokens=negative_tokens)
    inputs = _unet_inputs(unet, latent, state.tokens, batch=2)
    inputs["sample"] = inputs["sample"][:1].repeat(2, 1, 1, 1)
    out = _first_cross_output(unet, inputs, state)

    calls, handles = _record(unet)
    try:
        with torch.no_grad():
            plain = dict(inputs)
            plain["sample"] = inputs["sample"][:1]
            plain["encoder_hidden_states"] = inputs["encoder_hidden_states"][:1, :negative_tokens]
            if "added_cond_kwargs" in inputs:
                plain["added_cond_kwargs"] = {
                    k: v[:1] for k, v in inputs["added_cond_kwargs"].items()
                }
            unet(**plain)
    finally:
        for h in handles:
            h.remove()
    torch.testing.assert_close(out[:1], calls[0][2], rtol=1e-4, atol=1e-5)
    # The positive half is the regional formula.
    solo = _state(latent)
    single = dict(inputs)
    single["sample"] = inputs["sample"][1:]
    single["encoder_hidden_states"] = inputs["encoder_hidden_states"][1:]
    if "added_cond_kwargs" in inputs:
        single["added_cond_kwargs"] = {k: v[1:] for k, v in inputs["added_cond_kwargs"].items()}
    torch.testing.assert_close(
        out[1:], _first_cross_output(unet, single, solo), rtol=1e-4, atol=1e-5
    )


def test_wrong_inputs_are_one_clear_error(unet: Any) -> None:
    state = _state((16, 16))
    with torch.no_grad(), regional_attention(unet, state):
        with pytest.raises(
            RegionalAttentionError, match="hold 9 tokens but the regional state describes 15"
        ):
            unet(**_unet_inputs(unet, (16, 16), 9))
        with pytest.raises(RegionalAttentionError, match="no UNet level of a 16x16 latent"):
            unet(**_unet_inputs(unet, (12, 12), state.tokens))


def test_state_is_validated() -> None:
    masks = _masks()
    with pytest.raises(ValueError, match="include a global layer"):
        RegionalState(masks[1:], np.array([0, 1]), (8, 8))
    with pytest.raises(ValueError, match=r"token_layer values must be in -1\.\.2"):
        RegionalState(masks, np.array([0, 3]), (8, 8))
    with pytest.raises(ValueError, match="negative_tokens"):
        RegionalState(masks, np.array([0, 1]), (8, 8), cfg=True, negative_tokens=3)


def test_install_returns_originals_for_manual_restore(unet: Any) -> None:
    before = dict(unet.attn_processors)
    originals = install(unet, _state((16, 16)))
    assert originals == before
    unet.set_attn_processor(dict(originals))
    assert unet.attn_processors == before


def test_canvas_embeddings_feed_both_unets(sd15: Any, sdxl: Any) -> None:
    canvas = parse_canvas(answer())
    for pipe in (sd15, sdxl):
        enc = encode_canvas(pipe, canvas)
        state = enc.state((16, 16))
        inputs = _unet_inputs(pipe.unet, (16, 16), enc.tokens)
        inputs["encoder_hidden_states"] = enc.prompt_embeds
        if enc.pooled_prompt_embeds is not None:
            inputs["added_cond_kwargs"]["text_embeds"] = enc.pooled_prompt_embeds
        with torch.no_grad(), regional_attention(pipe.unet, state):
            out = pipe.unet(**inputs).sample
        assert out.shape == (1, 4, 16, 16)
        assert torch.isfinite(out).all()
