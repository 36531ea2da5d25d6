"""The canvas nodes: composition IMAGE, MASK stacks and regional conditioning from a CLIP."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
pytest.importorskip("instant_clip_tokenizer")

from presample.canvas import bag_canvas, composition  # noqa: E402
from presample.canvas.layout import resize_nearest_exact  # noqa: E402
from presample.formatting import Target, escape  # noqa: E402
from presample.integrations import comfyui  # noqa: E402

ANSWER = """Here is the canvas:

```python
canvas = Canvas()
canvas.set_global_description(
    description='A cat and a dog in a living room.',
    detailed_descriptions=['The cat sleeps on the sofa.', 'The dog (a beagle) watches.'],
    tags='cat, dog, sofa, living room',
    HTML_web_color_name='beige',
)
canvas.add_local_description(
    location='on the left',
    offset='no offset',
    area='a large vertical area',
    distance_to_viewer=3.0,
    description='A sleeping orange cat.',
    detailed_descriptions=['Its fur is orange and fluffy.', 'Its eyes are closed.'],
    tags='cat, orange fur, sleeping',
    atmosphere='Calm and warm.',
    style='Soft photograph.',
    quality_meta='Sharp focus.',
    HTML_web_color_name='orange',
)
canvas.add_local_description(
    location='on the right',
    offset='slightly to the left',
    area='a large vertical area',
    distance_to_viewer=2.0,
    description='A watching beagle.',
    detailed_descriptions=['Its ears are long.', 'It sits upright.'],
    tags='dog, beagle, sitting',
    atmosphere='Alert.',
    style='Soft photograph.',
    quality_meta='Sharp focus.',
    HTML_web_color_name='brown',
)
```
"""

DIM = 8


class FakeClip:
    """ComfyUI's CLIP object API, with deterministic embeddings made from the text."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def tokenize(self, text: str) -> dict[str, list[str]]:
        self.texts.append(text)
        return {"l": [text]}

    @staticmethod
    def embed(text: str) -> tuple[Any, Any]:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(1, 77, DIM, generator=gen), torch.randn(1, DIM, generator=gen)

    def encode_from_tokens(self, tokens: dict[str, list[str]], return_pooled: bool = False):
        cond, pooled = self.embed(tokens["l"][0])
        return (cond, pooled) if return_pooled else cond


@pytest.fixture(scope="module")
def canvas():
    node = comfyui.CanvasParseNode()
    parsed, as_json, problems = node.execute(ANSWER, False)
    assert problems == "" and '"description": "A sleeping orange cat."' in as_json
    return parsed


def test_parse_is_strict_unless_lenient() -> None:
    call = "canvas.add_local_description("
    bad = ANSWER.replace(call, "import os\n" + call, 1)
    with pytest.raises(ValueError, match="import"):
        comfyui.CanvasParseNode().execute(bad, False)
    parsed, _, problems = comfyui.CanvasParseNode().execute(bad, True)
    assert "import" in problems and len(parsed.regions) == 2


def test_composition_is_an_image_tensor(canvas) -> None:
    (image,) = comfyui.CanvasCompositionNode().execute(canvas, 256, 128)
    assert image.shape == (1, 128, 256, 3) and image.dtype == torch.float32
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    expected = resize_nearest_exact(composition(canvas), 256, 128).astype(np.float32) / 255
    assert np.array_equal(image[0].numpy(), expected)


def test_masks_are_one_per_layer(canvas) -> None:
    masks, layers_json = comfyui.CanvasMasksNode().execute(canvas, 256, 128, "overlay", "pixel")
    assert masks.shape == (3, 128, 256) and masks.dtype == torch.float32
    assert bool((masks[0] == 1).all())  # the global layer covers everything
    # Regions far to near: the cat (distance 3) on the left, then the dog on the right.
    cat, dog = masks[1], masks[2]
    assert float(cat[:, :64].mean()) > 0.5 and float(cat[:, 192:].sum()) == 0
    assert float(dog[:, 192:].mean()) > 0.5 and float(dog[:, :64].sum()) == 0
    assert float((cat * dog).sum()) == 0  # overlay: a nearer region owns shared pixels
    latent, _ = comfyui.CanvasMasksNode().execute(canvas, 256, 128, "average", "latent")
    assert latent.shape == (3, 16, 32)
    assert '"global_weight": 0.2' in layers_json


@pytest.mark.parametrize("bags", [True, False])
def test_regional_conditioning_from_a_clip(canvas, bags: bool) -> None:
    clip = FakeClip()
    (conditioning,) = comfyui.CanvasConditioningNode().execute(
        canvas, clip, 256, 128, "overlay", "pixel", 0.25, 0.75, bags
    )
    masks, _ = comfyui.CanvasMasksNode().execute(canvas, 256, 128, "overlay", "pixel")
    assert len(conditioning) == 3
    layers = bag_canvas(canvas)
    for i, (cond, extra) in enumerate(conditioning):
        assert set(extra) == {"pooled_output", "mask", "mask_strength", "set_area_to_bounds"}
        assert extra["mask_strength"] == (0.25 if i == 0 else 0.75)
        assert extra["set_area_to_bounds"] is False
        assert extra["mask"].shape == (1, 128, 256)
        assert torch.equal(extra["mask"][0], masks[i])
        if bags:
            texts = [escape(b.text, Target.COMFYUI) for b in layers[i].bags]
            assert cond.shape == (1, 77 * len(texts), DIM)
            expected = torch.cat([FakeClip.embed(t)[0] for t in texts], dim=1)
            assert torch.equal(cond, expected)
            assert torch.equal(extra["pooled_output"], FakeClip.embed(texts[0])[1])
        else:
            assert cond.shape == (1, 77, DIM)
    if bags:
        # Literal brackets reach ComfyUI's tokenizer escaped, not as a weight.
        assert any("\\(a beagle\\)" in t for t in clip.texts)
        assert len(clip.texts) == sum(len(layer.bags) for layer in layers)


def test_greedy_bag_encode_never_cuts_a_sentence() -> None:
    sentences = [f"Sentence number {i} describes a small detail of the red house by the lake"
                 for i in range(8)]  # fmt: skip
    clip = FakeClip()
    conditioning, bag_text = comfyui.BagEncodeNode().execute(clip, "A house", "\n".join(sentences))
    assert len(conditioning) == 1
    cond, extra = conditioning[0]
    bags = clip.texts
    assert len(bags) > 1 and cond.shape == (1, 77 * len(bags), DIM)
    assert bag_text.split("\n") == bags
    for bag in bags:
        assert bag.startswith("A house.")
    joined = " ".join(bags)
    for s in sentences:
        assert joined.count(s + ".") == 1  # each sentence whole, in exactly one bag
    assert torch.equal(extra["pooled_output"], FakeClip.embed(bags[0])[1])
