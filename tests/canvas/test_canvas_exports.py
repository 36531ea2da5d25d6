"""Exports for other regional renderers: ComfyUI, Regional Prompter, GLIGEN, MultiDiffusion.

The seed answers (dragon, dinosaur) share one layout; on the 90 grid its boxes
(top, bottom, left, right), far to near, are: region 2 sky (0, 45, 0, 90),
region 1 beast (10, 80, 10, 80), region 0 warriors (15, 75, 0, 60), region 3
ground (45, 90, 0, 90). Expected numbers below are worked out from those boxes.
"""

from __future__ import annotations

import colorsys
import json
from pathlib import Path

import pytest
from conftest import run_cli as run

from presample.canvas import box_mask, conditions, parse_canvas
from presample.canvas.exports import (
    WHITE,
    area_percentage,
    comfyui_conditioning,
    gligen,
    layer_text,
    mask_size,
    multidiffusion,
    overlap_masks,
    regional_prompter,
    regional_prompter_colour,
    save_mask_image,
)

from .answers import FIXTURES, GLOBAL, INIT, SEED_ANSWERS, answer, fenced, region, seed_answer

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")

DRAGON = str(FIXTURES / SEED_ANSWERS[0])
ORDER = [None, 2, 1, 0, 3]
# What each region keeps when nearer regions cut theirs out (90-grid cells):
# ground keeps its box; warriors rows 15-45 x cols 0-60; beast rows 10-15 x 10-80 plus
# rows 15-45 x 60-80; sky the rest of the top half.
OVERLAY_CELLS = {3: 45 * 90, 0: 30 * 60, 1: 5 * 70 + 30 * 20, 2: 45 * 90 - 30 * 60 - 950}
# The three RP colours of the first regions, as Regional Prompter's mask tab paints them.
RP_COLOURS = [(128, 64, 64), (64, 128, 128), (96, 128, 64), (96, 64, 128)]
# The small answers' texts after Omost's sentence normalisation.
COMMON = "A cat and a dog. The cat sleeps. The dog watches. cat, dog, sofa."
DETAILS = "It is orange. It is asleep. cat, orange. Calm. Photo. Sharp."


def seed(name: str = SEED_ANSWERS[0]):  # type: ignore[no-untyped-def]
    return parse_canvas(seed_answer(name))



# --- ComfyUI ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SEED_ANSWERS)
def test_comfyui_overlay_gives_every_pixel_one_region(name: str) -> None:
    data = comfyui_conditioning(seed(name), 900, 900, resolution="pixel")
    assert [layer.region for layer in data.layers] == ORDER
    assert (data.mask_width, data.mask_height) == (900, 900)
    masks = np.stack([layer.mask for layer in data.layers])
    assert masks.dtype == np.float32 and set(np.unique(masks)) <= {0.0, 1.0}
    assert (masks[0] == 1).all()  # the global layer covers everything
    # Never two regions on one pixel; together they cover the whole image here.
    assert (masks[1:].sum(axis=0) == 1).all()
    for layer in data.layers[1:]:
        assert layer.mask.sum() == OVERLAY_CELLS[layer.region] * 100  # 10 x 10 pixels per cell
    # The nearest region is not cut at all: its mask is its box.
    nearest = data.layers[-1]
    assert (nearest.mask.astype(bool) == box_mask(nearest.box, 900, 900)).all()
    assert [layer.strength for layer in data.layers] == [0.2, 0.8, 0.8, 0.8, 0.8]


def test_comfyui_latent_masks_follow_the_boxes() -> None:
    data = comfyui_conditioning(seed(), 1024, 768)  # latent, overlay by default
    assert (data.mask_width, data.mask_height) == (128, 96)
    assert all(layer.mask.shape == (96, 128) for layer in data.layers)
    ground, sky = data.layers[4], data.layers[1]
    assert ground.mask.sum() == box_mask(ground.box, 128, 96).sum() == 128 * 48
    assert sky.mask[:48].sum() + sky.mask[48:].sum() == sky.mask.sum()
    assert sky.mask[48:].sum() == 0  # the ground owns the lower half
    assert mask_size(1000, 1001) == (125, 125)  # ComfyUI floors the latent size


