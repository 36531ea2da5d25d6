"""The in-place KV cache holds exactly what concatenation would."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from presample.engine.kvcache import MIN_CAPACITY, GrowingLayer, growing_cache  # noqa: E402


def test_appends_past_capacity_and_row_selection_keep_every_position() -> None:
    gen = torch.Generator().manual_seed(0)
    layer = GrowingLayer()
    parts = [torch.randn(4, 2, n, 8, generator=gen) for n in (50, 1, 1, 30, *([1] * 60))]
    for part in parts:
        keys, values = layer.update(part, -part)
    expected = torch.cat(parts, dim=2)
    assert expected.shape[2] > 2 * MIN_CAPACITY  # grew more than once
    assert torch.equal(keys, expected) and torch.equal(values, -expected)
    assert layer.get_seq_length() == expected.shape[2]

    layer.batch_select_indices(torch.tensor([3, 1]))
    more = torch.randn(2, 2, 1, 8, generator=gen)
    keys, _ = layer.update(more, more)
    assert torch.equal(keys, torch.cat([expected[[3, 1]], more], dim=2))


def test_a_cache_makes_one_layer_per_model_layer() -> None:
    cache = growing_cache()
    x = torch.zeros(1, 2, 3, 4)
    cache.update(x, x, 0)
    cache.update(x, x, 1)
    assert [type(layer) for layer in cache.layers] == [GrowingLayer, GrowingLayer]
    assert cache.get_seq_length() == 3


def test_the_cache_goes_under_the_keyword_this_transformers_takes_without_warning() -> None:
    import warnings

    from transformers import LlamaConfig, LlamaForCausalLM

    from presample.engine.kvcache import cache_keyword

    config = LlamaConfig(
        vocab_size=32,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    model = LlamaForCausalLM(config).eval()
    cache = growing_cache()
    keyword = {cache_keyword(model): cache}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.no_grad():
            model(input_ids=torch.tensor([[1, 2, 3]]), use_cache=True, **keyword)
            model(input_ids=torch.tensor([[4]]), use_cache=True, **keyword)
    assert cache.get_seq_length() == 4
