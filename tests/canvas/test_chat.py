"""The chat driver against a fake OpenAI-compatible server started here, and a tiny local model.

The server replays the seed-003 transcript (Omost's README conversation: the
dragon battle, then "change the dragon to a dinosaur").
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from presample.canvas import parse_answer
from presample.canvas.chat import (
    FIX_REQUEST,
    GENERIC_SYSTEM_PROMPT,
    SYSTEM_PROMPT,
    CanvasChat,
    ChatCancelled,
    ChatError,
    ChatSettings,
    OpenAIChat,
    chat_url,
)

from .answers import SEED_ANSWERS, seed_answer

FIRST = "generate an image of the fierce battle of warriors and the dragon"
EDIT = "change the dragon to a dinosaur"
DRAGON, DINOSAUR = (seed_answer(name) for name in SEED_ANSWERS)


class FakeServer:
    """An OpenAI-compatible /v1/chat/completions; ``mode`` picks how it answers."""

    def __init__(self) -> None:
        self.mode = "transcript"
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.replies: list[str] = []  # for mode "queue"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                server.answer(self, body)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        # Clients that time out or cancel hang up mid-answer: expected here, not worth a trace.
        self.http.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()

    def reply_text(self, body: dict[str, Any]) -> tuple[str, str]:
        if self.mode == "queue":
            return self.replies.pop(0), "stop"
        if self.mode == "truncated":
            return DRAGON[: DRAGON.index("# Add a stormy sky") + 120], "length"
        last = body["messages"][-1]["content"]
        return (DINOSAUR if "dinosaur" in last else DRAGON), "stop"

    def answer(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        if self.mode == "error":
            self._send(h, 500, b'{"error": {"message": "model crashed"}}')
            return
        if self.mode == "garbage":
            self._send(h, 200, b"<html>not json</html>", "text/html")
            return
        if self.mode == "no-choices":
            self._send(h, 200, b'{"object": "chat.completion", "choices": []}')
            return
        if self.mode == "bad-stream":
            h.send_response(200)
            h.send_header("Content-Type", "text/event-stream")
            h.end_headers()
            h.wfile.write(b'data: {"choices": [{"delta": {"content": "```py"}}]}\n\ndata: oops\n\n')
            return
        if self.mode == "slow":
            time.sleep(3)
        text, finish = self.reply_text(body)
        if not body.get("stream"):
            payload = {
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": finish,
                    }
                ]
            }
            self._send(h, 200, json.dumps(payload).encode())
            return
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()
        for start in range(0, len(text), 200):
            event = {
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": text[start : start + 200]},
                        "finish_reason": None,
                    }
                ]
            }
            h.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        end = {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
        h.wfile.write(f": keep-alive\n\ndata: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler, status: int, data: bytes, kind: str = "application/json"
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    yield fake
    fake.close()


@pytest.fixture(autouse=True)
def _reset(server: FakeServer) -> None:
    server.mode = "transcript"
    server.requests.clear()
    server.headers.clear()
    server.replies.clear()


@pytest.mark.parametrize("stream", [False, True])
def test_the_seed_transcript_round_trips_with_history(server: FakeServer, stream: bool) -> None:
    seen: list[str] = []
    chat = CanvasChat(OpenAIChat(server.url, stream=stream))
    first = chat.send(FIRST, on_text=seen.append)
    assert first.ok and first.finish == "stop"
    assert first.canvas == parse_answer(DRAGON).canvas
    assert "".join(seen) == DRAGON
    assert (len(seen) > 1) == stream  # streamed in pieces

    second = chat.send(EDIT)
    assert second.canvas == parse_answer(DINOSAUR).canvas
    # The edit carries the whole conversation, Omost's system prompt first.
    messages = server.requests[-1]["messages"]
    assert messages == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": FIRST},
        {"role": "assistant", "content": DRAGON},
        {"role": "user", "content": EDIT},
    ]
    assert chat.history[-1] == {"role": "assistant", "content": DINOSAUR}


def test_sampling_settings_and_api_key_reach_the_server(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_KEY", "sk-test")
    model = OpenAIChat(server.url + "/v1", model="omost-llama", api_key_env="MY_KEY")
    CanvasChat(
        model, settings=ChatSettings(temperature=0, top_p=1.0, max_new_tokens=900, seed=7)
    ).send(FIRST)
    body = server.requests[-1]
    assert body["model"] == "omost-llama"
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (
        0,
        1.0,
        900,
        7,
    )
    assert body["stream"] is False
    assert server.headers[-1]["Authorization"] == "Bearer sk-test"


def test_defaults_are_omosts() -> None:
    s = ChatSettings()
    assert (s.temperature, s.top_p, s.max_new_tokens, s.seed) == (0.6, 0.9, 4096, 12345)
    with pytest.raises(ValueError, match="temperature"):
        ChatSettings(temperature=-1)


def test_chat_urls() -> None:
    assert chat_url("http://h:8080") == "http://h:8080/v1/chat/completions"
    assert chat_url("http://h:8080/v1/") == "http://h:8080/v1/chat/completions"
    assert chat_url("https://h/v1/chat/completions") == "https://h/v1/chat/completions"
    with pytest.raises(ValueError, match="http"):
        chat_url("file:///etc/passwd")


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("error", r"answered HTTP 500: \{\"error\": \{\"message\": \"model crashed\"\}\}"),
        ("garbage", r"did not answer with JSON: <html>not json</html>"),
        ("no-choices", r"without choices\[0\]\.message\.content"),
    ],
)
def test_server_failures_are_one_clear_error(server: FakeServer, mode: str, message: str) -> None:
    server.mode = mode
    chat = CanvasChat(OpenAIChat(server.url))
    with pytest.raises(ChatError, match=message):
        chat.send(FIRST)
    assert chat.history == []  # a failed turn leaves no trace


def test_a_timeout_is_one_clear_error(server: FakeServer) -> None:
    server.mode = "slow"
    with pytest.raises(ChatError, match=r"did not answer within 0\.5 s"):
        CanvasChat(OpenAIChat(server.url, timeout=0.5)).send(FIRST)


def test_connection_refused_is_one_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(
        ChatError,
        match=f"cannot connect to http://127.0.0.1:{port}/v1/chat/completions: connection refused",
    ):
        CanvasChat(OpenAIChat(f"http://127.0.0.1:{port}")).send(FIRST)


def test_a_truncated_answer_gives_the_valid_part_and_says_so(server: FakeServer) -> None:
    server.mode = "truncated"
    turn = CanvasChat(OpenAIChat(server.url)).send(FIRST)
    assert turn.finish == "length"
    assert turn.canvas is not None and len(turn.canvas.regions) == 2  # warriors and dragon
    assert turn.canvas.regions == parse_answer(DRAGON).canvas.regions[:2]
    assert turn.problems and not turn.ok
    assert "cut off at the token limit" in turn.report()


def test_strict_mode_reports_instead_of_salvaging(server: FakeServer) -> None:
    server.mode = "truncated"
    turn = CanvasChat(OpenAIChat(server.url), lenient=False).send(FIRST)
    assert turn.parsed is None and turn.error is not None
    assert turn.problems[0].line is not None


def test_code_in_an_answer_is_never_run(server: FakeServer, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = (
        "```python\nimport os\nos.system('touch " + str(marker) + "')\n"
        "canvas = Canvas()\ncanvas.set_global_description(description='A cat.', "
        "detailed_descriptions=[], tags='cat', HTML_web_color_name='red')\n"
        "open('" + str(marker) + "', 'w').write('x')\n```\n"
    )
    server.mode = "queue"
    server.replies.append(evil)
    turn = CanvasChat(OpenAIChat(server.url)).send(FIRST)
    assert not marker.exists()
    assert turn.canvas is not None and turn.canvas.global_description.description == "A cat."
    messages = [p.message for p in turn.problems]
    assert any("import" in m for m in messages)
    assert len(turn.problems) >= 3  # the import, the os.system call, the open call


def test_an_unreadable_answer_is_sent_back_once_for_a_fix(server: FakeServer) -> None:
    server.mode = "queue"
    server.replies += ["Sure! Here is a lovely picture of a cat.", DRAGON]
    chat = CanvasChat(OpenAIChat(server.url), fix_attempts=1)
    turn = chat.send(FIRST)
    assert turn.fixed and turn.ok and turn.canvas == parse_answer(DRAGON).canvas
    retry = server.requests[-1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": "Sure! Here is a lovely picture of a cat."}
    assert retry[-1]["content"].startswith(FIX_REQUEST.split("{")[0])
    assert "set_global_description" in retry[-1]["content"]  # the parse report is quoted
    assert len(server.requests) == 2
    # History keeps the request and the readable answer only.
    assert chat.history == [
        {"role": "user", "content": FIRST},
        {"role": "assistant", "content": DRAGON},
    ]


def test_no_fix_requested_by_default(server: FakeServer) -> None:
    server.mode = "queue"
    server.replies.append("no code at all")
    turn = CanvasChat(OpenAIChat(server.url)).send(FIRST)
    assert turn.parsed is None and len(server.requests) == 1
    assert "no canvas could be read" in turn.report()


def test_cancelling_a_stream_stops_it(server: FakeServer) -> None:
    cancel = threading.Event()

    def on_text(_: str) -> None:
        cancel.set()  # cancel after the first piece

    with pytest.raises(ChatCancelled):
        CanvasChat(OpenAIChat(server.url, stream=True)).send(FIRST, on_text=on_text, cancel=cancel)


def test_the_generic_system_prompt_example_is_a_valid_canvas() -> None:
    example = GENERIC_SYSTEM_PROMPT[GENERIC_SYSTEM_PROMPT.index("For example") :]
    parsed = parse_answer(example)
    assert len(parsed.canvas.regions) == 2 and not parsed.problems
    assert GENERIC_SYSTEM_PROMPT.startswith(SYSTEM_PROMPT)


def test_history_is_validated() -> None:
    with pytest.raises(ValueError, match="each history message"):
        CanvasChat(OpenAIChat("http://127.0.0.1:1"), history=[{"role": "system", "content": "x"}])


def test_a_broken_stream_is_one_clear_error(server: FakeServer) -> None:
    server.mode = "bad-stream"
    with pytest.raises(ChatError, match="sent a stream event that is not chat JSON: oops"):
        CanvasChat(OpenAIChat(server.url, stream=True)).send(FIRST)


def test_importing_the_canvas_package_loads_no_heavy_library() -> None:
    """httpx, PyTorch and diffusers load only when a chat model or a pipeline is made."""
    import subprocess
    import sys

    code = (
        "import sys, presample, presample.canvas, presample.canvas.chat; "
        "print(sorted({'httpx', 'torch', 'diffusers', 'transformers'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
