"""A KV cache that grows in place instead of re-concatenating every step.

transformers' ``DynamicLayer`` appends a token with ``torch.cat``, copying the
whole cache of every layer at every decode step: at batch 32 on the CPU that
copy took more time than the matrix products. This layer keeps spare capacity
(doubling when full) and hands attention views of the filled part, so a step
writes one position and copies nothing.
"""

from __future__ import annotations

import inspect

import torch
from transformers.cache_utils import Cache, DynamicLayer

MIN_CAPACITY = 64


class GrowingLayer(DynamicLayer):
    """A ``DynamicLayer`` with amortised O(1) appends."""

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self._key_buffer: torch.Tensor | None = None
        self._value_buffer: torch.Tensor | None = None
        self._length = 0

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object, **kwargs: object
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        new = key_states.shape[-2]
        end = self._length + new
        if self._key_buffer is None or end > self._key_buffer.shape[-2]:
            self._grow(key_states, value_states, max(end, 2 * self._length, MIN_CAPACITY))
        assert self._key_buffer is not None and self._value_buffer is not None
        self._key_buffer[:, :, self._length : end] = key_states
        self._value_buffer[:, :, self._length : end] = value_states
        self._length = end
        self.keys = self._key_buffer[:, :, :end]
        self.values = self._value_buffer[:, :, :end]
        return self.keys, self.values

    def _grow(self, key_states: torch.Tensor, value_states: torch.Tensor, capacity: int) -> None:
        def bigger(old: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
            shape = (*like.shape[:2], capacity, like.shape[-1])
            fresh = like.new_zeros(shape)
            if old is not None and self._length:
                fresh[:, :, : self._length] = old[:, :, : self._length]
            return fresh

        self._key_buffer = bigger(self._key_buffer, key_states)
        self._value_buffer = bigger(self._value_buffer, value_states)

    def get_seq_length(self) -> int:
        return self._length if self.is_initialized else 0

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.is_initialized and self._key_buffer is not None:
            self._key_buffer = self._key_buffer[indices]
            self._value_buffer = self._value_buffer[indices]  # type: ignore[index]
            self.keys = self._key_buffer[:, :, : self._length]
            self.values = self._value_buffer[:, :, : self._length]

    def reset(self) -> None:
        self._key_buffer = self._value_buffer = None
        self._length = 0
        super().reset()


def cache_keyword(model: torch.nn.Module) -> str:
    """The name ``model.forward`` takes its KV cache under.

    transformers 5.2x renamed ``past_key_values`` to ``cache`` (the old name warns
    and goes away in 5.40); older releases know only the old name.
    """
    parameters = inspect.signature(model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def growing_cache() -> Cache:
    """An empty cache whose layers are :class:`GrowingLayer` (one per model layer, made lazily)."""
    return Cache(layer_class_to_replicate=GrowingLayer)
