"""Prompts past 77 tokens on tiny random SD 1.5 / SDXL pipelines: nothing is cut."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from presample.diffusers import (
    ClipStack,
    encode_long_prompt,
    encode_text,
    presample_and_encode,
    prompt_chunks,
)

LONG = ", ".join(f"red cat number {i} on the sofa" for i in range(30))
"""About 800 tokens with the test vocabulary: ten or more passes."""


def _diffusers_encode(pipe: Any, prompt: str, negative: str) -> tuple[torch.Tensor, ...]:
    """diffusers' own encoding; no negative prompt is ``None`` there (SDXL then uses zeros)."""
    if hasattr(pipe, "text_encoder_2"):
        return pipe.encode_prompt(prompt=prompt, negative_prompt=negative or None, device="cpu")
    return pipe.encode_prompt(prompt, "cpu", 1, True, negative)


@pytest.fixture(params=["sd15", "sdxl"])
def pipe(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize("negative", ["blue dog", ""])
def test_a_short_prompt_is_exactly_what_diffusers_encodes(pipe: Any, negative: str) -> None:
    ours = encode_long_prompt(pipe, "a cat on the sofa, a dog", negative=negative)
    theirs = _diffusers_encode(pipe, "a cat on the sofa, a dog", negative)
    names = ["prompt_embeds", "negative_prompt_embeds"]
    if hasattr(pipe, "text_encoder_2"):
        names += ["pooled_prompt_embeds", "negative_pooled_prompt_embeds"]
    assert sorted(ours) == sorted(names)
    for name, expected in zip(names, theirs, strict=True):
        torch.testing.assert_close(ours[name], expected, rtol=1e-5, atol=1e-6)


def test_a_long_prompt_keeps_every_token_in_77_token_passes(pipe: Any) -> None:
    stack = ClipStack.from_pipe(pipe)
    whole = pipe.tokenizer(LONG, add_special_tokens=False, verbose=False).input_ids
    assert len(whole) > 5 * 77
    chunks = prompt_chunks(stack, LONG)
    bos, eos = pipe.tokenizer.bos_token_id, pipe.tokenizer.eos_token_id
    kept: list[int] = []
    for ids in chunks.ids:
        first = list(ids[0])
        assert len(first) == 77 and first[0] == bos
        end = first.index(eos, 1)
        assert end <= 76
        kept += first[1:end]
    assert kept == whole  # every token, in order: nothing truncated, nothing added

    kwargs = encode_long_prompt(pipe, LONG)
    assert kwargs["prompt_embeds"].shape[1] == 77 * len(chunks.ids)
    assert kwargs["negative_prompt_embeds"].shape == kwargs["prompt_embeds"].shape
    # diffusers alone would have kept 77 tokens.
    assert _diffusers_encode(pipe, LONG, "")[0].shape[1] == 77


def test_each_pass_is_one_clip_encoding_concatenated(sd15: Any) -> None:
    stack = ClipStack.from_pipe(sd15)
    chunks = prompt_chunks(stack, LONG)
    embeds = encode_text(stack, LONG).embeds
    for i, ids in enumerate(chunks.ids):
        with torch.no_grad():
            alone = sd15.text_encoder(torch.tensor([ids[0]])).last_hidden_state
        torch.testing.assert_close(embeds[:, 77 * i : 77 * (i + 1)], alone)


def test_passes_hold_whole_sub_prompts(sd15: Any) -> None:
    chunks = prompt_chunks(ClipStack.from_pipe(sd15), LONG)
    pieces = [t.strip() for t in LONG.split(",")]
    seen: list[str] = []
    for text in chunks.texts:
        seen += [t.strip() for t in text.split(",") if t.strip()]
    assert seen == pieces  # no tag split across two passes


def test_break_starts_a_new_pass_and_networks_are_not_text(sd15: Any) -> None:
    stack = ClipStack.from_pipe(sd15)
    chunks = prompt_chunks(stack, "a cat, <lora:detail:0.6> BREAK a dog")
    assert chunks.texts == ("a cat", "a dog")
    assert chunks.networks == ("<lora:detail:0.6>",)
    # The first pass holds "a cat" and nothing of the LoRA tag.
    expected = sd15.tokenizer("a cat", padding="max_length", max_length=77).input_ids
    assert list(chunks.ids[0][0]) == expected


def test_weights_scale_their_tokens_and_keep_the_pass_mean(sd15: Any) -> None:
    stack = ClipStack.from_pipe(sd15)
    plain = encode_text(stack, "red, cat").embeds
    weighted = encode_text(stack, "(red:1.5), cat").embeds
    chunks = prompt_chunks(stack, "(red:1.5), cat")
    red = len(sd15.tokenizer("red,", add_special_tokens=False).input_ids)
    cat = len(sd15.tokenizer("cat", add_special_tokens=False).input_ids)
    assert chunks.weights[0] == (1.0, *[1.5] * red, *[1.0] * cat, *[1.0] * (76 - red - cat))
    assert not torch.allclose(plain, weighted)
    torch.testing.assert_close(weighted.mean(), plain.mean(), rtol=1e-4, atol=1e-6)
    # One factor per pass: 1.5 * k on the weighted tokens, k elsewhere.
    k = weighted[0, -1] / plain[0, -1]
    torch.testing.assert_close(k, k[:1].expand_as(k))
    torch.testing.assert_close(weighted[0, 1] / plain[0, 1], 1.5 * k, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("longer", ["prompt", "negative"])
def test_pipelines_run_on_long_prompts(pipe: Any, longer: str) -> None:
    short = "a cat"
    prompt, negative = (LONG, short) if longer == "prompt" else (short, LONG)
    kwargs = encode_long_prompt(pipe, prompt, negative=negative)
    assert kwargs["prompt_embeds"].shape[1] > 77
    out = pipe(
        **kwargs,
        num_inference_steps=2,
        output_type="latent",
        generator=torch.Generator().manual_seed(0),
    ).images
    assert out.shape == (1, 4, 16, 16)
    assert torch.isfinite(out).all()


def test_presample_and_encode_encodes_the_presampled_prompt(sd15: Any, tiny_model_dir: Any) -> None:
    from presample import Presampler, PresampleRequest
    from presample.engine.sampling import Sampling

    with Presampler(str(tiny_model_dir), sampling=Sampling(max_new_tokens=8)) as presampler:
        request = PresampleRequest(prompt="1girl, scenery", seed=3)
        result, kwargs = presample_and_encode(sd15, presampler, request, negative="lowres")
    assert result.prompt.startswith("1girl") or "1girl" in result.prompt
    expected = encode_long_prompt(sd15, result.prompt, negative="lowres")
    for name, value in expected.items():
        torch.testing.assert_close(kwargs[name], value)


def test_clip_skip_reads_an_earlier_layer_as_diffusers_does(sd15: Any, sdxl: Any) -> None:
    ours = encode_long_prompt(sdxl, "a cat on the sofa", negative="a dog", clip_skip=1)
    theirs = sdxl.encode_prompt(
        prompt="a cat on the sofa", negative_prompt="a dog", device="cpu", clip_skip=1
    )
    torch.testing.assert_close(ours["prompt_embeds"], theirs[0])
    # diffusers' SDXL skips layers for the positive prompt only; we skip for both, as A1111.
    same_layer = encode_long_prompt(sdxl, "a dog", clip_skip=1)["prompt_embeds"]
    torch.testing.assert_close(ours["negative_prompt_embeds"], same_layer)
    # SD 1.5: the layer before the last, through the final layer norm.
    embeds = encode_long_prompt(sd15, "a cat", clip_skip=1)["prompt_embeds"]
    ids = torch.tensor([sd15.tokenizer("a cat", padding="max_length", max_length=77).input_ids])
    with torch.no_grad():
        out = sd15.text_encoder(ids, output_hidden_states=True)
        norm = getattr(sd15.text_encoder, "text_model", sd15.text_encoder).final_layer_norm
        expected = norm(out.hidden_states[-2])
    torch.testing.assert_close(embeds, expected)
    assert not torch.allclose(embeds, encode_long_prompt(sd15, "a cat")["prompt_embeds"])
