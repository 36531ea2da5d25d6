"""A tokenizer for our own TIPO-format models, trained with Hugging Face ``tokenizers``.

Byte-level BPE (any text encodes, nothing is ever unknown) with the LLaMA
conventions the TIPO layout assumes: ``<s>`` prepended, ``</s>`` as end and
padding, and the 13 TIPO special tokens as single tokens right after them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..tipo import SPECIAL_TOKENS

BOS, EOS = "<s>", "</s>"
# <unk> is never produced by byte-level BPE but keeps ids 0-2 in LLaMA order.
BASE_SPECIALS = ["<unk>", BOS, EOS]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8192) -> Any:
    """Train and wrap as a ``PreTrainedTokenizerFast`` ready for ``save_pretrained``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[*BASE_SPECIALS, *SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    bos_id = core.token_to_id(BOS)
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        unk_token="<unk>",
        pad_token=EOS,
        additional_special_tokens=list(SPECIAL_TOKENS),
        clean_up_tokenization_spaces=False,
    )
