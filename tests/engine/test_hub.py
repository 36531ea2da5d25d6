"""Hub ids: the cached copy without the network, one clear line at once without it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("huggingface_hub")

from huggingface_hub import HfApi, constants

from presample import PresampleRequest
from presample.engine import hub
from presample.engine.backend import ModelError
from presample.engine.sampling import Sampling
from presample.presampler import Presampler
from presample.registry import resolve

REPO = "KBlueLeaf/TIPO-100M"


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path


def _no_network(*args: object, **kwargs: object) -> None:
    raise OSError("[Errno -2] Name or service not known")


def test_an_uncached_model_offline_fails_at_once_naming_the_ways_out(
    hf_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(HfApi, "model_info", _no_network)
    with pytest.raises(ModelError) as info:
        Presampler(REPO)
    message = str(info.value)
    assert "not in the Hugging Face cache" in message and "--models-dir" in message
    assert "\n" not in message


def test_an_unreachable_hub_is_one_line_without_retries(
    hf_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    monkeypatch.setattr(HfApi, "model_info", lambda *a, **k: calls.append(a) or _no_network())
    with pytest.raises(ModelError) as info:
        hub.model_folder(REPO)
    assert "cannot be reached" in str(info.value) and "HF_HUB_OFFLINE" in str(info.value)
    assert len(calls) == 1


def test_a_cached_model_loads_without_asking_the_network(
    hf_cache: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cache's own layout: refs/main names the snapshot folder.
    repo = hf_cache / "models--KBlueLeaf--TIPO-100M"
    snapshot = repo / "snapshots" / "0123abcd"
    shutil.copytree(tiny_model_dir, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd", encoding="utf-8")
    monkeypatch.setattr(HfApi, "model_info", _no_network)
    assert hub.model_folder(REPO) == snapshot
    sampler = Presampler(REPO, backend="transformers", sampling=Sampling(max_new_tokens=8))
    request = PresampleRequest(prompt="1girl", tag_length="very_short", nl_length="very_short")
    assert sampler(request).tags.special[0] == "1girl"


def test_a_models_dir_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        resolve("KBlueLeaf/TIPO-200M-ft2", search=(tmp_path / "nope",))


def test_llama_cpp_with_a_hub_id_reads_the_cached_published_gguf(
    hf_cache: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("llama_cpp", reason="presample[llamacpp] is not installed")
    repo = hf_cache / "models--KBlueLeaf--TIPO-200M-ft2"
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    shutil.copy(tiny_gguf, snapshot / "TIPO-200M-ft2-F16.gguf")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd", encoding="utf-8")
    monkeypatch.setattr(HfApi, "model_info", _no_network)
    sampler = Presampler("KBlueLeaf/TIPO-200M-ft2", backend="llama.cpp",
                         sampling=Sampling(max_new_tokens=8))  # fmt: skip
    assert sampler.backend.info.name == "llama.cpp"
    assert sampler.backend.info.model == "KBlueLeaf/TIPO-200M-ft2"


def test_llama_cpp_with_an_uncached_hub_gguf_offline_is_one_line(
    hf_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as info:
        Presampler("KBlueLeaf/TIPO-v2.1-1B-A200M", backend="llama.cpp")
    message = str(info.value)
    assert "gguf/TIPO-v2.1-1B-A200M-Q8_0.gguf" in message and "\n" not in message