def test_comfyui_average_sums_to_one_where_covered() -> None:
    data = comfyui_conditioning(seed(), 90, 90, resolution="pixel", overlap="average")
    regions = np.stack([layer.mask for layer in data.layers[1:]])
    assert np.allclose(regions.sum(axis=0), 1.0, atol=1e-6)
    by_region = {layer.region: layer.mask for layer in data.layers[1:]}
    assert by_region[2][5, 45] == 1.0  # only the sky there
    assert by_region[3][60, 30] == pytest.approx(1 / 3)  # beast, warriors and ground
    assert by_region[0][60, 30] == pytest.approx(1 / 3)
    assert by_region[2][30, 30] == pytest.approx(1 / 3)  # sky, beast, warriors
    assert by_region[1][30, 85] == 0.0
    # Each mask spreads exactly its box's cells, divided by how many share each cell.
    total = sum(float(m.sum(dtype=np.float64)) for m in by_region.values())
    assert total == pytest.approx(8100, abs=1e-3)
    assert (data.layers[0].mask == 1).all()


def test_uncovered_pixels_belong_to_no_region() -> None:
    canvas = parse_canvas(answer())  # a cat (cols 0-40) and a dog (cols 50-90), rows 20-70
    for overlap in ("overlay", "average"):
        masks = overlap_masks(conditions(canvas), overlap)  # type: ignore[arg-type]
        assert masks[1:].sum() == 2 * 50 * 40
        assert masks[1:, 5, 45].sum() == 0 and masks[1:, 40:, 40:50].sum() == 0
        assert masks[1:].sum(axis=0).max() == 1.0


def test_comfyui_overlap_of_two_answer_regions() -> None:
    near = region("A cat.", "in the center", distance="1.0")  # rows 20-70, cols 20-70
    far = region("A dog.", "in the center", "slightly to the right", distance="4.0")  # 30-80
    data = comfyui_conditioning(parse_canvas(fenced(INIT, GLOBAL, near, far)), 90, 90,
                                resolution="pixel")  # fmt: skip
    dog, cat = data.layers[1].mask, data.layers[2].mask
    assert (data.layers[1].region, data.layers[2].region) == (1, 0)
    assert cat.sum() == 2500 and dog.sum() == 2500 - 50 * 40  # cols 70-80 only
    avg = comfyui_conditioning(parse_canvas(fenced(INIT, GLOBAL, near, far)), 90, 90,
                               resolution="pixel", overlap="average")  # fmt: skip
    dog, cat = avg.layers[1].mask, avg.layers[2].mask
    assert cat.sum() == pytest.approx(500 + 2000 / 2) and dog.sum() == pytest.approx(1500)
    assert cat[45, 45] == dog[45, 45] == 0.5


def test_comfyui_area_percentage_text_and_weights() -> None:
    data = comfyui_conditioning(seed(), 512, 512, global_weight=0.5, region_weight=1.0)
    assert [layer.strength for layer in data.layers] == [0.5, 1.0, 1.0, 1.0, 1.0]
    assert data.layers[0].area_percentage == (1.0, 1.0, 0.0, 0.0)
    assert data.layers[1].area_percentage == (1.0, 0.5, 0.0, 0.0)
    assert data.layers[2].area_percentage == (70 / 90, 70 / 90, 10 / 90, 10 / 90)
    assert data.layers[3].area_percentage == area_percentage(data.layers[3].box)
    assert data.layers[3].area_percentage == (60 / 90, 60 / 90, 0.0, 15 / 90)
    assert data.layers[2].text.startswith(
        "A fierce battle between warriors and a dragon. A mighty dragon. The dragon is a"
    )
    layers = conditions(seed())
    assert data.layers[0].text == " ".join([*layers[0].prefixes, *layers[0].suffixes])
    short = comfyui_conditioning(seed(), 512, 512, global_prefix=False)
    assert short.layers[2].text.startswith("A mighty dragon. The dragon is a")
    assert short.layers[0].text == data.layers[0].text
    doc = data.to_dict(["a.png", "b.png", "c.png", "d.png", "e.png"])
    assert doc["layers"][2]["area_percentage"]["x"] == 10 / 90
    assert doc["layers"][4]["mask_file"] == "e.png" and doc["global_weight"] == 0.5
    assert doc["layers"][4]["mask_sum"] == 64 * 32


