"""The dequantised copy of a GGUF model that spares transformers re-reading it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gguf")

from presample.engine import gguf_cache  # noqa: E402
from presample.engine.sampling import Sampling  # noqa: E402
from presample.engine.torch_backend import TorchBackend  # noqa: E402
from presample.presampler import Presampler  # noqa: E402

REQUEST = {"prompt": "1girl, smile", "seed": 3, "tag_length": "very_short"}
GREEDY = Sampling(max_new_tokens=16, temperature=0.0)


@pytest.fixture
def gguf_folder(tiny_model_dir: Path, tiny_gguf: Path, tmp_path: Path) -> Path:
    """One of our GGUF-only folders: model.gguf and the tokenizer files."""
    folder = tmp_path / "shipped"
    folder.mkdir()
    shutil.copy(tiny_gguf, folder / "model.gguf")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, folder / name)
    return folder


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("PRESAMPLE_CACHE_DIR", str(root))
    return root


def prompt_of(folder: Path) -> str:
    with Presampler(str(folder), backend="transformers", sampling=GREEDY) as presampler:
        return presampler(REQUEST).prompt


def test_the_second_load_reads_the_copy_and_answers_the_same(
    gguf_folder: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = prompt_of(gguf_folder)
    copies = list((cache / "gguf").iterdir())
    assert len(copies) == 1 and gguf_cache.ready(copies[0])

    read_from: list[str] = []
    from transformers import AutoModelForCausalLM

    original = AutoModelForCausalLM.from_pretrained

    def spy(location: str, *args: object, **kwargs: object) -> object:
        read_from.append(location)
        return original(location, *args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    assert prompt_of(gguf_folder) == first
    assert read_from == [str(copies[0])]


def test_a_replaced_file_never_meets_the_old_copy(gguf_folder: Path, cache: Path) -> None:
    prompt_of(gguf_folder)
    (old,) = (cache / "gguf").iterdir()
    leftover = cache / "gguf" / ".partial-killed"  # a store a killed process left
    leftover.mkdir()
    os.utime(leftover, (0, 0))
    # Replaced the way `cp -p` or `rsync -a` do it: a new file with the old times.
    target = gguf_folder / "model.gguf"
    stat = target.stat()
    shutil.copy2(target, gguf_folder / "new.gguf")
    os.replace(gguf_folder / "new.gguf", target)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    prompt_of(gguf_folder)
    # One fresh copy: the old one and the leftover are gone.
    (new,) = (cache / "gguf").iterdir()
    assert new != old and gguf_cache.ready(new)


def test_the_cache_can_be_off_or_unwritable(
    gguf_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("PRESAMPLE_CACHE_DIR", str(blocked))
    answer = prompt_of(gguf_folder)  # loads, caching silently skipped
    monkeypatch.setenv("PRESAMPLE_GGUF_CACHE", "0")
    assert gguf_cache.cache_root() is None
    backend = TorchBackend.load(gguf_folder, gguf_file="model.gguf")
    assert backend.info.name == "transformers"
    assert prompt_of(gguf_folder) == answer
