"""``presample canvas ...`` in-process: output, files, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli as run

from .answers import FIXTURES, GLOBAL, INIT, SEED_ANSWERS, answer, fenced, region, seed_answer

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")

DRAGON = str(FIXTURES / SEED_ANSWERS[0])




def test_parse_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "canvas", "parse", DRAGON)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "canvas: 4 region(s), code from answer line 2"
    assert lines[1] == "global: A fierce battle between warriors and a dragon.  [darkslategray]"
    assert "  1  region 2  rows 0-45 cols 0-90  distance 10  on the top, no offset, " in out
    assert "     A mighty dragon." in out


def test_parse_json_with_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("instant_clip_tokenizer")
    code, out, _ = run(capsys, "canvas", "parse", DRAGON, "--json", "--tokens")
    assert code == 0
    doc = json.loads(out)
    assert doc["canvas"]["regions"][1]["description"] == "A mighty dragon."
    assert [layer["region"] for layer in doc["layers"]] == [None, 2, 1, 0, 3]
    assert doc["layers"][1]["box"] == [0, 45, 0, 90]
    assert [b["tokens"] for b in doc["layers"][0]["bags"]] == [67, 74, 57, 68]
    assert doc["problems"] == [] and doc["repairs"] == []
    assert doc["region_lines"] == [21, 42, 63, 83]


def test_parse_error_is_one_line_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text(answer("import os"))
    code, out, err = run(capsys, "canvas", "parse", str(bad))
    assert code == 1 and out == ""
    assert err == (
        f"presample: error: {bad}: line 37, column 1: import statements are not allowed "
        "('import')\n"
    )


def test_parse_lenient_warns_and_reports_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "a.md"
    path.write_text(fenced(INIT, GLOBAL, region(location="nowhere at all"), region("A dog.")))
    code, out, err = run(capsys, "canvas", "parse", str(path), "--lenient")
    assert code == 0
    assert err == (
        f"presample: warning: {path}: line 12, column 14: location 'nowhere at all' is not "
        "close to any allowed value\n"
    )
    assert "canvas: 1 region(s)" in out
    code, out, err = run(capsys, "canvas", "parse", str(path), "--lenient", "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["problems"] == [
        {"line": 12, "column": 14,
         "message": "location 'nowhere at all' is not close to any allowed value"}
    ]  # fmt: skip


def test_parse_from_stdin_and_missing_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import sys

    fake = io.TextIOWrapper(io.BytesIO(seed_answer(SEED_ANSWERS[1]).encode()), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", fake)
    code, out, _ = run(capsys, "canvas", "parse", "-")
    assert code == 0 and "dinosaur" in out
    code, out, err = run(capsys, "canvas", "parse", "/nonexistent/answer.md")
    assert code == 2 and err == "presample: error: /nonexistent/answer.md: no such file\n"


def test_layout_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_png = tmp_path / "layout.png"
    code, out, err = run(capsys, "canvas", "layout", DRAGON, "-o", str(out_png))
    assert code == 0 and err == ""
    assert out == f"wrote {out_png} (720x720, 4 regions)\n"
    with Image.open(out_png) as image:
        assert image.size == (720, 720) and image.mode == "RGB"
        pixels = np.asarray(image)
    # Away from outlines and labels the picture is the composition, upscaled 8x.
    from presample.canvas import composition, parse_canvas

    small = composition(parse_canvas(seed_answer(SEED_ANSWERS[0])))
    assert pixels[700, 360].tolist() == small[87, 45].tolist()
    assert pixels[300, 300].tolist() == small[37, 37].tolist()
    # The box of the stormy sky (rows 0-45) is outlined in black at its bottom edge.
    assert pixels[359, 700].tolist() == [0, 0, 0]


def test_masks_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "masks"
    code, out, _ = run(capsys, "canvas", "masks", DRAGON, "-o", str(out_dir), "--size", "128x64")
    assert code == 0 and out == f"wrote 7 files to {out_dir} (128x64)\n"
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == ["00_global.png", "01_region2.png", "02_region1.png", "03_region0.png",
                     "04_region3.png", "composition.png", "layers.json"]  # fmt: skip
    with Image.open(out_dir / "01_region2.png") as mask:
        assert mask.size == (128, 64) and mask.mode == "L"
        m = np.asarray(mask)
    assert (m[:32] == 255).all() and (m[32:] == 0).all()  # the sky: the top half
    doc = json.loads((out_dir / "layers.json").read_text())
    assert doc["width"] == 128 and doc["height"] == 64
    assert doc["layers"][1]["file"] == "01_region2.png"
    assert doc["layers"][1]["box_normalised"] == [0.0, 0.0, 1.0, 0.5]
    assert doc["layers"][0]["prefixes"] == ["A fierce battle between warriors and a dragon."]
    with Image.open(out_dir / "composition.png") as comp:
        assert comp.size == (128, 64)


@pytest.mark.parametrize("size", ["0", "big", "9000x10", "10x"])
def test_bad_size_is_a_usage_error(size: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(capsys, "canvas", "masks", DRAGON, "-o", str(tmp_path), "--size", size)
    assert code == 2 and err.startswith("presample: error: --size") and err.count("\n") == 1


def test_missing_output_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "canvas", "layout", DRAGON)
    assert code == 2 and "-o/--output" in err