def test_comfyui_text_escapes_brackets_and_drops_empty_fields() -> None:
    text = fenced(
        INIT,
        GLOBAL,
        region("A cat (red).").replace("atmosphere='Calm.'", "atmosphere=''"),
    )
    data = comfyui_conditioning(parse_canvas(text), 64, 64)
    assert data.layers[1].text == (
        "A cat and a dog. A cat \\(red\\). It is orange. It is asleep. cat, orange. Photo. Sharp."
    )
    raw = comfyui_conditioning(parse_canvas(text), 64, 64, escape_text=False)
    assert "A cat (red)." in raw.layers[1].text
    # Omost keeps the empty atmosphere as "." in its condition; the text drops it.
    assert conditions(parse_canvas(text))[1].suffixes[3] == "."
    assert layer_text(conditions(parse_canvas(text))[1]).count(" . ") == 0


def test_comfyui_bags_are_omosts() -> None:
    pytest.importorskip("instant_clip_tokenizer")
    from presample.canvas import bag_canvas

    data = comfyui_conditioning(seed(), 512, 512, bags=True)
    expected = bag_canvas(seed())
    assert len(data.layers[0].bags or ()) == 4
    for layer, encoded in zip(data.layers, expected, strict=True):
        assert layer.bags == tuple(bag.text for bag in encoded.bags)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"overlap": "max"}, "overlap must be 'overlay' or 'average'"),
        ({"resolution": "vae"}, "resolution must be 'latent' or 'pixel'"),
        ({"global_weight": -0.1}, "global_weight must be a finite number >= 0"),
        ({"region_weight": float("nan")}, "region_weight must be a finite number >= 0"),
        ({"latent_factor": 0}, "latent_factor must be a positive integer"),
    ],
)
def test_comfyui_bad_options(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        comfyui_conditioning(seed(), 512, 512, **kwargs)  # type: ignore[arg-type]


def test_sizes_are_checked() -> None:
    with pytest.raises(ValueError, match="width must be a positive integer"):
        comfyui_conditioning(seed(), 0, 512)
    with pytest.raises(ValueError, match="has no latent"):
        comfyui_conditioning(seed(), 4, 512)
    with pytest.raises(ValueError, match="height must be a positive integer"):
        regional_prompter(seed(), 10, -1)
    with pytest.raises(ValueError, match="width must be a positive integer"):
        multidiffusion(seed(), True, 10)  # type: ignore[arg-type]
    # numpy integers are sizes too, and come out as plain ints for JSON.
    data = comfyui_conditioning(seed(), np.int64(64), np.int32(32))
    assert json.loads(json.dumps(data.to_dict()))["mask_height"] == 4


# --- Regional Prompter ----------------------------------------------------------------------


def test_regional_prompter_prompt_exactly() -> None:
    dog = region("A dog.", "on the right", distance="3.0", color="brown")
    rp = regional_prompter(parse_canvas(fenced(INIT, GLOBAL, region(), dog)), 90, 90)
    assert rp.prompt == (
        f"{COMMON} ADDCOMM\nA dog. {DETAILS}\nBREAK\nA cat. {DETAILS}"
    )  # the dog is farther: first section, first colour
    assert rp.common == COMMON
    assert [(r.index, r.region, r.colour) for r in rp.regions] == [
        (0, 1, RP_COLOURS[0]),
        (1, 0, RP_COLOURS[1]),
    ]


def test_regional_prompter_neutralises_keywords_and_escapes() -> None:
    cat = region("A cat BREAK AND (red) ADDCOMM.")
    rp = regional_prompter(parse_canvas(fenced(INIT, GLOBAL, cat)), 90, 90)
    assert rp.prompt == f"{COMMON} ADDCOMM\nA cat break and \\(red\\) addcomm. {DETAILS}"
    assert rp.prompt.count("BREAK") == 0 and rp.prompt.count("ADDCOMM") == 1


def test_regional_prompter_without_regions_is_the_common_text() -> None:
    rp = regional_prompter(parse_canvas(fenced(INIT, GLOBAL)), 32, 16)
    assert rp.prompt == COMMON and rp.regions == ()
    assert rp.image.shape == (16, 32, 3) and (rp.image == WHITE).all()


@pytest.mark.parametrize("name", SEED_ANSWERS)
def test_regional_prompter_mask_paints_near_over_far(name: str) -> None:
    canvas = seed(name)
    rp = regional_prompter(canvas, 900, 720)
    assert rp.image.dtype == np.uint8 and rp.image.shape == (720, 900, 3)
    assert [r.region for r in rp.regions] == ORDER[1:]
    assert [r.colour for r in rp.regions] == RP_COLOURS
    # At each region's centre: the colour of the nearest region whose box holds it.
    for r in rp.regions:
        row, col = (r.box.top + r.box.bottom) // 2, (r.box.left + r.box.right) // 2
        holders = [o for o in rp.regions if o.box.top <= row < o.box.bottom
                   and o.box.left <= col < o.box.right]  # fmt: skip
        pixel = rp.image[row * 8 + 4, col * 10 + 5]  # the middle of that 90-grid cell
        assert tuple(pixel) == holders[-1].colour
    # Sky centre (22, 45): sky, beast and warriors cover it; the warriors are nearest.
    assert tuple(rp.image[22 * 8 + 4, 45 * 10 + 5]) == RP_COLOURS[2]
    assert tuple(rp.image[5 * 8, 45 * 10]) == RP_COLOURS[0]  # only the sky
    assert tuple(rp.image[12 * 8, 45 * 10]) == RP_COLOURS[1]  # the beast over the sky
    assert tuple(rp.image[700, 450]) == RP_COLOURS[3]  # the ground
    colours = {tuple(c) for c in rp.image.reshape(-1, 3)}
    assert colours == set(RP_COLOURS)  # the regions cover the whole picture: no white


def test_regional_prompter_leaves_uncovered_pixels_white(tmp_path: Path) -> None:
    rp = regional_prompter(parse_canvas(answer()), 180, 90)
    assert tuple(rp.image[5, 90]) == WHITE
    assert tuple(rp.image[45, 40]) == RP_COLOURS[0] and tuple(rp.image[45, 140]) == RP_COLOURS[1]
    path = save_mask_image(rp, tmp_path / "mask.png")
    with Image.open(path) as image:
        assert image.mode == "RGB" and image.size == (180, 90)
        assert (np.asarray(image) == rp.image).all()


def test_regional_prompter_colours_survive_its_upload_check() -> None:
    # Regional Prompter keeps an uploaded colour only when its saturation and value
    # are within 0.49-0.51, then snaps them to 0.5 and rebuilds the colour; region k
    # is the k-th colour of that sequence. Every colour we paint must come back as is.
    colours = [regional_prompter_colour(k) for k in range(64)]
    assert colours[:4] == RP_COLOURS and len(set(colours)) == 64
    assert regional_prompter_colour(4) == (128, 112, 64)  # hue 1/8
    for colour in colours:
        h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in colour))
        assert 0.49 <= s <= 0.51 and 0.49 <= v <= 0.51
        assert tuple(int(x * 256) for x in colorsys.hsv_to_rgb(h, 0.5, 0.5)) == colour
    with pytest.raises(ValueError):
        regional_prompter_colour(-1)


