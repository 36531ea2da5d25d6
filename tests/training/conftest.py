"""Small synthetic records for the training tests (no shared data needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from presample.training.records import Record, write_records

GENERAL = [
    "long hair", "smile", "looking at viewer", "blue eyes", "dress", "outdoors", "sky",
    "flower", "holding", "short hair", "standing", "cloud", "tree", "school uniform",
    "skirt", "hat", "bag", "open mouth", "closed eyes", "sitting", "day", "grass",
]  # fmt: skip
LONG = (
    "A girl with long hair stands in a field of flowers. The sky above her is bright blue. "
    "She holds a straw hat in one hand. A few clouds drift behind a tall tree."
)


def make_records(count: int = 60) -> list[Record]:
    records = []
    for i in range(count):
        general = [GENERAL[(i * 7 + j) % len(GENERAL)] for j in range(5 + i % 15)]
        tags = {
            "special": ["1girl"] if i % 2 else [],
            "general": general,
            "characters": ["hatsune miku"] if i % 3 == 0 else [],
            "copyrights": ["vocaloid"] if i % 3 == 0 else [],
            "quality": ["masterpiece"] if i % 4 == 0 else [],
            "rating": ["general"],
        }
        kind = i % 4
        records.append(
            Record(
                id=f"test:{i}",
                src="civitai" if kind < 2 else "coco",
                tags=tags if kind != 3 else {},
                short="a girl in a field" if kind in (1, 2, 3) else "",
                long=LONG if kind in (0, 2, 3) else "",
                coarse="A girl" if kind == 2 else "",
            )
        )
    return records


@pytest.fixture(scope="session")
def records() -> list[Record]:
    return make_records()


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-data")
    write_records(folder / "train.jsonl.gz", make_records(80))
    write_records(folder / "validation.jsonl.gz", make_records(12))
    return folder


@pytest.fixture(scope="session")
def tokenizer(records: list[Record]):
    pytest.importorskip("tokenizers")
    import random

    from presample.training.samples import sample_texts
    from presample.training.tokenizer import train_tokenizer

    return train_tokenizer(sample_texts(records, random.Random(0), 400), vocab_size=500)
