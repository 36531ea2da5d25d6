"""The folder layout is the architecture: the runtime knows nothing of layouts or rules."""

from __future__ import annotations

import ast
from pathlib import Path

import presample

PACKAGE = Path(presample.__file__).parent


def _imports(path: Path) -> set[str]:
    """The presample modules a file imports, as dotted names below ``presample``."""
    here = path.relative_to(PACKAGE).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                found.add(".".join([*base, *(node.module or "").split(".")]).strip("."))
            elif node.module and node.module.startswith("presample."):
                found.add(node.module.removeprefix("presample."))
    return found


def test_the_engine_imports_no_layout_and_no_rule() -> None:
    for path in sorted((PACKAGE / "engine").glob("*.py")):
        outside = {m for m in _imports(path) if not m.startswith("engine")}
        assert outside <= {"errors"}, f"{path.name} imports {sorted(outside)}"


FRONT_ENDS = ("cli", "server", "integrations")


def test_only_front_ends_import_front_ends() -> None:
    # The library below (layouts, rules, runs, the presampler, refine, evaluation ...)
    # never reaches up into a command line, a server or a host plug-in.
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[0] in FRONT_ENDS or parts == ("__main__",):
            continue
        upward = {m for m in _imports(path) if m.split(".")[0] in FRONT_ENDS}
        assert not upward, f"{'/'.join(parts)} imports {sorted(upward)}"
