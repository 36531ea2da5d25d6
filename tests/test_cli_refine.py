"""`presample refine` as a user drives it: typed answers, scripted picks, errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from presample import Presampler, RefineOptions, RefineSession
from presample.cli import main


def expected_after(picks: list[int], prompt: str = "1girl, scenery", seed: int = 4) -> str:
    session = RefineSession(Presampler(), prompt, RefineOptions(seed=seed))
    for p in picks:
        session.pick(p)
    return session.prompt


def test_interactive_pick_undo_pick_then_quit(monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("2\nu\n1\nbogus\nq\n"))
    assert main(["refine", "1girl, scenery", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "1. " in out and "number = pick" in out and "? number = pick" in out
    assert out.rstrip().split("\n")[-1] == expected_after([0])


def test_end_of_input_finishes_and_prints_the_prompt(monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["refine", "1girl, scenery", "--seed", "4"]) == 0
    assert capsys.readouterr().out.rstrip().split("\n")[-1] == "1girl, scenery"


def test_scripted_picks_print_only_the_prompt_and_write_the_file(tmp_path: Path, capsys) -> None:
    out_file = tmp_path / "prompt.txt"
    code = main(["refine", "1girl, scenery", "--seed", "4", "--picks", "1,1", "-o", str(out_file)])
    assert code == 0
    captured = capsys.readouterr()
    final = expected_after([0, 0])
    assert captured.out == final + "\n"  # the conversation went to stderr
    assert "> 1" in captured.err
    assert out_file.read_text(encoding="utf-8") == final + "\n"
    # Never overwrite silently: checked before the model loads.
    assert main(["refine", "1girl", "--picks", "1", "-o", str(out_file)]) == 2
    assert "exists; add --force" in capsys.readouterr().err


def test_json_state_reloads(capsys) -> None:
    assert main(["refine", "a cat", "--seed", "9", "--picks", "1", "--json"]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["seed"] == 9 and state["round"] == 1 and len(state["picks"]) == 1
    restored = RefineSession.from_state(Presampler(), state)
    assert restored.prompt == state["picks"][0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["refine", "1girl", "--candidates", "0"], "candidates"),
        (["refine", "1girl", "--picks", "1,x"], "neither a candidate number"),
        (["refine", "1girl", "--one-shot", "--by-length"], "cannot be combined"),
        (["refine", "   "], "the prompt is empty"),
        (["refine", "1girl", "--seed", "1", "--picks", "7"], "no candidate 7"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, args: list[str], message: str) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_ctrl_c_keeps_the_work(monkeypatch, capsys) -> None:
    class Interrupting(io.StringIO):
        def readline(self, *a: object) -> str:
            raise KeyboardInterrupt

    monkeypatch.setattr("sys.stdin", Interrupting())
    assert main(["refine", "1girl, scenery", "--seed", "4"]) == 130
    assert capsys.readouterr().out.rstrip().split("\n")[-1] == "1girl, scenery"
