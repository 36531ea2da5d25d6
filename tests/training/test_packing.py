from __future__ import annotations

import pytest

from presample.training.packing import PackedStream
from presample.training.samples import IGNORE_INDEX


def stream(records, tokenizer, seed=0):
    return PackedStream(records, tokenizer, seq_len=96, batch_size=3, seed=seed)


def test_rows_are_full_length_and_padding_is_masked(records, tokenizer):
    batch = stream(records, tokenizer).next_batch()
    for ids, labels, mask in zip(batch.input_ids, batch.labels, batch.attention_mask, strict=True):
        assert len(ids) == len(labels) == len(mask) == 96
        for token_mask, label in zip(mask, labels, strict=True):
            if not token_mask:
                assert label == IGNORE_INDEX
    assert batch.tokens == sum(map(sum, batch.attention_mask))


def test_state_resumes_the_same_batches(records, tokenizer):
    first = stream(records, tokenizer)
    for _ in range(3):
        first.next_batch()
    state = first.state_dict()
    expected = [first.next_batch() for _ in range(4)]
    second = stream(records, tokenizer)
    second.load_state_dict(state)
    assert [second.next_batch() for _ in range(4)] == expected


def test_workers_and_seeds_differ(records, tokenizer):
    a = stream(records, tokenizer, seed=0).next_batch()
    b = stream(records, tokenizer, seed=1).next_batch()
    c = PackedStream(records, tokenizer, seq_len=96, batch_size=3, seed=0, worker=1).next_batch()
    assert a != b and a != c


def test_weighting_every_source_out_is_a_clear_error(records, tokenizer):
    zero = {record.src: 0.0 for record in records}
    with pytest.raises(ValueError, match="is weighted 0; give at least one a positive"):
        PackedStream(records, tokenizer, seq_len=96, batch_size=3, seed=0, weights=zero)
    # One source left in is enough.
    kept = {**zero, records[0].src: 1.0}
    batch = PackedStream(records, tokenizer, seq_len=96, batch_size=3, seed=0, weights=kept)
    assert batch.next_batch().tokens > 0
