"""A record in the image: written by the hosts, read back by `presample show`, and
the prompt made again from it."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import run_cli as cli

pytest.importorskip("torch")
PIL = pytest.importorskip("PIL")

from PIL import Image, PngImagePlugin  # noqa: E402

from presample import Presampler, PresampleRequest  # noqa: E402
from presample.integrations import a1111  # noqa: E402
from presample.integrations.comfyui import keep_record  # noqa: E402
from presample.integrations.presampling import Outcome  # noqa: E402
from presample.record import PNG_KEY, read_records  # noqa: E402


def png(path: Path, chunks: dict[str, str]) -> Path:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path




def test_a_comfyui_image_makes_its_prompt_again(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = PresampleRequest(prompt="1girl, scenery", seed=-1, tag_length="very_short",
                               nl_length="very_short")  # fmt: skip
    with Presampler(str(tiny_model_dir)) as p:
        result = p(request)
        model_hash = p.model_hash
    # As the Presample node does, then SaveImage (each extra_pnginfo key, as JSON).
    extra: dict[str, object] = {"workflow": {}}
    keep_record(extra, Outcome(request, result, model_hash))
    image = png(tmp_path / "out.png", {k: json.dumps(v) for k, v in extra.items()})

    (record,), _ = read_records(image)
    assert record.request.seed == result.seed >= 0  # the drawn seed, not -1
    assert record.prompt == result.prompt and record.model_hash == model_hash
    assert len(model_hash) == 12  # the weights were found and hashed

    saved = tmp_path / "req.json"
    code, out, _ = cli(capsys, "show", str(image), "--request", str(saved))
    assert code == 0 and f"seed:    {result.seed}" in out and model_hash in out
    code, out, _ = cli(capsys, "--request", str(saved), "--model", str(tiny_model_dir))
    assert code == 0 and out.strip() == result.prompt


def test_an_a1111_infotext_is_read_back() -> None:
    options = a1111.ScriptOptions(enabled=True, seed=5, tag_length="short",
                                  template="both_tag_first", ban="red hair")  # fmt: skip
    p = SimpleNamespace(extra_generation_params={})
    a1111.record(p, options, [5], ["1girl, (smile:1.2), scenery"], model_hash="0a14621b5b33")
    # A1111 writes each extra parameter as "key: value", JSON-quoting values that
    # hold a comma, a colon or a quote.
    def written(value: object) -> str:
        text = str(value)
        return json.dumps(text) if any(c in text for c in ',:"') else text

    params = ", ".join(
        f"{k}: {written(v)}" for k, v in {"Steps": 20, **p.extra_generation_params}.items()
    )
    text = f"1girl, smile, scenery, tree\nNegative prompt: lowres\n{params}"
    record = a1111.record_from_infotext(text)
    assert record is not None and record.source == "a1111"
    assert record.request.prompt == "1girl, (smile:1.2), scenery" and record.request.seed == 5
    assert record.request.tag_length == "short" and record.request.template == "both_tag_first"
    assert [b.pattern for b in record.request.ban] == ["red hair"]
    assert record.prompt == "1girl, smile, scenery, tree"
    assert record.model == "default" and record.model_hash == "0a14621b5b33"
    assert a1111.record_from_infotext("1girl\nSteps: 20, Sampler: Euler") is None


def test_images_without_a_record_say_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = png(tmp_path / "bare.png", {"parameters": "1girl\nSteps: 20"})
    code, _, err = cli(capsys, "show", str(bare))
    assert code == 2 and "no presample record" in err and err.count("\n") == 1
    broken = png(tmp_path / "broken.png", {PNG_KEY: "{not json"})
    code, _, err = cli(capsys, "show", str(broken))
    assert code == 2 and "not JSON" in err
    (tmp_path / "x.png").write_text("not an image")
    code, _, err = cli(capsys, "show", str(tmp_path / "x.png"))
    assert code == 2 and "not an image" in err and "Traceback" not in err
    code, _, err = cli(capsys, "show", str(tmp_path / "missing.png"))
    assert code == 2 and "no such file" in err
