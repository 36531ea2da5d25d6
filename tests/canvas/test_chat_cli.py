"""``presample canvas chat`` against the fake OpenAI-compatible server of test_chat."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli

from presample.canvas import parse_answer

from .test_chat import DINOSAUR, DRAGON, EDIT, FIRST, FakeServer


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    yield fake
    fake.close()


@pytest.fixture(autouse=True)
def _reset(server: FakeServer) -> None:
    server.mode = "transcript"
    server.requests.clear()
    server.replies.clear()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return run_cli(capsys, "canvas", "chat", *args)


def test_a_session_edits_the_canvas(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session, answer = tmp_path / "s.json", tmp_path / "answer.md"
    args = ("--endpoint", server.url, "--session", str(session), "-o", str(answer))
    code, out, err = run(capsys, FIRST, *args)
    assert code == 0 and err == ""
    assert out.splitlines()[0] == "canvas: 4 region(s), code from answer line 2"
    assert "A mighty dragon." in out
    assert answer.read_text(encoding="utf-8") == DRAGON
    saved = json.loads(session.read_text(encoding="utf-8"))
    assert saved["history"] == [
        {"role": "user", "content": FIRST},
        {"role": "assistant", "content": DRAGON},
    ]

    code, out, err = run(capsys, EDIT, *args)
    assert code == 0 and "A mighty dinosaur." in out
    assert answer.read_text(encoding="utf-8") == DINOSAUR
    assert len(server.requests[-1]["messages"]) == 4  # system, first exchange, the edit
    assert len(json.loads(session.read_text(encoding="utf-8"))["history"]) == 4


def test_json_output_and_settings(server: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, FIRST, "--endpoint", server.url, "--json", "--temperature", "0", "--seed", "3",
        "--system", "generic",
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert doc["canvas"] == parse_answer(DRAGON).canvas.to_dict()
    assert doc["answer"] == DRAGON and doc["finish"] == "stop" and doc["problems"] == []
    assert len(doc["layers"]) == 5
    body = server.requests[-1]
    assert body["temperature"] == 0 and body["seed"] == 3
    assert "For example" in body["messages"][0]["content"]


def test_streaming_echoes_the_answer(
    server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, FIRST, "--endpoint", server.url, "--stream")
    assert code == 0 and "canvas: 4 region(s)" in out
    assert DRAGON in err
    assert server.requests[-1]["stream"] is True


def test_a_truncated_answer_warns_and_keeps_the_valid_part(
    server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.mode = "truncated"
    code, out, err = run(capsys, FIRST, "--endpoint", server.url)
    assert code == 0
    assert "canvas: 2 region(s)" in out
    assert "presample: warning: the answer was cut off at the token limit" in err
    assert "presample: warning: answer: line " in err


def test_no_canvas_is_exit_1(server: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    server.mode = "queue"
    server.replies.append("I cannot draw.")
    code, out, err = run(capsys, FIRST, "--endpoint", server.url)
    assert code == 1 and out == ""
    assert err.strip().endswith("presample: error: no canvas could be read from the answer")


def test_server_errors_are_one_line_exit_1(
    server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.mode = "error"
    code, out, err = run(capsys, FIRST, "--endpoint", server.url)
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"presample: error: {server.url}/v1/chat/completions answered HTTP 500")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--endpoint", "ftp://x"), "must be an http:// or https:// URL"),
        (("--endpoint", "http://127.0.0.1:9", "--temperature", "5"), "temperature must be"),
        ((), "one of the arguments --endpoint --local is required"),
    ],
)
def test_usage_errors_are_exit_2(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, out, err = run(capsys, FIRST, *args)
    assert code == 2 and message in err and out == ""


def test_a_bad_session_file_is_exit_2(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "s.json"
    bad.write_text('{"history": [{"role": "system", "content": "obey"}]}', encoding="utf-8")
    code, _, err = run(capsys, FIRST, "--endpoint", server.url, "--session", str(bad))
    assert code == 2 and "each history message" in err
    bad.write_text("not json", encoding="utf-8")
    code, _, err = run(capsys, FIRST, "--endpoint", server.url, "--session", str(bad))
    assert code == 2 and "is not a session file" in err
    assert server.requests == []  # nothing was sent


def test_a_local_model_without_chat_template_is_one_line_exit_1(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, FIRST, "--local", str(tiny_model_dir), "--device", "cpu")
    assert code == 1 and out == ""
    # (transformers draws its weight-loading progress bar on stderr first)
    last = err.rstrip("\n").split("\n")[-1]
    assert last.startswith("presample: error: ") and "has no chat template" in last
    assert "Traceback" not in err


@pytest.mark.parametrize("option", ["--session", "-o"])
def test_output_places_are_checked_before_asking(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    missing = tmp_path / "no" / "file.json"
    code, _, err = run(capsys, FIRST, "--endpoint", server.url, option, str(missing))
    assert code == 2 and "no such directory" in err
    assert server.requests == []
