"""Tiny hand-made records for the evaluation tests (no shared data needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from presample.training.records import Record, split_path, write_records

GENERAL = [
    "long hair", "smile", "looking at viewer", "blue eyes", "dress", "outdoors", "sky",
    "flower", "holding", "short hair", "standing", "cloud", "tree", "school uniform",
    "skirt", "hat", "bag", "open mouth", "closed eyes", "sitting", "day", "grass",
]  # fmt: skip
CAPTIONS = [
    ("A cat", "A cat sleeps on a red sofa. The room is warm and quiet."),
    ("A dog", "A dog runs across a green park. A ball flies ahead of it."),
    ("A red car", "A red car is parked on a wet street at night."),
    ("A tall tree", "A tall tree stands alone on a hill under a grey sky."),
]


def tag_records(count: int, prefix: str = "train") -> list[Record]:
    records = []
    for i in range(count):
        general = [GENERAL[(i * 5 + j) % len(GENERAL)] for j in range(8 + i % 6)]
        tags = {"special": ["1girl"], "general": general, "rating": ["general"]}
        records.append(Record(id=f"{prefix}:tags:{i}", src="civitai", tags=tags))
    return records


def caption_records(prefix: str = "train") -> list[Record]:
    return [
        Record(id=f"{prefix}:caption:{i}", src="coco", short=short, long=long)
        for i, (short, long) in enumerate(CAPTIONS)
    ]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    explicit = Record(
        id="train:explicit",
        src="civitai",
        tags={"special": ["1girl"], "general": ["nude", "smile", "long hair"],
              "rating": ["explicit"]},
    )  # fmt: skip
    write_records(split_path(folder, "train"), [*tag_records(30), *caption_records(), explicit])
    described = Record(
        id="test:described",
        src="civitai",
        tags={"special": ["1girl"], "general": ["smile", "outdoors", "sky"], "rating": ["general"]},
        long="A girl smiles under a blue sky.",
    )
    tests = [*tag_records(4, "test"), *caption_records("test"), described]
    write_records(split_path(folder, "test"), tests)
    return folder
