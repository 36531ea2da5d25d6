"""The ONNX Runtime backend (the default engine on the CPU) on the tiny model.

The tiny random LLaMA is converted with onnxruntime-genai's builder in float32
(so logits can be compared with transformers to float tolerance) and in int8
(what users run).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime_genai", reason="presample[onnx] is not installed")

from conftest import FIXTURES, read_jsonl  # noqa: E402

from presample import PresampleRequest  # noqa: E402
from presample.engine import onnx_export  # noqa: E402
from presample.engine.backend import GenerationJob, ModelError  # noqa: E402
from presample.engine.onnx_backend import OnnxBackend  # noqa: E402
from presample.engine.sampling import Sampling  # noqa: E402
from presample.presampler import Presampler, load_backend  # noqa: E402
from presample.registry import resolve  # noqa: E402

GREEDY = Sampling(temperature=0, max_new_tokens=20, repetition_penalty=1.0)
TEXT = "rating: general\ntarget: <|short|>\ntag: 1girl, long hair, smile"


def _convert(folder: Path, precision: str) -> Path:
    return onnx_export.convert(
        folder, identity=onnx_export.file_identity(folder), precision=precision
    )


@pytest.fixture(scope="module")
def fp32(tiny_model_dir: Path) -> OnnxBackend:
    return OnnxBackend.load(_convert(tiny_model_dir, "fp32"), name="tiny")


@pytest.fixture(scope="module")
def int8(tiny_model_dir: Path) -> OnnxBackend:
    return OnnxBackend.load(_convert(tiny_model_dir, "int8"), name="tiny")


def test_token_ids_equal_the_transformers_tokenizer(fp32: OnnxBackend,
                                                    tiny_model_dir: Path) -> None:  # fmt: skip
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    inputs = [r["expected"] for r in read_jsonl(FIXTURES / "kgen_0.3.1" / "tipo_inputs.jsonl")]
    inputs.append("héllo wörld, 日本語, (smile:1.2)  double  space\nnew line")
    for text in inputs:
        assert fp32._tokenize(text) == tokenizer(text)["input_ids"], text


def test_float32_logits_match_the_transformers_model(fp32: OnnxBackend,
                                                     tiny_model_dir: Path) -> None:  # fmt: skip
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    ids = fp32._tokenize(TEXT)
    ours = fp32._forward(np.asarray([ids]), len(ids), fp32._empty_cache(len(ids)))
    with torch.no_grad():
        reference = model(torch.tensor([ids])).logits[0, -1].numpy()
    np.testing.assert_allclose(ours[0], reference, atol=2e-3, rtol=1e-3)


def test_reading_a_prompt_projects_only_its_last_position(int8: OnnxBackend) -> None:
    # The vocabulary projection of every other position was a fifth of a prefill's
    # work, for logits the decode loop never reads (onnx_export: prune_lm_head).
    assert int8.session.get_outputs()[0].shape[:2] == ["batch_size", 1]


def test_int8_weights_are_quantized_as_benchmarked(int8: OnnxBackend) -> None:
    # int8 activations (benchmarks/: 1.2x float activations); the builder's blocks of 32
    # weights per scale: with 128, reading a prompt was faster but a row's bits depended
    # on its batch (benchmarks/bench_onnx_kernels.py), so a seed's text would too.
    import onnx

    assert int8.folder is not None
    graph = onnx.load(str(int8.folder / onnx_export.MODEL_FILE), load_external_data=False).graph
    nodes = [n for n in graph.node if n.op_type == "MatMulNBits"]
    assert nodes
    for node in nodes:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert (attributes["bits"], attributes["block_size"], attributes["accuracy_level"]) == (
            8, 32, 4,
        )  # fmt: skip


def test_decoding_with_the_cache_equals_reading_the_whole_text(int8: OnnxBackend) -> None:
    ids = int8._tokenize(TEXT)
    whole = int8._forward(np.asarray([ids]), len(ids), int8._empty_cache(len(ids)))
    cache = int8._empty_cache(len(ids))
    int8._forward(np.asarray([ids[:-1]]), len(ids) - 1, cache)
    step = int8._forward(np.asarray([ids[-1:]]), len(ids), cache)
    np.testing.assert_allclose(step, whole, atol=1e-4, rtol=1e-4)


def test_a_row_computes_the_same_bits_alone_and_in_a_batch(int8: OnnxBackend) -> None:
    # What makes a seed reproduce in any batch position: the copies of one
    # prompt's cache decode together, and each row must not see the others.
    ids = int8._tokenize(TEXT)
    cache = int8._empty_cache(len(ids) + 1)
    int8._forward(np.asarray([ids]), len(ids), cache)
    rows = int8._empty_cache(len(ids) + 1, rows=3)
    int8._forward(np.asarray([ids]), len(ids), rows, start=2)  # read into the last row
    rows.move(2, 0, len(ids))
    rows.move(2, 1, len(ids))
    alone = int8._forward(np.asarray([[5]]), len(ids) + 1, cache)
    batched = int8._forward(np.asarray([[7], [5], [9]]), len(ids) + 1, rows)
    assert np.array_equal(batched[1], alone[0])
    # A single row of the block, in place.
    again = int8._empty_cache(len(ids) + 1, rows=3)
    int8._forward(np.asarray([ids]), len(ids), again, start=1)
    assert np.array_equal(int8._forward(np.asarray([[5]]), len(ids) + 1, again, start=1), alone)


def test_same_seed_same_text_alone_and_among_draws(int8: OnnxBackend) -> None:
    sampling = Sampling(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, max_new_tokens=24)
    alone = int8.generate([GenerationJob(TEXT, sampling, seed=11)])[0]
    batch = int8.generate(
        [GenerationJob(TEXT, sampling, seed=s) for s in (10, 11, 12)]
        + [GenerationJob(TEXT + ", blue eyes", sampling, seed=11)]
    )
    assert batch[1].text == alone.text
    assert batch[3].text != alone.text or batch[3].prompt_tokens != alone.prompt_tokens
    assert len({g.text for g in batch[:3]}) > 1  # different seeds, different draws


def test_greedy_float32_output_equals_the_transformers_backend(tiny_model_dir: Path) -> None:
    request = PresampleRequest(prompt="1girl, scenery", seed=3, tag_length="very_short",
                               nl_length="very_short")  # fmt: skip
    torch_result = Presampler(str(tiny_model_dir), backend="transformers", dtype="float32",
                              sampling=GREEDY)(request)  # fmt: skip
    onnx_result = Presampler(str(tiny_model_dir), backend="onnx", dtype="float32",
                             sampling=GREEDY)(request)  # fmt: skip
    assert [s.model_output for s in onnx_result.steps] == [
        s.model_output for s in torch_result.steps
    ]
    assert onnx_result.prompt == torch_result.prompt


def test_constraints_and_bans_hold_on_onnx(tiny_model_dir: Path) -> None:
    ban = [{"pattern": "hair", "kind": "substring"}]
    request = PresampleRequest(prompt="1girl", seed=0, ban=ban, tag_length="short")
    result = Presampler(str(tiny_model_dir), backend="onnx")(request)
    assert not any("hair" in tag for tag in result.tags.general)
    assert result.tags.special[0] == "1girl"


def test_auto_picks_onnx_on_the_cpu_and_not_llamacpp(tiny_model_dir: Path) -> None:
    backend = load_backend(resolve(str(tiny_model_dir)))
    assert backend.info.name == "onnx" and backend.info.dtype == "int8"
    # An explicit precision ONNX Runtime does not run goes to transformers under auto.
    assert load_backend(resolve(str(tiny_model_dir)), dtype="bfloat16").info.name == (
        "transformers"
    )


def test_conversion_is_kept_and_reused(tiny_model_dir: Path) -> None:
    first = _convert(tiny_model_dir, "int8")
    stamp = (first / onnx_export.MODEL_FILE).stat().st_mtime_ns
    assert _convert(tiny_model_dir, "int8") == first
    assert (first / onnx_export.MODEL_FILE).stat().st_mtime_ns == stamp
    card = json.loads((first / onnx_export.SOURCE_FILE).read_text(encoding="utf-8"))
    assert card["precision"] == "int8" and card["model"]["layers"] >= 1


def test_an_explicit_onnx_request_fails_in_one_line_for_other_architectures(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "gpt2ish"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}), encoding="utf-8")
    (folder / "tokenizer.json").write_text("{}", encoding="utf-8")
    source = resolve(str(folder))
    with pytest.raises(ModelError) as info:
        load_backend(source, backend="onnx")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("rules", [True, False])
def test_a_seed_gives_the_same_text_alone_and_at_any_batch_position(
    tiny_model_dir: Path, rules: bool
) -> None:
    # The default path (auto: ONNX Runtime on the CPU), as a user meets it.
    sampler = Presampler(str(tiny_model_dir))
    assert sampler.engine == "onnx int8"
    fields = {"fill_tag_length": rules, "fill_nl_length": rules, "known_tags_only": rules,
              "tag_length": "very_short", "nl_length": "very_short"}  # fmt: skip
    prompts = ["1girl, scenery", "a cat", "1boy", "2girls, beach"] * 2
    requests = [PresampleRequest(prompt=p, seed=s, **fields) for s, p in enumerate(prompts)]
    batch = sampler.presample_many(requests)
    alone = sampler(requests[5])
    assert batch[5].prompt == alone.prompt
    assert [s.model_output for s in batch[5].steps] == [s.model_output for s in alone.steps]
    assert alone.engine == "onnx int8"


def test_threads_spin_only_on_a_quiet_machine() -> None:
    import subprocess
    import sys

    from presample.engine.onnx_backend import foreign_load, thread_policy

    assert thread_policy(load=0.0).spinning and not thread_policy(load=1.0).spinning
    # A process keeping a core busy is seen (this one's own work is not counted).
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        assert max(foreign_load(0.3) for _ in range(3)) > 0.5
    finally:
        hog.kill()


def test_prepare_converts_once_and_says_where(tiny_model_dir: Path, capsys) -> None:
    from presample.cli import main

    assert main(["prepare", "--model", str(tiny_model_dir)]) == 0
    err = capsys.readouterr().err
    assert "ready: " in err and "on onnx int8" in err
    folder = Path(err.split("(")[-1].split(")")[0])
    assert (folder / onnx_export.MODEL_FILE).is_file()


def test_a_converted_model_runs_without_importing_pytorch(tiny_model_dir: Path) -> None:
    # PyTorch's import alone costs 1.5 s of a fresh command; ONNX Runtime needs none
    # of it once the model is converted (this machine has no GPU driver to look for).
    import subprocess
    import sys

    _convert(tiny_model_dir, "int8")
    code = (
        "import sys\n"
        "from presample import Presampler, PresampleRequest\n"
        f"p = Presampler({str(tiny_model_dir)!r})\n"
        "p(PresampleRequest(prompt='1girl', tag_length='very_short', nl_length='very_short'))\n"
        "print(p.engine, 'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)  # fmt: skip
    assert done.stdout.split() == ["onnx", "int8", "False", "False"], done.stderr[-500:]


def test_a_replaced_model_file_leaves_one_conversion(tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    first = _convert(folder, "int8")
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.unlink()
    weights.write_bytes(data)  # the same bytes in a new file: a new identity
    second = _convert(folder, "int8")
    assert second != first and second.is_dir() and not first.exists()


def test_a_row_computes_the_same_bits_beside_longer_and_shorter_rows(int8: OnnxBackend) -> None:
    # Different prompts decode in one batch, each row only as long as its own text:
    # the attention mask tells the graph where each row ends.
    texts = [TEXT, "1girl", TEXT + ", blue eyes, long hair, smile"]
    ids = [int8._tokenize(t) for t in texts]
    longest = max(map(len, ids)) + 2
    alone = []
    for row in ids:
        cache = int8._empty_cache(longest)
        int8._forward(np.asarray([row]), len(row), cache)
        alone.append((int8._forward(np.asarray([[5]]), len(row) + 1, cache)[0], cache))
    batch = int8._empty_cache(longest, rows=3)
    for r, row in enumerate(ids):
        own = int8._empty_cache(len(row))
        int8._forward(np.asarray([row]), len(row), own)
        for name, array in own.arrays.items():
            batch.arrays[name][r, :, : len(row)] = array[0]
    together = int8._forward(np.asarray([[5]] * 3), [len(row) + 1 for row in ids], batch)
    for r in range(3):
        assert np.array_equal(together[r], alone[r][0])
    # The step wrote each row's keys where its own pass did.
    for name, array in batch.arrays.items():
        for r, row in enumerate(ids):
            end = len(row) + 1
            assert np.array_equal(array[r, :, :end], alone[r][1].arrays[name][0, :, :end])


def test_different_prompts_give_the_same_text_as_alone(int8: OnnxBackend) -> None:
    sampling = Sampling(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, max_new_tokens=20)
    jobs = [GenerationJob(t, sampling, seed=s) for s, t in
            enumerate(["1girl", TEXT, "a cat on a sofa, in the sun", TEXT])]  # fmt: skip
    together = int8.generate(jobs)
    for job, generation in zip(jobs, together, strict=True):
        (alone,) = int8.generate([job])
        assert generation == alone
