"""The llama.cpp backend on the tiny model written as GGUF (f32 and Q8_0).

Skipped where llama-cpp-python (the optional ``presample[llamacpp]`` extra,
compiled at install) is missing; scripts/test.sh builds it when it can.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gguf")
pytest.importorskip("llama_cpp", reason="llama-cpp-python (presample[llamacpp]) not installed")

from conftest import FIXTURES, read_jsonl  # noqa: E402

from presample import PresampleRequest  # noqa: E402
from presample.engine.backend import GenerationJob, ModelError  # noqa: E402
from presample.engine.llamacpp_backend import LlamaCppBackend, gguf_file_type  # noqa: E402
from presample.engine.sampling import Sampling  # noqa: E402
from presample.presampler import Presampler  # noqa: E402
from presample.training.gguf_export import export_gguf  # noqa: E402

GREEDY = Sampling(temperature=0, max_new_tokens=20, repetition_penalty=1.0)


@pytest.fixture(scope="module")
def backend(tiny_gguf: Path) -> LlamaCppBackend:
    return LlamaCppBackend.load(tiny_gguf)


@pytest.fixture(scope="module")
def q8_gguf(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_gguf(tiny_model_dir, tmp_path_factory.mktemp("q8") / "tiny-Q8_0.gguf",
                       dtype="q8_0")  # fmt: skip


def test_token_ids_equal_the_transformers_tokenizer(backend: LlamaCppBackend,
                                                     tiny_model_dir: Path) -> None:  # fmt: skip
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    inputs = [r["expected"] for r in read_jsonl(FIXTURES / "kgen_0.3.1" / "tipo_inputs.jsonl")]
    inputs.append("héllo wörld, 日本語, (smile:1.2)  double  space\nnew line")
    for text in inputs:
        assert backend._tokenize(text) == tokenizer(text)["input_ids"], text


def test_logits_match_the_transformers_model(backend: LlamaCppBackend,
                                             tiny_model_dir: Path) -> None:  # fmt: skip
    import llama_cpp
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    text = "rating: general\ntarget: <|short|>\ntag: 1girl, long hair, smile"
    ids = backend._tokenize(text)
    backend._feed_prompt(ids)
    ours = np.ctypeslib.as_array(
        llama_cpp.llama_get_logits_ith(backend.llm.ctx, -1), shape=(backend.vocab,)
    )
    with torch.no_grad():
        reference = model(torch.tensor([ids])).logits[0, -1].numpy()
    np.testing.assert_allclose(ours, reference, atol=2e-3, rtol=1e-3)


def test_greedy_output_equals_the_transformers_backend(tiny_model_dir: Path,
                                                       tiny_gguf: Path) -> None:  # fmt: skip
    request = PresampleRequest(prompt="1girl, scenery", seed=3, tag_length="very_short",
                               nl_length="very_short")  # fmt: skip
    torch_result = Presampler(str(tiny_model_dir), dtype="float32", sampling=GREEDY)(request)
    llama_result = Presampler(str(tiny_gguf), backend="llama.cpp", sampling=GREEDY)(request)
    assert [s.model_output for s in llama_result.steps] == [
        s.model_output for s in torch_result.steps
    ]
    assert llama_result.prompt == torch_result.prompt


def test_the_kv_cache_of_a_shared_prefix_changes_nothing(backend: LlamaCppBackend) -> None:
    sampling = Sampling(max_new_tokens=16)
    a = GenerationJob("rating: general\ntarget: <|short|>\ntag: 1girl, solo", sampling, 5)
    b = GenerationJob("rating: general\ntarget: <|short|>\ntag: 2boys", sampling, 6)
    backend.llm.reset()
    alone = backend.generate([b])
    backend.llm.reset()
    after_a = backend.generate([a, b, b])
    assert after_a[1] == alone[0] == after_a[2]


def test_quantised_q8_file_loads_runs_and_reproduces(q8_gguf: Path) -> None:
    assert gguf_file_type(q8_gguf) == "Q8_0"
    request = PresampleRequest(prompt="1girl, scenery", seed=9, tag_length="very_short")
    first = Presampler(str(q8_gguf), backend="llama.cpp", sampling=Sampling(max_new_tokens=24))
    assert first.backend.info.name == "llama.cpp" and first.backend.info.dtype == "q8_0"
    assert first(request).prompt == first(request).prompt
    code = (
        "from presample import PresampleRequest; from presample.presampler import Presampler;"
        "from presample.engine.sampling import Sampling;"
        f"p = Presampler({str(q8_gguf)!r}, backend='llama.cpp', "
        "sampling=Sampling(max_new_tokens=24));"
        "print(p(PresampleRequest(prompt='1girl, scenery', seed=9,"
        " tag_length='very_short')).prompt, end='')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == first(request).prompt


def test_wrong_uses_are_clear(tiny_model_dir: Path, tiny_gguf: Path) -> None:
    with pytest.raises(ModelError, match="runs GGUF files"):  # a folder without model.gguf
        Presampler(str(tiny_model_dir), backend="llama.cpp")
    with pytest.raises(ModelError, match="the GGUF file decides the precision"):
        Presampler(str(tiny_gguf), backend="llama.cpp", dtype="bfloat16")
    with pytest.raises(ModelError, match="unknown backend"):
        Presampler(str(tiny_gguf), backend="vllm")


def test_cli_converts_the_model_and_runs_it(tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    import gguf

    folder = tmp_path / "ours"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "presample.json").write_text('{"name": "tiny-tipo-test", "layout": "tipo"}')
    out = tmp_path / "tiny.gguf"
    cli = [sys.executable, "-m", "presample"]
    made = subprocess.run([*cli, "train", "gguf", str(folder), "-o", str(out),
                           "--type", "q8_0"], capture_output=True, text=True)  # fmt: skip
    assert made.returncode == 0, made.stderr
    # The name GGUF tools show is the model card's.
    assert gguf.GGUFReader(out).fields["general.name"].contents() == "tiny-tipo-test"
    again = subprocess.run([*cli, "train", "gguf", str(folder), "-o", str(out)],
                           capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 2 and "--force" in again.stderr
    run = subprocess.run(
        [*cli, "--model", str(out), "--backend", "llama.cpp", "--max-new-tokens", "12",
         "--seed", "4", "--json", "1girl, scenery"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert '"1girl"' in run.stdout


def test_a_model_folder_with_its_gguf_copy_runs_on_llama_cpp(tiny_model_dir: Path,
                                                             tmp_path: Path) -> None:  # fmt: skip
    import shutil

    folder = tmp_path / "ours"
    shutil.copytree(tiny_model_dir, folder)
    with pytest.raises(ModelError, match=r"without model\.gguf"):
        Presampler(str(folder), backend="llama.cpp")
    export_gguf(folder, folder / "model.gguf", dtype="f32")
    request = PresampleRequest(prompt="1girl, scenery", seed=2, tag_length="very_short",
                               nl_length="very_short")  # fmt: skip
    on_llama = Presampler(str(folder), backend="llama.cpp", sampling=GREEDY)
    assert on_llama.backend.info.name == "llama.cpp"
    # The folder itself still means transformers unless llama.cpp is asked for.
    on_torch = Presampler(str(folder), dtype="float32", sampling=GREEDY)
    assert on_torch.backend.info.name == "transformers"
    assert on_llama(request).prompt == on_torch(request).prompt
