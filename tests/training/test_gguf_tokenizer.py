"""A GGUF export carries its tokenizer: the ``.gguf`` alone tokenizes as the folder did.

SentencePiece-style tokenizers (LLaMA's, the published TIPO models') are
written as llama.cpp's "llama" model; byte-level BPE (ours) as "gpt2".
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("gguf")

from conftest import tiny_corpus

from presample.training.gguf_export import export_gguf

TEXTS = [
    "rating: general\ntarget: <|short|>\ntag: 1girl, long hair, smile",
    "a cat sitting on a windowsill, 2 cats",
    "héllo wörld, 日本語",
]


def _sentencepiece_folder(folder: Path) -> Path:
    """A tiny LLaMA with a LLaMA-2-style tokenizer: BPE with byte fallback, ▁ for spaces."""
    from tokenizers import Tokenizer, decoders, models, normalizers, trainers
    from transformers import LlamaTokenizerFast

    from presample.training.model import random_model

    specials = ["<unk>", "<s>", "</s>"]
    tipo = ["<|short|>", "<|long|>", "<|tag_to_long|>", "<|gen_meta|>"]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
    )
    tokenizer.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
         decoders.Strip(" ", 1, 0)]
    )  # fmt: skip
    byte_pieces = [f"<0x{i:02X}>" for i in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=[*specials, *byte_pieces],
                                  show_progress=False)  # fmt: skip
    tokenizer.train_from_iterator(tiny_corpus(), trainer)
    fast = LlamaTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                              unk_token="<unk>", add_bos_token=True)  # fmt: skip
    fast.add_special_tokens({"additional_special_tokens": tipo})
    folder.mkdir()
    fast.save_pretrained(folder)
    random_model("tiny", len(fast), seed=7).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("kind", ["sentencepiece", "byte-level"])
def test_the_gguf_alone_tokenizes_like_its_folder(kind: str, tiny_model_dir: Path,
                                                  tmp_path: Path) -> None:  # fmt: skip
    from transformers import AutoTokenizer

    folder = (
        _sentencepiece_folder(tmp_path / "spm") if kind == "sentencepiece" else tiny_model_dir
    )
    alone = tmp_path / "alone"
    alone.mkdir()
    export_gguf(folder, alone / "model-F32.gguf", dtype="f32")
    assert not (alone / "tokenizer.json").exists()
    original = AutoTokenizer.from_pretrained(str(folder))
    from_gguf = AutoTokenizer.from_pretrained(str(alone), gguf_file="model-F32.gguf")
    for text in TEXTS:
        assert from_gguf(text)["input_ids"] == original(text)["input_ids"], text
    shutil.rmtree(alone)
