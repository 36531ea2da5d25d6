"""Shared test fixtures.

The real data in ``../shared/data`` (outside the repository) is used where it
exists; tests that need it skip with a reason on a machine without it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from presample.tagdb import TagDatabase

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = Path(os.environ.get("PRESAMPLE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="session")
def db() -> Iterator[TagDatabase]:
    with TagDatabase() as database:
        yield database


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set PRESAMPLE_SHARED_DATA)")
    return SHARED_DATA
