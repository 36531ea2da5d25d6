"""Model loading: folders, GGUF files (ours and the reference's names), clear failures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("gguf")

from presample import PresampleRequest
from presample.engine.backend import ModelError
from presample.engine.sampling import Sampling
from presample.presampler import Presampler
from presample.registry import KNOWN_MODELS, known, resolve

SHORT = Sampling(max_new_tokens=16)
REQ = PresampleRequest(prompt="1girl, scenery", seed=9, tag_length="very_short",
                       nl_length="very_short")  # fmt: skip


@pytest.mark.parametrize("engine", ["transformers", "auto"])
def test_gguf_path_gives_the_same_prompt_as_the_folder(tiny_model_dir: Path, tiny_gguf: Path,
                                                       engine: str) -> None:  # fmt: skip
    from_folder = Presampler(str(tiny_model_dir), backend=engine, sampling=SHORT)(REQ)
    from_gguf = Presampler(str(tiny_gguf), backend=engine, sampling=SHORT)(REQ)
    assert from_gguf.engine == from_folder.engine
    assert from_gguf.prompt == from_folder.prompt
    assert [s.model_input for s in from_gguf.steps] == [s.model_input for s in from_folder.steps]


def test_reference_gguf_names_in_a_models_folder_are_found(tiny_gguf: Path, tmp_path: Path):
    kgen = tmp_path / "kgen"
    kgen.mkdir()
    shutil.copy(tiny_gguf, kgen / "TIPO-200M-ft2_TIPO-200M-ft2-F16.gguf")
    source = resolve("KBlueLeaf/TIPO-200M-ft2", search=(kgen,))
    assert (source.kind, source.layout, source.gguf_file) == (
        "gguf",
        "tipo",
        "TIPO-200M-ft2_TIPO-200M-ft2-F16.gguf",
    )
    result = Presampler("TIPO-200M-ft2", models_dirs=[kgen], sampling=SHORT)(REQ)
    assert result.prompt.startswith("1girl")


def test_registry_knows_the_published_models() -> None:
    assert known("KBlueLeaf/DanTagGen-delta-rev2").layout == "dtg"
    assert known("DanTagGen-beta").quality is False
    assert known("tipo-500m-ft").layout == "tipo"
    assert len({m.repo for m in KNOWN_MODELS}) == len(KNOWN_MODELS) == 13
    hub = resolve("KBlueLeaf/TIPO-500M-ft")
    assert (hub.kind, hub.location) == ("hub", "KBlueLeaf/TIPO-500M-ft")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("/nonexistent/model.gguf", "GGUF file not found"),
        ("./no-such-folder", "no model './no-such-folder'"),
    ],
)
def test_missing_models_are_clear(spec: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        resolve(spec)


def test_corrupt_files_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelError, match="cannot load model"):
        Presampler(str(bad))
    folder = tmp_path / "empty-model"
    folder.mkdir()
    with pytest.raises(ModelError, match="not a model folder"):
        Presampler(str(folder))


def test_a_model_without_the_layout_tokens_is_refused(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from presample.training.model import random_model

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.train_from_iterator(["tag: 1girl, long hair"] * 20, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>", "</s>"], show_progress=False))  # fmt: skip
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>")
    tokenizer.save_pretrained(tmp_path)
    random_model("tiny", len(tokenizer)).save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="does not speak the TIPO layout"):
        Presampler(str(tmp_path))


@pytest.mark.parametrize("engine_name", ["transformers", "llama.cpp"])
def test_a_gguf_of_an_architecture_the_engine_cannot_run_is_clear(
    tiny_gguf: Path, tmp_path: Path, engine_name: str
) -> None:
    """The tiny model's file relabelled as an architecture nobody runs."""
    import gguf

    if engine_name == "llama.cpp":
        pytest.importorskip("llama_cpp", reason="presample[llamacpp] is not installed")
    reader = gguf.GGUFReader(str(tiny_gguf))
    out = tmp_path / "strange.gguf"
    writer = gguf.GGUFWriter(str(out), "strangeformer")
    for field in reader.fields.values():
        if field.name.startswith(("llama.", "general.architecture", "GGUF.")):
            continue
        sub_type = field.types[-1] if len(field.types) > 1 else None
        writer.add_key_value(field.name, field.contents(), field.types[0], sub_type=sub_type)
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelError, match="cannot load model") as caught:
        Presampler(str(out), backend=engine_name)
    assert "strangeformer" in str(caught.value)


