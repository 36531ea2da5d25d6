"""`presample PROMPT` and `presample run` as a user drives them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from conftest import run_cli as cli

from presample.jobs import JsonlOutput


def _lines(path: Path) -> list[str]:
    # Not str.splitlines(): JSON strings may hold U+2028 and friends, which it splits on.
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line]


def small(model: Path) -> list[str]:
    return ["--model", str(model), "--max-new-tokens", "16", "--tag-length", "very_short",
            "--nl-length", "very_short"]  # fmt: skip


def test_prompt_shorthand_prints_the_prompt(tiny_model_dir: Path, capsys) -> None:
    code, out, err = cli(
        capsys, "1girl, (smile:1.2), <lora:x:0.5>", *small(tiny_model_dir), "--seed", "3"
    )
    assert code == 0
    assert out.startswith("1girl") and "(smile:1.2)" in out and "<lora:x:0.5>" in out
    assert "seed 3" in err
    code, again, _ = cli(
        capsys,
        "generate",
        "1girl, (smile:1.2), <lora:x:0.5>",
        *small(tiny_model_dir),
        "--seed",
        "3",
    )
    assert again == out  # the same prompt for the same seed, with or without "generate"


def test_json_output_and_bans(tiny_model_dir: Path, capsys) -> None:
    code, out, _ = cli(
        capsys,
        "1girl, scenery",
        *small(tiny_model_dir),
        "--json",
        "--seed",
        "1",
        "--ban-category",
        "artist",
        "--ban-regex",
        "^x",
    )
    assert code == 0
    result = json.loads(out)
    assert result["seed"] == 1 and result["tags"]["artist"] == []
    assert not [t for t in result["tags"]["general"] if t.lower().startswith("x")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ban-category", "hair"], "unknown category 'hair'"),
        (["--temperature", "-1"], "temperature must be 0 (greedy) or between"),
        # Would overflow the sampler mid-batch if it got through.
        (["--temperature", "1e-300"], "temperature must be 0 (greedy) or between"),
        (["--top-p", "1e-300"], "top_p must be between"),
        (["--tag-length", "huge"], "invalid choice"),
        (["--tag-prior", "5"], "tag_prior: Input should be less than or equal to 4"),
        (["--tag-prior", "-1"], "tag_prior: Input should be greater than or equal to 0"),
    ],
)
def test_bad_options(tiny_model_dir: Path, capsys, args: list[str], message: str) -> None:
    code, out, err = cli(capsys, "1girl", "--model", str(tiny_model_dir), *args)
    assert code == 2 and out == "" and message in err and "Traceback" not in err


def test_missing_model_is_one_line(capsys) -> None:
    code, _, err = cli(capsys, "1girl", "--model", "/nonexistent/x.gguf")
    assert code == 1 and err.strip() == "presample: error: GGUF file not found: /nonexistent/x.gguf"


def test_batch_run_writes_every_line_and_resumes(
    tiny_model_dir: Path, tmp_path: Path, capsys
) -> None:
    requests = tmp_path / "requests.jsonl"
    lines = [
        json.dumps({"prompt": "1girl, scenery", "seed": 1}),
        json.dumps("a cat on a sofa"),
        "{not json",
        "",
        json.dumps({"prompt": "2boys", "seed": 2, "tag_length": "short"}),
        json.dumps({"prompt": "1girl, (smile"}),
    ]
    requests.write_text("\n".join(lines) + "\n")
    out = tmp_path / "results.jsonl"
    model = [*small(tiny_model_dir)[:2], "--max-new-tokens", "16"]
    code, _, err = cli(
        capsys, "run", str(requests), "-o", str(out), "--seed", "5", "--no-progress", *model
    )
    assert code == 1  # two lines were bad
    rows = {r["line"]: r for r in map(json.loads, _lines(out))}
    assert sorted(rows) == [1, 2, 3, 5, 6]
    assert "not valid JSON" in rows[3]["error"] and "unbalanced" in rows[6]["error"]
    assert rows[1]["result"]["seed"] == 1 and rows[2]["result"]["seed"] == 5
    assert "2 request(s) failed" in err

    # A kill mid-write leaves a torn line: it is cut and that request redone.
    first_two = _lines(out)[:2]
    out.write_text("\n".join(first_two) + '\n{"line": 5, "resu')
    assert set(JsonlOutput(out).answered()) == {json.loads(x)["line"] for x in first_two}
    code, _, _ = cli(
        capsys, "run", str(requests), "-o", str(out), "--seed", "5", "--no-progress", *model
    )
    again = {r["line"]: r for r in map(json.loads, _lines(out))}
    assert sorted(again) == [1, 2, 3, 5, 6]
    assert again[5]["result"] == rows[5]["result"] | {
        "timings": again[5]["result"]["timings"],
        "steps": again[5]["result"]["steps"],
    }
    # Resumed with nothing left, the output still holds the two error rows: exit 1.
    code, _, err = cli(capsys, "run", str(requests), "-o", str(out), "--no-progress", *model)
    assert code == 1 and "nothing to do" in err and "2 of them failed" in err

    # A torn row in the middle (rows after it are good) loses only itself.
    rows_now = _lines(out)
    out.write_text("\n".join([rows_now[0], '{"line": 9, "res', *rows_now[1:]]) + "\n")
    assert set(JsonlOutput(out).answered()) == {1, 2, 3, 5, 6}
    assert _lines(out) == rows_now


def test_run_never_writes_over_a_file_it_did_not_make(tmp_path: Path, capsys) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text(json.dumps("1girl") + "\n")
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"note": "buy milk"}\n{"note": "call mum"}\n')
    before = notes.read_bytes()
    code, _, err = cli(capsys, "run", str(requests), "-o", str(notes), "--no-progress")
    assert code == 2 and "is not the output of 'presample run'" in err
    assert notes.read_bytes() == before


def test_run_says_at_once_when_the_output_folder_is_missing(tmp_path: Path, capsys) -> None:
    # Said before the model loads: the first row's write used to fail after a batch.
    requests = tmp_path / "requests.jsonl"
    requests.write_text(json.dumps("1girl") + "\n")
    out = tmp_path / "no such folder" / "out.jsonl"
    code, _, err = cli(capsys, "run", str(requests), "-o", str(out), "--no-progress")
    assert code == 2 and "the folder" in err and "does not exist" in err
    assert "internal error" not in err


@pytest.mark.parametrize(("flag", "fill"), [([], True), (["--no-tag-floor"], False)])
def test_tag_floor_is_on_unless_turned_off(flag: list[str], fill: bool) -> None:
    from presample.cli import build_parser
    from presample.cli.generate import build_request

    parser, _ = build_parser()
    assert build_request(parser.parse_args(["generate", "1girl", *flag])).fill_tag_length is fill


@pytest.mark.parametrize(("flag", "fill"), [([], True), (["--no-caption-floor"], False)])
def test_caption_floor_is_on_unless_turned_off(flag: list[str], fill: bool) -> None:
    from presample.cli import build_parser
    from presample.cli.generate import build_request

    parser, _ = build_parser()
    assert build_request(parser.parse_args(["generate", "1girl", *flag])).fill_nl_length is fill


@pytest.mark.parametrize(("flag", "count"), [([], True), (["--no-count-tag"], False)])
def test_count_tag_is_on_unless_turned_off(flag: list[str], count: bool) -> None:
    from presample.cli import build_parser
    from presample.cli.generate import build_request

    parser, _ = build_parser()
    assert build_request(parser.parse_args(["generate", "long hair", *flag])).count_tag is count


@pytest.mark.parametrize(("flag", "lean"), [([], True), (["--no-caption-people"], False)])
def test_caption_people_is_on_unless_turned_off(flag: list[str], lean: bool) -> None:
    from presample.cli import build_parser
    from presample.cli.generate import build_request

    parser, _ = build_parser()
    request = build_request(parser.parse_args(["generate", "1girl", *flag]))
    assert request.caption_people is lean


def test_a_byte_order_mark_is_not_part_of_the_first_request(tmp_path: Path) -> None:
    from presample.jobs import read_requests

    requests = tmp_path / "requests.jsonl"
    requests.write_bytes(b"\xef\xbb\xbf" + json.dumps({"prompt": "1girl"}).encode() + b"\n")
    ((number, request),) = read_requests(requests).rows
    assert number == 1 and not isinstance(request, str) and request.prompt == "1girl"


@pytest.mark.parametrize(("flag", "fields"), [([], set()), (["--tag-prior", "0"], {"tag_prior"})])
def test_the_tag_prior_is_the_cards_unless_given(flag: list[str], fields: set[str]) -> None:
    from presample.cli import build_parser
    from presample.cli.generate import build_request

    parser, _ = build_parser()
    request = build_request(parser.parse_args(["generate", "1girl", *flag]))
    assert {"tag_prior"} & request.model_fields_set == fields and request.tag_prior == 0.0


def test_one_prompt_per_text_encoder(tiny_model_dir: Path, capsys) -> None:
    from presample.cli.generate import _for_encoder
    from presample.request import PresampleResult

    args = ("1girl, a girl on a hill", "--model", str(tiny_model_dir), "--seed", "2",
            "--tag-length", "very_short", "--nl-length", "very_short")  # fmt: skip
    code, out, _ = cli(capsys, *args, "--json")
    result = PresampleResult.model_validate_json(out)
    assert result.tags_prompt.startswith("1girl") and "a girl on a hill" in result.text_prompt
    code, out, _ = cli(capsys, *args, "--for", "t5")
    assert code == 0 and out == result.text_prompt + "\n"
    assert _for_encoder(result, "clip") == result.tags_prompt
    assert _for_encoder(result, "prompt") == result.prompt
    assert json.loads(_for_encoder(result, "flux2")) == result.flux2_prompt
