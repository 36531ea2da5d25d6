from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from presample.cli import common
from presample.cli import train as train_cli


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="presample")
    sub = parser.add_subparsers(dest="command", required=True)
    train_cli.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except common.UserError as exc:
        print(f"presample: error: {exc}")
        return common.EXIT_USAGE


@pytest.mark.parametrize("command", ["prepare", "run", "export", "prior"])
def test_help(command: str, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(["train", command, "--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_bad_input_is_exit_2(tmp_path: Path, capsys):
    assert run(["train", "prepare", "--data-dir", str(tmp_path / "nope")]) == 2
    assert run(["train", "prepare", "--data-dir", str(tmp_path)]) == 2
    assert run(["train", "run", "--data-dir", str(tmp_path), "--run-dir", str(tmp_path / "r")]) == 2
    assert run(["train", "export", "--run-dir", str(tmp_path)]) == 2
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert all(line.startswith("presample: error: ") for line in lines) and len(lines) == 4


def test_export_without_checkpoint_fails(tmp_path: Path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "tokenizer").mkdir()
    assert run(["train", "export", "--run-dir", str(tmp_path), "--out", str(tmp_path / "o")]) in (
        1, 2,
    )  # fmt: skip


def test_a_missing_base_is_a_clear_error(tiny_data: Path, tokenizer, tmp_path: Path, capsys):
    base = str(tmp_path / "missing.gguf")
    code = run(["train", "run", "--data-dir", str(tiny_data), "--run-dir", str(tmp_path / "r"),
                "--base", base, "--steps", "1", "--no-progress"])  # fmt: skip
    assert code == common.EXIT_FAILURE
    assert "missing.gguf is neither a .gguf file nor a model folder" in capsys.readouterr().err
    # A base with a tokenizer but no weights fails after the run folder exists ...
    tokenizer.save_pretrained(str(tmp_path / "no-weights"))
    code = run(["train", "run", "--data-dir", str(tiny_data), "--run-dir", str(tmp_path / "r"),
                "--base", str(tmp_path / "no-weights"), "--steps", "1"])  # fmt: skip
    assert code == common.EXIT_FAILURE
    assert "cannot load the base model" in capsys.readouterr().err
    # ... and as nothing was trained, the same folder takes other settings next time.
    code = run(["train", "run", "--data-dir", str(tiny_data), "--run-dir", str(tmp_path / "r"),
                "--shape", "tiny", "--vocab-size", "400", "--seq-len", "64", "--batch-size", "2",
                "--steps", "1", "--no-progress"])  # fmt: skip
    assert code == 0


def test_resuming_keeps_the_runs_length_unless_steps_is_given(tiny_data: Path, tmp_path: Path):
    import json

    run_dir = tmp_path / "r"
    tiny = ["train", "run", "--run-dir", str(run_dir), "--no-progress"]
    new = ["--data-dir", str(tiny_data), "--shape", "tiny", "--vocab-size", "400",
           "--seq-len", "64", "--batch-size", "2"]  # fmt: skip
    assert run([*tiny, *new, "--steps", "2"]) == 0

    def saved_steps() -> int:
        return json.loads((run_dir / "config.json").read_text())["steps"]

    # The parser's default length must not stretch a finished run (and its
    # learning-rate schedule) when the user only names the run folder.
    assert run(tiny) == 0
    assert saved_steps() == 2
    assert run([*tiny, "--steps", "0"]) == 2
    assert run([*tiny, "--steps", "3"]) == 0
    assert saved_steps() == 3
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert max(row.get("step", 0) for row in log) == 3


def test_gguf_only_needs_a_gguf_type(tmp_path: Path, capsys):
    (tmp_path / "config.json").write_text("{}")
    argv = ["train", "export", "--run-dir", str(tmp_path), "--out", str(tmp_path / "o")]
    assert run([*argv, "--gguf", "none", "--gguf-only"]) == 2
    assert "--gguf-only needs a GGUF type" in capsys.readouterr().out


def test_gguf_of_a_gguf_only_folder_points_at_its_file(tmp_path: Path, capsys):
    for name in ("config.json", "tokenizer.json", "model.gguf"):
        (tmp_path / name).write_text("{}")
    assert run(["train", "gguf", str(tmp_path), "-o", str(tmp_path / "out.gguf")]) == 2
    assert f"use {tmp_path / 'model.gguf'}" in capsys.readouterr().out
    assert not (tmp_path / "out.gguf").exists()


def test_gguf_of_a_folder_with_a_broken_card_says_so(tmp_path: Path, capsys):
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "presample.json").write_text("{not json")
    assert run(["train", "gguf", str(tmp_path), "-o", str(tmp_path / "out.gguf")]) == 2
    assert "presample.json is not valid JSON" in capsys.readouterr().out
    assert not (tmp_path / "out.gguf").exists()


def test_task_and_source_weights_reach_the_config(capsys):
    from presample.training.train import build_arg_parser, config_from_args

    parser = build_arg_parser()
    args = ["--task-weight", "tag_to_long=3", "--source-weight", "civitai=2.5"]
    config = config_from_args(parser.parse_args(args))
    assert config.task_weights == {"tag_to_long": 3.0}
    assert config.source_weights == {"civitai": 2.5}
    for bad, message in [
        ("--task-weight=tag_to_lng=3", "TASK one of"),
        ("--task-weight=tag_to_long", "TASK=W"),
        ("--source-weight=civitai=-1", "0 or more"),
        ("--source-weight=reddit=1", "SOURCE one of"),
    ]:
        with pytest.raises(SystemExit):
            parser.parse_args([bad])
        assert message in capsys.readouterr().err


def test_prior_builds_the_table_once(tmp_path: Path, capsys):
    from presample.tag_prior import CooccurrenceTable
    from presample.training.records import Record, split_path, write_records

    data = tmp_path / "data"
    tags = {"general": ["1girl", "wings", "halo"], "rating": ["general"]}
    write_records(split_path(data, "train"), [Record(str(i), "civitai", tags) for i in range(3)])
    out = tmp_path / "prior.sqlite"
    assert run(["train", "prior", "--data-dir", str(data), "--out", str(out)]) == 0
    assert '"records": 3' in capsys.readouterr().out
    assert set(CooccurrenceTable(out).weights(["wings"], 0)) == {"1girl", "halo"}
    before = out.read_bytes()
    assert run(["train", "prior", "--data-dir", str(data), "--out", str(out)]) == 2
    assert run(["train", "prior", "--data-dir", str(tmp_path / "none"), "--out", str(out)]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert "exists (give --force" in lines[0] and "no training records" in lines[1]
    assert out.read_bytes() == before
