"""An endless, exactly resumable stream of packed training batches.

Records are drawn by source weight with one seeded ``random.Random`` per
worker (a process under ``accelerate``), each draw becomes a fresh sample
(``samples.make_sample``), and samples are packed whole into rows of
``seq_len`` tokens. The whole state is that generator's state plus the one
sample that did not fit the last row, so a resumed run sees the very batches
it would have seen.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .records import Record
from .samples import IGNORE_INDEX, SampleConfig, encode, make_sample, supported_tasks

# How often a source is drawn, relative to the others. Tag prompts are what
# users type most; long descriptions are rare and precious; the short
# everyday captions (COCO, CC3M) are many but teach little each.
SOURCE_WEIGHTS: dict[str, float] = {
    "civitai": 6.0,
    "coco": 1.0,
    "cc3m": 0.8,
    "dpg": 0.6,
    "iiw": 0.3,
    "iiw-cm3600": 0.4,
    "iiw-locnar": 0.4,
    "iiw-objects": 0.3,
    "ella": 0.01,
}


@dataclass(frozen=True, slots=True)
class Batch:
    input_ids: list[list[int]]
    labels: list[list[int]]
    attention_mask: list[list[int]]
    tokens: int
    """Real (non-padding) tokens in the batch."""


class PackedStream:
    def __init__(
        self,
        records: Sequence[Record],
        tokenizer: Any,
        *,
        seq_len: int,
        batch_size: int,
        seed: int,
        worker: int = 0,
        weights: Mapping[str, float] | None = None,
        config: SampleConfig | None = None,
    ) -> None:
        by_src: dict[str, list[Record]] = defaultdict(list)
        for record in records:
            if supported_tasks(record):
                by_src[record.src].append(record)
        if not by_src:
            raise ValueError("no record supports any training task")
        weights = SOURCE_WEIGHTS if weights is None else weights
        self._sources = sorted(by_src)
        self._by_src = by_src
        self._weights = [weights.get(src, 1.0) for src in self._sources]
        if not any(w > 0 for w in self._weights):
            raise ValueError(
                f"every source of the data ({', '.join(self._sources)}) is weighted 0; "
                "give at least one a positive --source-weight"
            )
        self._tokenizer = tokenizer
        self._config = config or SampleConfig()
        self.seq_len = seq_len
        self.batch_size = batch_size
        self._rng = random.Random(f"presample:{seed}:{worker}")
        self._pending: tuple[list[int], list[int]] | None = None
        self.batches = 0

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self._rng.getstate(), "pending": self._pending, "batches": self.batches}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._rng.setstate(_as_state(state["rng"]))
        pending = state["pending"]
        self._pending = None if pending is None else (list(pending[0]), list(pending[1]))
        self.batches = int(state["batches"])

    def _next_sample(self) -> tuple[list[int], list[int]]:
        if self._pending is not None:
            sample, self._pending = self._pending, None
            return sample
        src = self._rng.choices(self._sources, weights=self._weights)[0]
        record = self._rng.choice(self._by_src[src])
        return encode(make_sample(record, self._rng, self._config), self._tokenizer, self.seq_len)

    def next_batch(self) -> Batch:
        pad = self._tokenizer.pad_token_id
        rows_ids, rows_labels, rows_mask, real = [], [], [], 0
        for _ in range(self.batch_size):
            ids: list[int] = []
            labels: list[int] = []
            while True:
                sample_ids, sample_labels = self._next_sample()
                if ids and len(ids) + len(sample_ids) > self.seq_len:
                    # Samples stay whole: one that does not fit opens the next row.
                    self._pending = (sample_ids, sample_labels)
                    break
                ids += sample_ids
                labels += sample_labels
                if len(ids) >= self.seq_len:
                    break
            real += len(ids)
            fill = self.seq_len - len(ids)
            rows_ids.append(ids + [pad] * fill)
            rows_labels.append(labels + [IGNORE_INDEX] * fill)
            rows_mask.append([1] * len(ids) + [0] * fill)
        self.batches += 1
        return Batch(rows_ids, rows_labels, rows_mask, real)


def _as_state(value: Any) -> tuple:
    """``random.Random`` state from a checkpoint (lists after a round trip)."""
    version, internal, gauss = value
    return (version, tuple(internal), gauss)
