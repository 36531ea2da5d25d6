"""``presample serve``: what it refuses, and that the printed URL serves the page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from presample.cli import main

from .conftest import free_port


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "add --expose"),
        (["--host", "0.0.0.0", "--expose"], "--expose needs an API key"),
        (["--host", "0.0.0.0", "--expose", "--api-key", "short"], "at least 8 characters"),
        (["--port", "70000"], "--port must be between 1 and 65535"),
        (["--max-batch", "500"], "max_batch must be at most 64"),
        (["--max-caption-candidates", "9"], "max_caption_candidates must be between 1 and 8"),
        (["--allowed-host", "presample.lan"], "--allowed-host is for --expose"),
    ],
)
def test_unsafe_or_bad_options_are_refused_in_one_line(capsys, monkeypatch, args, message) -> None:
    monkeypatch.delenv("PRESAMPLE_API_KEY", raising=False)
    assert main(["serve", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("presample: error: ") and message in err
    assert err.count("\n") == 1


def test_a_port_in_use_is_said_in_one_line_before_models_load(capsys, tiny_model_dir) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--model", str(tiny_model_dir), "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err
    assert "serving on" not in err


def test_without_limit_flags_the_server_runs_with_its_own_defaults(monkeypatch) -> None:
    import argparse

    from presample.cli import serve
    from presample.server.settings import Limits

    monkeypatch.delenv("PRESAMPLE_API_KEY", raising=False)
    parser = argparse.ArgumentParser()
    serve.add_parser(parser.add_subparsers())
    _, limits = serve.settings_from(parser.parse_args(["serve"]))
    assert limits == Limits()


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        ([], {"localhost", "127.0.0.1"}),
        (["--host", "0.0.0.0", "--expose", "--api-key", "k" * 16], {"*"}),
        (["--host", "192.168.1.5", "--expose", "--api-key", "k" * 16], {"192.168.1.5"}),
        (["--host", "0.0.0.0", "--expose", "--api-key", "k" * 16,
          "--allowed-host", "presample.lan"], {"presample.lan"}),
    ],
)
def test_the_host_allowlist_follows_the_network_options(monkeypatch, args, allowed) -> None:
    import argparse

    from presample.cli import serve

    monkeypatch.delenv("PRESAMPLE_API_KEY", raising=False)
    parser = argparse.ArgumentParser()
    serve.add_parser(parser.add_subparsers())
    settings, _ = serve.settings_from(parser.parse_args(["serve", *args]))
    assert allowed <= set(settings.allowed_hosts)
    assert "localhost" in settings.allowed_hosts
    if "*" not in allowed:
        assert "*" not in settings.allowed_hosts


def test_an_unknown_model_fails_before_listening(capsys) -> None:
    assert main(["serve", "--model", "/no/such/model"]) == 1
    assert "no model '/no/such/model'" in capsys.readouterr().err


def test_serve_prints_a_url_that_serves_the_page(tiny_model_dir: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "presample", "serve", "--model", str(tiny_model_dir),
         "--port", str(port), "--dtype", "float32"],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        match = re.search(r"serving on (http://\S+) ", first)
        assert match, first
        url = match.group(1)
        assert url == f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        while True:  # the model loads after the line is printed
            try:
                health = httpx.get(f"{url}health", timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        page = httpx.get(url, timeout=5)
        assert page.status_code == 200 and "<title>presample</title>" in page.text
        # Structured logs: one JSON object per line on stderr.
        process.terminate()
        _, rest = process.communicate(timeout=30)
        lines = [line for line in rest.splitlines() if line.startswith("{")]
        assert any('"event": "request"' in line and '"path": "/health"' in line for line in lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sigterm_with_a_request_in_flight_answers_503_and_exits_cleanly(
    tiny_model_dir: Path,
) -> None:
    import signal
    import threading

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "presample", "serve", "--model", str(tiny_model_dir),
         "--port", str(port), "--dtype", "float32", "--shutdown-grace", "0.3"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/health", timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        answers: list[httpx.Response] = []
        slow = {"prompt": "1girl, scenery", "tag_length": "very_long", "nl_length": "very_long",
                "caption_candidates": 3, "sampling": {"max_new_tokens": 512}}  # fmt: skip
        def ask() -> None:
            answers.append(httpx.post(f"{url}/api/presample", json=slow, timeout=60))

        client = threading.Thread(target=ask)
        client.start()
        # Signalled once the model's worker holds the request (a fixed sleep raced the
        # request's arrival on a loaded machine: the signal came first, no answer).
        deadline = time.monotonic() + 30
        while not any(m["requests"] for m in httpx.get(f"{url}/health").json()["models"].values()):
            assert client.is_alive() and time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        client.join(timeout=60)
        _, rest = process.communicate(timeout=60)
        assert process.returncode == 0
        (answer,) = answers
        if answer.status_code != 200:  # it may finish within the grace period on a fast CPU
            assert answer.status_code == 503 and "shutting down" in answer.json()["detail"]
            assert answer.headers["retry-after"]
        assert "Traceback" not in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
