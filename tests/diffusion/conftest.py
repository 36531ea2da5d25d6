from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("torch")


@pytest.fixture(scope="module")
def sd15(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from .tiny import sd15_pipe

    return sd15_pipe(Path(tmp_path_factory.mktemp("sd15")))


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from .tiny import sdxl_pipe

    return sdxl_pipe(Path(tmp_path_factory.mktemp("sdxl")))
