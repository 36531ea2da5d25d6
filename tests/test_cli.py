"""The command line as a user drives it: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli as run

from presample.tagdb import TagDatabase

EXAMPLE = {
    "tags": {
        "special": ["1girl"], "characters": ["hatsune miku"], "copyrights": ["vocaloid"],
        "artist": ["ningen mame"], "quality": ["masterpiece", "newest"], "meta": ["absurdres"],
        "rating": ["sensitive"], "general": ["long hair", "twintails", "smile"],
    },
    "aspect_ratio": 0.7,
}  # fmt: skip
META = (
    "meta: absurdres\nrating: sensitive\nartist: ningen mame\ncharacters: hatsune miku\n"
    "copyrights: vocaloid\nquality: masterpiece, newest\naspect_ratio: 0.7\n"
)




def test_show_input_from_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    req = tmp_path / "req.json"
    req.write_text(json.dumps(EXAMPLE))
    code, out, _ = run(capsys, "show-input", str(req))
    assert code == 0
    assert out == META + "target: <|long|>\ntag: 1girl, long hair, twintails, smile\n"

    code, out, _ = run(
        capsys,
        "show-input",
        str(req),
        "--task",
        "tag_to_long",
        "--mode",
        "generate",
        "--gen-meta",
        "--length",
        "short",
    )
    assert out == (
        META + "target: <|short|> <|tag_to_long|> <|gen_meta|>\n"
        "tag: 1girl, long hair, twintails, smile\nlong:\n"
    )


def test_show_input_from_stdin_with_typed_prompt(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin = json.dumps(
        {
            "prompt": "Hatsune_Miku, 1girl, (long hair:1.2), <lora:foo:0.8>, "
            "masterpiece, a girl singing on a stage at night"
        }
    )
    code, out, _ = run(capsys, "show-input", "-", "--json", stdin=stdin, monkeypatch=monkeypatch)
    assert code == 0
    shown = json.loads(out)
    assert shown["task"] == "short_to_tag"
    assert shown["input"] == (
        "rating: general\ncharacters: hatsune miku\nquality: masterpiece\n"
        "target: <|long|> <|short_to_tag|>\n"
        "short: a girl singing on a stage at night\ntag: 1girl, long hair"
    )
    assert "lora" not in shown["input"] and "1.2" not in shown["input"]


def test_show_input_plan_and_dtg(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show-input", "--prompt", "1girl, scenery", "--plan")
    assert code == 0
    assert out.splitlines() == [
        "1. tag                    long       expand",
        "2. tag_to_long            long       generate",
    ]
    code, out, _ = run(capsys, "show-input", "--prompt", "1girl, scenery", "--format", "dtg")
    assert out.splitlines()[0] == "quality: masterpiece"
    assert out.splitlines()[-1] == "general: 1girl, scenery<|input_end|>"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--task", "tag_to_short"], '{"prompt": "1girl"}', "unknown task 'tag_to_short'"),
        ([], '{"prompt": "1girl"', "not valid JSON"),
        ([], "", "is empty"),
        ([], "[1, 2]", "must be a JSON object"),
        ([], b"\xff\xfe{}", "not valid UTF-8"),
        ([], json.dumps({"prompt": "x" * 1_000_000}), "at most 100000 characters"),
        ([], json.dumps({"tags": {"general": [f"t{i}" for i in range(10_000)]}}), "at most 512"),
        ([], '{"prompt": "1girl, (smile:1.2"}', "unbalanced"),
        (["--step", "7"], '{"prompt": "1girl"}', "--step must be between 1 and 2"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    stdin: str | bytes,
    message: str,
) -> None:
    code, out, err = run(capsys, "show-input", "-", *args, stdin=stdin, monkeypatch=monkeypatch)
    assert code == 2
    assert out == ""
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "show-input", "/nonexistent/req.json")
    assert code == 2 and "no such file" in err


def test_tags_lookup(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tags", "lookup", "Hatsune_Miku", "boobs")
    assert code == 0
    assert out.splitlines()[0].split("\t")[:2] == ["hatsune miku", "characters"]
    assert out.splitlines()[1].endswith("(alias)")
    code, out, _ = run(capsys, "tags", "lookup", "--json", "1girls", "zzznotatag")
    assert code == 1  # one tag unknown
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0] == {
        "query": "1girls",
        "found": True,
        "name": "1girl",
        "category": "special",
        "post_count": 6008644,
        "alias": True,
    }
    assert rows[1] == {"query": "zzznotatag", "found": False}


def test_help_explains_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show-input", "--help")
    assert code == 0
    assert "--gen-meta" in out and "examples:" in out


def test_console_script_and_light_import() -> None:
    # A fresh interpreter: importing presample must not pull in torch or transformers.
    code = (
        "import sys, presample; "
        "heavy = [m for m in ('torch', 'transformers', 'llama_cpp', 'huggingface_hub') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    proc = subprocess.run(
        [sys.executable, "-m", "presample", "tags", "lookup", "long_hair"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("long hair\tgeneral\t")


# Every module only an extra brings; the CLI must build without any of them.
OPTIONAL_MODULES = (
    "torch", "transformers", "accelerate", "gguf", "llama_cpp", "huggingface_hub", "fastapi",
    "uvicorn", "httpx", "matplotlib", "diffusers", "numpy", "PIL", "scipy", "safetensors",
)  # fmt: skip


@pytest.mark.parametrize("command", ["--help", "serve --help", "canvas --help", "train --help"])
def test_cli_runs_on_a_core_install(command: str) -> None:
    # A fresh interpreter where importing any optional module fails, as on
    # `pip install presample` with no extras: every command's help must build.
    code = (
        "import sys\n"
        f"for name in {OPTIONAL_MODULES!r}:\n"
        "    sys.modules[name] = None\n"
        "from presample.cli import main\n"
        f"sys.exit(main({command.split()!r}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout


def _show_input_args(case: dict, path: Path) -> list[str]:
    args = [
        "show-input",
        str(path),
        "--task",
        case["task"] or "tag",
        "--length",
        case["length"],
        "--mode",
        "expand" if case["expand"] else "generate",
    ]
    return [*args, "--gen-meta" if case["gen_meta"] else "--no-gen-meta"]


def test_show_input_matches_reference_for_every_fixture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], db: TagDatabase
) -> None:
    """The whole path a user takes (JSON request -> CLI) against tipo-kgen's strings."""
    from conftest import FIXTURES, read_jsonl

    compared = 0
    for case in read_jsonl(FIXTURES / "kgen_0.3.1" / "tipo_inputs.jsonl"):
        ar = case["aspect_ratio"]
        if case["nl_prompt"] != case["nl_prompt"].strip() or (ar is not None and ar <= 0.05):
            continue  # requests strip text and bound the aspect ratio
        tags = [t for values in case["tag_map"].values() for t in values]
        if any(db.canonical(t) != t for t in tags):
            continue  # prepare() canonicalises spellings (long_hair -> long hair) on purpose
        path = tmp_path / "req.json"
        path.write_text(
            json.dumps(
                {
                    "tags": case["tag_map"],
                    "nl_prompt": case["nl_prompt"],
                    "aspect_ratio": ar,
                    "add_quality": case["add_quality"],
                    "sfw": False,
                    "read_any_script": True,
                }
            )
        )
        code, out, err = run(capsys, *_show_input_args(case, path))
        assert (code, err) == (0, "")
        assert out == case["expected"] + "\n", case
        compared += 1
    assert compared >= 400