# --- GLIGEN and MultiDiffusion ------------------------------------------------------------


def test_gligen_phrases_and_boxes() -> None:
    for name, beast in zip(SEED_ANSWERS, ("dragon", "dinosaur"), strict=True):
        canvas = seed(name)
        g = gligen(canvas)
        assert g.prompt == f"A fierce battle between warriors and a {beast}."
        assert g.phrases == (
            "A stormy sky with flashes of lightning",
            f"A mighty {beast}",
            "A group of fierce warriors",
            "A debris-covered battlefield",
        )
        assert g.regions == (2, 1, 0, 3)
        assert g.boxes == (
            (0 / 90, 0 / 90, 90 / 90, 45 / 90),
            (10 / 90, 10 / 90, 80 / 90, 80 / 90),
            (0 / 90, 15 / 90, 60 / 90, 75 / 90),
            (0 / 90, 45 / 90, 90 / 90, 90 / 90),
        )
        doc = g.to_dict()
        assert doc["gligen_boxes"][2] == [0.0, 1 / 6, 2 / 3, 75 / 90]
        assert json.loads(json.dumps(doc)) == doc


def test_multidiffusion_masks() -> None:
    prompts = multidiffusion(seed(), 180, 180)
    assert [p.kind for p in prompts] == ["background", "region", "region", "region", "region"]
    assert [p.region for p in prompts] == ORDER
    assert prompts[0].mask.sum() == 0  # the seed's regions cover everything
    for p in prompts[1:]:
        assert p.box is not None and p.mask.dtype == bool
        assert p.mask.sum() == p.box.area * 4 and (p.mask == box_mask(p.box, 180, 180)).all()
    two = multidiffusion(parse_canvas(answer()), 90, 90)
    union = two[1].mask | two[2].mask
    assert (two[0].mask == ~union).all() and two[0].mask.sum() == 8100 - 2 * 2000
    assert two[0].text == COMMON and two[1].text == f"A cat and a dog. A cat. {DETAILS}"


