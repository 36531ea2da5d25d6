"""Boxes, masks, layer order, the colour composition and conditions, pinned to Omost's own output.

``tests/fixtures/omost/reference.json`` and the ``composition_*.png`` files were
computed once by running Omost's ``lib_omost/canvas.py`` (commit 731e749) on the
two seed transcripts; see the fixture README.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from presample.canvas import (
    FULL,
    Area,
    Box,
    Canvas,
    GlobalDescription,
    Location,
    Offset,
    Region,
    box_mask,
    composition,
    conditions,
    layer_order,
    parse_canvas,
    region_box,
    save_png,
)
from presample.canvas.layout import resize_nearest_exact

from .answers import FIXTURES, SEED_ANSWERS, seed_answer

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")

REFERENCE = json.loads((FIXTURES / "reference.json").read_text(encoding="utf-8"))


def test_spec_box_examples() -> None:
    assert region_box("in the center", "no offset", "a small square area") == Box(20, 70, 20, 70)
    assert region_box("on the left", "no offset", "a large horizontal area") == Box(15, 75, 0, 60)
    assert region_box("on the top", "no offset", "a large horizontal area") == Box(0, 45, 0, 90)


def test_all_729_boxes_match_omost_and_give_661_distinct() -> None:
    boxes = {}
    for key, expected in REFERENCE["boxes_729"].items():
        location, offset, area = key.split("|")
        box = region_box(location, offset, area)
        assert list(box.as_tuple()) == expected, key
        boxes[key] = box
    assert len(boxes) == 729 == len(Location) * len(Offset) * len(Area)
    assert len(set(boxes.values())) == 661


def test_normalised_box() -> None:
    box = region_box(Location.TOP_RIGHT, Offset.LOWER_LEFT, Area.SMALL_VERTICAL)
    assert box == Box(top=0, bottom=55, left=45, right=85)
    assert box.normalised() == (0.5, 0.0, 85 / 90, 55 / 90)
    assert FULL.normalised() == (0.0, 0.0, 1.0, 1.0)
    assert (box.width, box.height, box.area) == (40, 55, 2200)


@pytest.mark.parametrize("name", SEED_ANSWERS)
def test_seed_layout_matches_omost(name: str) -> None:
    ref = REFERENCE["answers"][name]
    canvas = parse_canvas(seed_answer(name))
    rects = [list(region_box(r.location, r.offset, r.area).as_tuple()) for r in canvas.regions]
    assert rects == ref["rects_in_answer_order"]
    assert layer_order(canvas) == ref["layer_order"] == [2, 1, 0, 3]

    image = composition(canvas)
    assert image.shape == (90, 90, 3) and image.dtype == np.uint8
    assert hashlib.sha256(image.tobytes()).hexdigest() == ref["composition_sha256"]
    with Image.open(FIXTURES / ref["composition_png"]) as png:
        assert np.array_equal(np.asarray(png.convert("RGB")), image)
    for where, rgb in ref["composition_pixels"].items():
        y, x = map(int, where.split(","))
        assert image[y, x].tolist() == rgb

    layers = conditions(canvas)
    assert len(layers) == len(ref["conditions"]) == 5
    for layer, expected in zip(layers, ref["conditions"], strict=True):
        assert list(layer.box.as_tuple()) == expected["box"]
        assert list(layer.prefixes) == expected["prefixes"]
        assert list(layer.suffixes) == expected["suffixes"]
    assert layers[0].kind == "global" and layers[0].region is None and layers[0].box == FULL
    assert [c.region for c in layers[1:]] == ref["layer_order"]


def test_composition_blend_values_by_hand() -> None:
    # white background, a red region over it, a blue region nearer over the red one.
    canvas = Canvas(
        global_description=GlobalDescription(description="x", color="white"),
        regions=[
            Region(location="in the center", offset="no offset", area="a small square area",
                   distance_to_viewer=1, description="near", color="blue"),
            Region(location="on the left", offset="no offset", area="a small square area",
                   distance_to_viewer=5, description="far", color="red"),
        ],
    )  # fmt: skip
    image = composition(canvas)
    assert image[0, 89].tolist() == [255, 255, 255]  # background only
    # far red over white: 0.7*255 + 0.3*255 = 255 (float32 rounding may land just under)
    assert image[45, 5].tolist() == [255, 76, 76]  # 0.7*0 + 0.3*255 = 76.5 -> 76
    # blue over red over white: 0.7*255 + 0.3*76.5 = 201.45; 0.3*255=76.5 -> 0.3*76.5=22.95
    assert image[45, 30].tolist() == [int(np.float32(0.3 * 255)), 22, 201]


def test_masks_cover_the_box_at_any_resolution() -> None:
    box = region_box("on the left", "no offset", "a large horizontal area")  # rows 15-75, cols 0-60
    grid = box_mask(box)
    assert grid.dtype == bool and grid.shape == (90, 90)
    assert grid.sum() == 60 * 60
    assert grid[15, 0] and grid[74, 59] and not grid[14, 0] and not grid[15, 60]
    big = box_mask(box, 720, 720)
    assert big.shape == (720, 720) and big.sum() == 480 * 480
    assert big[120:600, 0:480].all()
    wide = box_mask(box, 128, 64)
    assert wide.shape == (64, 128)
    # nearest-exact: output pixel i samples floor((i + 0.5) * 90 / size)
    cols = [int((i + 0.5) * 90 / 128) for i in range(128)]
    rows = [int((j + 0.5) * 90 / 64) for j in range(64)]
    expected = np.array([[15 <= r < 75 and c < 60 for c in cols] for r in rows])
    assert np.array_equal(wide, expected)
    assert box_mask(FULL, 7, 3).all() and box_mask(FULL, 7, 3).shape == (3, 7)


def test_nearest_exact_matches_torch_definition_on_odd_sizes() -> None:
    source = np.arange(90)
    for size in (1, 2, 3, 45, 89, 90, 91, 97, 128, 1000):
        out = resize_nearest_exact(source.reshape(1, 90), size, 1)[0]
        expected = [min(int((i + 0.5) * 90 / size), 89) for i in range(size)]
        assert out.tolist() == expected, size


def test_mask_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        box_mask(FULL, 0, 10)


def test_layer_order_is_stable_for_equal_distances() -> None:
    canvas = parse_canvas(seed_answer(SEED_ANSWERS[0]))
    # regions 0 and 3 are both at distance 5: the answer's order is kept
    assert layer_order(canvas)[-2:] == [0, 3]


def test_condition_masks_and_dicts() -> None:
    canvas = parse_canvas(seed_answer(SEED_ANSWERS[0]))
    layers = conditions(canvas)
    assert layers[0].mask().all()
    sky = layers[1]
    assert sky.to_dict()["box"] == [0, 45, 0, 90] and sky.to_dict()["region"] == 2
    assert sky.prefixes == (
        "A fierce battle between warriors and a dragon.",
        "A stormy sky with flashes of lightning.",
    )
    assert sky.suffixes[-4:] == (
        sky.suffixes[-4],
        "Chaotic and intense, mirroring the fierce battle below.",
        "Dramatic and turbulent, emphasizing the conflict and tension.",
        "High resolution with dynamic lighting and detailed cloud textures.",
    )
    assert sky.suffixes[-4].startswith("stormy sky, dark clouds") and sky.suffixes[-4][-1] == "."
    mask = sky.mask(64, 64)
    assert mask[:32].all() and not mask[32:].any()


def test_save_png_round_trips(tmp_path) -> None:  # type: ignore[no-untyped-def]
    canvas = parse_canvas(seed_answer(SEED_ANSWERS[1]))
    image = composition(canvas)
    path = save_png(image, tmp_path / "c.png")
    with Image.open(path) as png:
        assert png.size == (90, 90) and np.array_equal(np.asarray(png), image)
    mask_path = save_png(box_mask(FULL, 10, 5), tmp_path / "m.png")
    with Image.open(mask_path) as png:
        assert png.mode == "L" and np.asarray(png).min() == 255