def test_the_model_card_sets_lengths_a_request_leaves_out(tiny_model_dir: Path,
                                                          tmp_path: Path) -> None:  # fmt: skip
    import json

    folder = tmp_path / "carded"
    shutil.copytree(tiny_model_dir, folder)
    card = {"name": "carded", "layout": "tipo", "defaults": {"tag_length": "very_short"}}
    (folder / "presample.json").write_text(json.dumps(card))
    presampler = Presampler(str(folder), backend="transformers", sampling=SHORT)
    unset = presampler(PresampleRequest(prompt="1girl, scenery", seed=1, generate_nl=False))
    assert unset.steps[0].length == "very_short"
    asked = presampler(PresampleRequest(prompt="1girl, scenery", seed=1, generate_nl=False,
                                        tag_length="long"))  # fmt: skip
    assert asked.steps[0].length == "long"
    # The same through JSON, the way batch files and the server pass requests.
    from_json = presampler({"prompt": "1girl, scenery", "seed": 1, "generate_nl": False})
    assert from_json.steps[0].length == "very_short"

    for bad in ({"tag_length": "enormous"}, {"tag_prior": 9}, {"tag_prior": "strong"},
                {"tag_draw": 1.5}):  # fmt: skip
        card["defaults"] = bad
        (folder / "presample.json").write_text(json.dumps(card))
        with pytest.raises(ModelError, match="'defaults' may set tag_length"):
            resolve(str(folder))


def test_the_shipped_model_asks_for_short_lengths_and_its_tag_prior_by_default() -> None:
    source = resolve("default")
    assert dict(source.defaults) == {
        "tag_length": "short", "nl_length": "short", "tag_prior": 3.0, "tag_draw": 0.5
    }  # fmt: skip


def test_the_card_sets_the_tag_prior_a_request_leaves_out(tiny_model_dir: Path,
                                                          tmp_path: Path) -> None:  # fmt: skip
    import json

    folder = tmp_path / "carded"
    shutil.copytree(tiny_model_dir, folder)
    card = {"name": "carded", "layout": "tipo", "defaults": {"tag_prior": 2, "tag_draw": 1}}
    (folder / "presample.json").write_text(json.dumps(card))
    presampler = Presampler(str(folder), backend="transformers", sampling=SHORT)
    carded = presampler.with_model_defaults(PresampleRequest(prompt="1girl"))
    assert (carded.tag_prior, carded.tag_draw) == (2.0, 1.0)
    off = PresampleRequest(prompt="1girl", tag_prior=0, tag_draw=0)
    assert presampler.with_model_defaults(off).tag_prior == 0.0
    assert presampler.with_model_defaults(off).tag_draw == 0.0
    # A model without a card leans on nothing unless asked.
    plain = Presampler(str(tiny_model_dir), backend="transformers", sampling=SHORT)
    assert plain.with_model_defaults(PresampleRequest(prompt="1girl")).tag_prior == 0.0
    assert plain.with_model_defaults(PresampleRequest(prompt="1girl")).tag_draw == 0.0


def test_a_model_that_needs_custom_code_is_refused_without_asking(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    import json
    import shutil
    import subprocess
    import sys

    folder = tmp_path / "custom"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="tipo_custom", architectures=["TipoCustom"],
                  auto_map={"AutoConfig": "modeling.TipoConfig",
                            "AutoModelForCausalLM": "modeling.TipoCustom"})  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling.py").write_text("raise SystemExit('custom code ran')\n")
    # Standard input open and empty: a prompt would read it; a hang would time out.
    done = subprocess.run(
        [sys.executable, "-m", "presample", "1girl", "--model", str(folder)],
        input="", capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "never runs" in done.stderr and "custom code ran" not in done.stderr
    assert "[y/N]" not in done.stdout + done.stderr
