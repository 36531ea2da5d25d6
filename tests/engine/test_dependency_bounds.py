"""The installed engines are the releases pyproject.toml allows.

The default path changed once under us when a new transformers release kept
GGUF weights packed on the first load; the ONNX model builder's output format
may change between minor releases. pyproject.toml bounds both, and this test
fails when an environment holds a release outside the bounds (an install that
ignored them, or bounds edited without thought).
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
BOUNDED = ("transformers", "onnxruntime", "onnxruntime-genai")


def _requirements() -> dict[str, Requirement]:
    extras = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    found: dict[str, Requirement] = {}
    for items in extras.values():
        for item in items:
            requirement = Requirement(item)
            if not requirement.name.startswith("presample"):
                found[requirement.name] = requirement
    return found


@pytest.mark.parametrize("name", BOUNDED)
def test_engine_dependencies_have_an_upper_bound(name: str) -> None:
    requirement = _requirements()[name]
    assert any(spec.operator in ("<", "<=", "~=", "==") for spec in requirement.specifier), (
        f"{name} needs an upper bound in pyproject.toml"
    )


@pytest.mark.parametrize("name", BOUNDED)
def test_installed_release_is_within_the_bounds(name: str) -> None:
    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        pytest.skip(f"{name} is not installed")
    version = re.sub(r"\+.*", "", version)  # local labels such as +cpu
    assert _requirements()[name].specifier.contains(version, prereleases=True), (
        f"{name} {version} is outside pyproject.toml's {_requirements()[name].specifier}"
    )
