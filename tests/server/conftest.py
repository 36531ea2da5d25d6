"""Servers on the tiny test model: an in-process client and a real uvicorn one."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("torch")

from fastapi.testclient import TestClient

from presample.server import Limits, ServerSettings, create_app

ANSWERS = Path(__file__).resolve().parents[1] / "fixtures" / "omost"
# Short lengths and few tokens keep a random tiny model's retries cheap.
FAST = {"tag_length": "very_short", "nl_length": "very_short"}
MAX_NEW_TOKENS = 8
# The server answers loopback Host headers only (TestClient's default is "testserver").
LOCAL_URL = "http://127.0.0.1:7878"


def dragon_answer() -> str:
    return (ANSWERS / "answer_1_dragon.md").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def settings(tiny_model_dir: Path) -> ServerSettings:
    # float32: a row's result does not depend on its batch, so batched == serial.
    return ServerSettings(
        models=(str(tiny_model_dir),),
        dtype="float32",
        sampling={"max_new_tokens": MAX_NEW_TOKENS},
    )


@pytest.fixture(scope="module")
def client(settings: ServerSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url=LOCAL_URL) as test_client:
        yield test_client


@pytest.fixture
def make_client(settings: ServerSettings) -> Iterator[Callable[..., TestClient]]:
    """A client on an app with changed settings or limits."""
    opened: list[TestClient] = []

    def make(limits: dict | None = None, **changes: object) -> TestClient:
        configured = replace(settings, **changes)
        if limits:
            configured = replace(configured, limits=replace(configured.limits, **limits))
        test_client = TestClient(create_app(configured), base_url=LOCAL_URL)
        test_client.__enter__()
        opened.append(test_client)
        return test_client

    yield make
    for test_client in opened:
        test_client.__exit__(None, None, None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_server(settings: ServerSettings) -> Iterator[str]:
    """A real uvicorn server in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def live_url(settings: ServerSettings) -> Iterator[str]:
    with live_server(settings) as url:
        yield url


__all__ = ["FAST", "Limits", "dragon_answer", "live_server"]