def test_show_input_dtg_matches_reference_for_every_fixture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], db: TagDatabase
) -> None:
    """DanTagGen through the CLI, for every fixture outside the documented deviations."""
    from conftest import FIXTURES, read_jsonl
    from test_dtg_layout import _is_deviation

    compared = 0
    for case in read_jsonl(FIXTURES / "kgen_0.3.1" / "dtg_inputs.jsonl"):
        tags = [t for values in case["tag_map"].values() for t in values]
        ar = case["aspect_ratio"]
        if _is_deviation(case) or ar <= 0.05 or any(db.canonical(t) != t for t in tags):
            continue
        path = tmp_path / "req.json"
        path.write_text(json.dumps({"tags": case["tag_map"], "aspect_ratio": ar, "sfw": False}))
        args = ["show-input", str(path), "--format", "dtg", "--length", case["target"] or "long"]
        code, out, err = run(capsys, *args, *([] if case["have_quality"] else ["--no-quality"]))
        assert (code, err) == (0, "")
        assert out == case["expected"] + "\n", case
        compared += 1
    assert compared >= 150


def test_no_sfw_leaves_an_unrated_request_unrated(capsys: pytest.CaptureFixture[str]) -> None:
    # The reference's input (no rating line) for comparing with tipo-kgen.
    code, out, _ = run(capsys, "show-input", "--prompt", "1girl, scenery", "--task", "tag")
    assert code == 0 and out.startswith("rating: general\n")
    code, out, _ = run(capsys, "show-input", "--prompt", "1girl, scenery", "--task", "tag",
                       "--no-sfw")  # fmt: skip
    assert code == 0 and "rating:" not in out


def test_a_tag_in_two_categories_reaches_the_model_once(capsys, monkeypatch) -> None:
    request = {"tags": {"special": ["multiple girls"], "general": ["multiple girls", "dinosaur"]},
               "sfw": False}  # fmt: skip
    code, out, _ = run(capsys, "show-input", "-", "--task", "tag",
                       stdin=json.dumps(request), monkeypatch=monkeypatch)  # fmt: skip
    # The reference (tipo-kgen 0.3.1, reported in issue 24) writes the tag twice;
    # ours differs from its line exactly by the duplicate (README Compatibility).
    reference = "tag: multiple girls, multiple girls, dinosaur"
    ours = next(line for line in out.splitlines() if line.startswith("tag:"))
    assert code == 0 and ours == reference.replace("multiple girls, multiple girls",
                                                   "multiple girls")  # fmt: skip


def test_show_input_writes_the_v21_strings_for_a_v21_model(capsys: pytest.CaptureFixture[str]):
    prompt = "1girl, solo, smile, hatsune miku, masterpiece, explicit"
    code, out, _ = run(capsys, "show-input", "--prompt", prompt, "--model",
                       "KBlueLeaf/TIPO-v2.1-1B-A200M", "--json")  # fmt: skip
    shown = json.loads(out)
    assert code == 0 and shown["dialect"] == "v2.1"
    assert "rating: nsfw, explicit\n" in shown["input"]
    assert "quality: masterpiece, newest\n" in shown["input"]
    code, out, _ = run(capsys, "show-input", "--prompt", prompt, "--dialect", "v2.1",
                       "--json")  # fmt: skip
    assert json.loads(out)["input"] == shown["input"]
    code, out, _ = run(capsys, "show-input", "--prompt", prompt)
    assert "rating: explicit\n" in out and "newest" not in out