# --- CLI --------------------------------------------------------------------------------------


def test_cli_export_comfyui(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "comfy"
    code, stdout, err = run(capsys, "canvas", "export", DRAGON, "--format", "comfyui",
                            "-o", str(out), "--size", "256x128")  # fmt: skip
    assert code == 0 and err == ""
    assert stdout == f"wrote 6 files to {out} (comfyui, 256x128)\n"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["00_global.png", "01_region2.png", "02_region1.png", "03_region0.png",
                     "04_region3.png", "comfyui.json"]  # fmt: skip
    doc = json.loads((out / "comfyui.json").read_text())
    assert (doc["mask_width"], doc["mask_height"]) == (32, 16)
    assert doc["overlap"] == "overlay" and doc["global_weight"] == 0.2
    assert [layer["region"] for layer in doc["layers"]] == ORDER
    assert doc["layers"][1]["mask_file"] == "01_region2.png"
    with Image.open(out / "04_region3.png") as image:
        assert image.mode == "L" and image.size == (32, 16)
        ground = np.asarray(image)
    assert (ground[8:] == 255).all() and (ground[:8] == 0).all()


def test_cli_export_comfyui_average_pixel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "avg"
    code, _, _ = run(capsys, "canvas", "export", DRAGON, "--format", "comfyui", "-o", str(out),
                     "--size", "90", "--resolution", "pixel", "--overlap", "average",
                     "--region-weight", "1")  # fmt: skip
    assert code == 0
    doc = json.loads((out / "comfyui.json").read_text())
    assert doc["region_weight"] == 1.0 and doc["layers"][1]["strength"] == 1.0
    with Image.open(out / "04_region3.png") as image:
        ground = np.asarray(image)
    assert ground[60, 30] == 85 and ground[85, 85] == 255  # 1/3 and 1


def test_cli_export_regional_prompter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rp"
    code, stdout, _ = run(capsys, "canvas", "export", DRAGON, "--format", "regional-prompter",
                          "-o", str(out), "--size", "180x90")  # fmt: skip
    assert code == 0 and stdout == f"wrote 3 files to {out} (regional-prompter, 180x90)\n"
    assert sorted(p.name for p in out.iterdir()) == [
        "mask.png",
        "prompt.txt",
        "regional_prompter.json",
    ]
    doc = json.loads((out / "regional_prompter.json").read_text())
    prompt = (out / "prompt.txt").read_text()
    assert prompt == doc["prompt"] + "\n" and prompt.count("\nBREAK\n") == 3
    assert prompt.startswith("A fierce battle between warriors and a dragon. In this intense")
    assert "\nBREAK\nA mighty dragon. The dragon is" in prompt
    assert [r["colour_hex"] for r in doc["regions"]] == ["#804040", "#408080", "#608040",
                                                         "#604080"]  # fmt: skip
    with Image.open(out / "mask.png") as image:
        pixels = np.asarray(image)
    assert tuple(pixels[80, 90]) == RP_COLOURS[3] and tuple(pixels[2, 90]) == RP_COLOURS[0]


def test_cli_export_gligen_and_multidiffusion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, _ = run(capsys, "canvas", "export", DRAGON, "--format", "gligen",
                          "-o", str(tmp_path / "g"))  # fmt: skip
    assert code == 0 and stdout == f"wrote 1 file to {tmp_path / 'g'} (gligen)\n"
    doc = json.loads((tmp_path / "g" / "gligen.json").read_text())
    assert doc["gligen_phrases"][1] == "A mighty dragon"
    assert doc["gligen_boxes"][1] == [10 / 90, 10 / 90, 80 / 90, 80 / 90]
    code, _, _ = run(capsys, "canvas", "export", DRAGON, "--format", "multidiffusion",
                     "-o", str(tmp_path / "m"), "--size", "90")  # fmt: skip
    assert code == 0
    doc = json.loads((tmp_path / "m" / "multidiffusion.json").read_text())
    assert [p["mask_file"] for p in doc["prompts"]] == [
        "00_background.png", "01_region2.png", "02_region1.png", "03_region0.png",
        "04_region3.png"]  # fmt: skip
    assert [p["mask_sum"] for p in doc["prompts"]] == [0, 4050, 4900, 3600, 4050]


def test_cli_export_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "canvas", "export", DRAGON, "--format", "comfyui",
                       "-o", str(tmp_path), "--global-weight", "-1")  # fmt: skip
    assert code == 2
    assert err == "presample: error: --global-weight must be a finite number >= 0, got -1.0\n"
    code, _, err = run(capsys, "canvas", "export", DRAGON, "--format", "comfyui",
                       "-o", str(tmp_path), "--size", "4")  # fmt: skip
    assert code == 2 and err == "presample: error: --size: each side must be at least 8 for " \
        "latent masks\n"  # fmt: skip
    code, _, err = run(capsys, "canvas", "export", DRAGON, "--format", "svg", "-o", str(tmp_path))
    assert code == 2 and "invalid choice: 'svg'" in err
    bad = tmp_path / "bad.md"
    bad.write_text(answer("import os"))
    code, out, err = run(capsys, "canvas", "export", str(bad), "--format", "gligen",
                         "-o", str(tmp_path / "x"))  # fmt: skip
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "import statements are not allowed" in err and not (tmp_path / "x").exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run(capsys, "canvas", "export", DRAGON, "--format", "gligen",
                       "-o", str(blocker / "sub"))  # fmt: skip
    assert code == 2 and err.startswith(f"presample: error: {blocker / 'sub'}: ")
    assert err.count("\n") == 1
