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


@pytest.mark.parametrize("command", ["prepare", "run", "export"])
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
