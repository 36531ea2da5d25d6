"""Shared test fixtures.

The real data in ``../shared/data`` (outside the repository) is used where it
exists; tests that need it skip with a reason on a machine without it.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from presample.tagdb import TagDatabase

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = Path(os.environ.get("PRESAMPLE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def run_cli(
    capsys: pytest.CaptureFixture[str],
    *args: str,
    stdin: str | bytes | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> tuple[int, str, str]:
    """``presample ARGS`` as a user runs it: (exit code, stdout, stderr); argparse's
    usage errors are exit codes too. ``stdin`` needs ``monkeypatch``."""
    from presample.cli import main

    if stdin is not None:
        assert monkeypatch is not None
        data = stdin.encode() if isinstance(stdin, str) else stdin
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


class FakeBackend:
    """A ``Backend`` (engine/backend.py) without a model: each job's continuation is
    ``answer(job)``; every job it was given is kept in ``jobs``, each call's prompts
    in ``calls``. ``answer`` may raise, as a model refusing a job does."""

    def __init__(self, answer: Callable[[Any], str], name: str = "fake") -> None:
        from presample.engine.backend import BackendInfo

        self.info = BackendInfo(name=name, model=name)
        self.answer = answer
        self.jobs: list[Any] = []
        self.calls: list[list[str]] = []

    def generate(self, jobs: Sequence[Any], progress: object = None) -> list[Any]:
        from presample.engine.backend import Generation

        self.calls.append([j.prompt for j in jobs])
        self.jobs.extend(jobs)
        texts = [self.answer(job) for job in jobs]
        return [Generation(t, prompt_tokens=10, new_tokens=5, finish="eos") for t in texts]

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def single_tokens(self, texts: Sequence[str]) -> list[bool]:
        return [True for _ in texts]


def finish_run(request: Any, db: TagDatabase, seed: int = 1) -> tuple[list[str], Any]:
    """Drive a TIPO run of ``request`` with the shipped co-occurrence table, every model
    call answered with nothing; returns the prompts the model was given and the result
    (what a run adds before the model writes, without a model)."""
    from presample.engine.backend import Generation
    from presample.engine.sampling import Sampling
    from presample.prepare import prepare
    from presample.runs import RunOptions, tipo_run
    from presample.tag_prior import CooccurrenceTable

    prior = CooccurrenceTable()
    try:
        run = tipo_run(prepare(request, db), db, RunOptions(Sampling(), seed=seed), prior)
        prompts = [next(run).prompt]
        try:
            while True:
                empty = Generation(text="", prompt_tokens=1, new_tokens=0, finish="eos")
                prompts.append(run.send(empty).prompt)
        except StopIteration as stop:
            return prompts, stop.value
    finally:
        prior.close()


def tag_line(prompt: str) -> str:
    """The ``tag:`` line of a TIPO prompt."""
    return next(line for line in prompt.split("\n") if line.startswith("tag:"))


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests never write to the user's cache folder (engine/gguf_cache.py)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PRESAMPLE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session")
def db() -> Iterator[TagDatabase]:
    with TagDatabase() as database:
        yield database


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set PRESAMPLE_SHARED_DATA)")
    return SHARED_DATA


def tiny_corpus() -> list[str]:
    """Text in the TIPO layout to train a tiny tokenizer on (from the fixtures)."""
    rows = read_jsonl(FIXTURES / "kgen_0.3.1" / "tipo_inputs.jsonl")
    rows += read_jsonl(FIXTURES / "kgen_0.3.1" / "tipo_parse.jsonl")
    return [r.get("expected") if isinstance(r.get("expected"), str) else r["output"] for r in rows]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random LLaMA with a tokenizer that has the 13 TIPO special tokens."""
    pytest.importorskip("torch")
    from presample.training.model import random_model
    from presample.training.tokenizer import train_tokenizer

    folder = tmp_path_factory.mktemp("tiny-tipo")
    tokenizer = train_tokenizer(tiny_corpus() * 2, vocab_size=700)
    model = random_model("tiny", len(tokenizer), seed=1234)
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_gguf(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model as an f32 GGUF file (what llama.cpp and the reference load)."""
    pytest.importorskip("gguf")
    from presample.training.gguf_export import export_gguf

    return export_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny-tipo-F32.gguf",
                       dtype="f32")  # fmt: skip


@pytest.fixture(scope="session", params=["transformers", "llama.cpp"])
def engine(request: pytest.FixtureRequest) -> str:
    """Both engines; llama.cpp only where llama-cpp-python is installed (an optional extra)."""
    if request.param == "llama.cpp":
        pytest.importorskip("llama_cpp", reason="presample[llamacpp] is not installed")
    return request.param
