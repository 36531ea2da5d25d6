"""The regional pipeline helper on tiny random SD 1.5 / SDXL pipelines."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from canvas.answers import answer

from presample.canvas import bag_canvas, conditions, parse_canvas
from presample.diffusers import (
    ClipStack,
    RegionalAttnProcessor,
    cross_attention_names,
    encode_canvas,
    regional_pipeline,
)

CANVAS = parse_canvas(answer())


@pytest.fixture(params=["sd15", "sdxl"])
def pipe(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(request.param)


def _tokenize(pipe: Any) -> Any:
    return lambda text: pipe.tokenizer(text, add_special_tokens=False).input_ids


def test_canvas_embeddings_are_the_bags_of_every_layer(pipe: Any) -> None:
    enc = encode_canvas(pipe, CANVAS)
    expected_bags = bag_canvas(CANVAS, encode=_tokenize(pipe))
    counts = [len(layer.bags) for layer in expected_bags]
    assert [len(layer.bags) for layer in enc.layers] == counts
    assert enc.prompt_embeds.shape[:2] == (1, 77 * sum(counts))
    dim = 32 if hasattr(pipe, "text_encoder_2") else 16
    assert enc.prompt_embeds.shape[2] == dim
    assert np.bincount(enc.token_layer).tolist() == [77 * c for c in counts]
    layers = conditions(CANVAS)
    for index, layer in enumerate(layers):
        assert (enc.masks[index] == layer.mask(90, 90)).all()
    assert enc.masks[0].all()  # the global layer covers the image


def test_each_bag_is_the_text_encoders_output_for_its_text(sd15: Any) -> None:
    """The first 77 tokens are diffusers' own encoding of the global layer's first bag."""
    enc = encode_canvas(sd15, CANVAS)
    text = enc.layers[0].bags[0].text
    expected, _ = sd15.encode_prompt(text, "cpu", 1, False)
    torch.testing.assert_close(enc.prompt_embeds[:, :77], expected)


def test_sdxl_pooled_embedding_is_the_global_layers_first_bag(sdxl: Any) -> None:
    enc = encode_canvas(sdxl, CANVAS)
    text = enc.layers[0].bags[0].text
    prompt_embeds, _, pooled, _ = sdxl.encode_prompt(
        prompt=text, device="cpu", do_classifier_free_guidance=False
    )
    assert enc.pooled_prompt_embeds is not None
    torch.testing.assert_close(enc.pooled_prompt_embeds, pooled)
    torch.testing.assert_close(enc.prompt_embeds[:, :77], prompt_embeds)


def _run(pipe: Any, **kwargs: Any) -> torch.Tensor:
    return pipe(
        **kwargs,
        num_inference_steps=2,
        output_type="latent",
        generator=torch.Generator().manual_seed(0),
    ).images


@pytest.mark.parametrize("guidance", [5.0, 1.0])
def test_the_pipeline_runs_regionally_and_restores_its_processors(
    pipe: Any, guidance: float
) -> None:
    before = dict(pipe.unet.attn_processors)
    plain = _run(pipe, prompt="a cat", guidance_scale=guidance)
    with regional_pipeline(
        pipe, CANVAS, negative_prompt="blurry", guidance_scale=guidance
    ) as kwargs:
        cross = cross_attention_names(pipe.unet)
        assert all(isinstance(pipe.unet.attn_processors[n], RegionalAttnProcessor) for n in cross)
        assert ("negative_prompt_embeds" in kwargs) == (guidance > 1)
        regional = _run(pipe, **kwargs)
    assert regional.shape == (1, 4, 16, 16)
    assert torch.isfinite(regional).all()
    assert pipe.unet.attn_processors == before
    # Default behaviour is back: the same call gives the same latents as before.
    torch.testing.assert_close(_run(pipe, prompt="a cat", guidance_scale=guidance), plain)


def test_non_square_images_and_a_long_negative(pipe: Any) -> None:
    negative = ", ".join(f"blue dog number {i}" for i in range(40))
    with regional_pipeline(pipe, CANVAS, negative_prompt=negative, height=24, width=40) as kwargs:
        positive, neg = kwargs["prompt_embeds"], kwargs["negative_prompt_embeds"]
        assert positive.shape == neg.shape and positive.shape[1] > 77 * 3
        out = _run(pipe, **kwargs, num_images_per_prompt=2)
    assert out.shape == (2, 4, 12, 20)
    assert torch.isfinite(out).all()


def test_the_regional_call_differs_from_the_same_embeddings_unmasked(sd15: Any) -> None:
    """The processor changes the result: the masks and scales are really applied."""
    with regional_pipeline(sd15, CANVAS, guidance_scale=1.0) as kwargs:
        regional = _run(sd15, **kwargs)
    unmasked = _run(sd15, **kwargs)
    assert not torch.allclose(regional, unmasked)


def test_processors_come_back_after_an_error(sd15: Any) -> None:
    before = dict(sd15.unet.attn_processors)
    with (
        pytest.raises(ValueError, match="multiples of 2"),
        regional_pipeline(sd15, CANVAS, height=33),
    ):
        pass
    with pytest.raises(RuntimeError, match="stop"), regional_pipeline(sd15, CANVAS):
        raise RuntimeError("stop")
    assert sd15.unet.attn_processors == before


def test_clip_stack_reads_both_pipelines(sd15: Any, sdxl: Any) -> None:
    assert not ClipStack.from_pipe(sd15).xl
    assert ClipStack.from_pipe(sdxl).xl
    with pytest.raises(ValueError, match="no CLIP tokenizer"):
        ClipStack.from_pipe(object())


def test_img2img_from_the_colour_composition(sd15: Any) -> None:
    """Omost's start: the composition picture as the init image, strength near 1."""
    from diffusers import StableDiffusionImg2ImgPipeline
    from PIL import Image

    from presample.canvas import composition

    img2img = StableDiffusionImg2ImgPipeline(**sd15.components)
    picture = Image.fromarray(composition(CANVAS)).resize((40, 24), Image.NEAREST)
    with regional_pipeline(img2img, CANVAS, height=24, width=40) as kwargs:
        assert "height" not in kwargs  # img2img takes its size from the image
        out = img2img(
            **kwargs, image=picture, strength=0.97, num_inference_steps=3, output_type="latent"
        ).images
    assert out.shape == (1, 4, 12, 20)
    assert torch.isfinite(out).all()
