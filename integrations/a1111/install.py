"""Installs presample into the WebUI's Python: wheels only, no host package changed.

The WebUI runs this file at start-up. presample is not on the package index:
it installs from a checkout of its repository (``PRESAMPLE_SOURCE``, or the
repository this extension folder is a link into), its pure-Python dependencies
from the package registry, all through ``launch.run_pip``. The WebUI
pins its own stack, so this script never upgrades a package the WebUI already
has: every installed distribution's version goes to pip as a constraint
(``-c``), so pip adds what is missing and changes nothing that is there, and
when the installed pydantic, torch, transformers or accelerate is older than
presample needs (Forge pins accelerate 0.21) it installs nothing and says why in
one line (the WebUI keeps working).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

EXTRAS = "torch,gguf,canvas"
# What presample needs from packages the WebUI ships itself (see presample's pyproject).
HOST_MINIMUMS = {
    "pydantic": (2, 6), "torch": (2, 2), "transformers": (4, 44), "accelerate": (0, 30),
}  # fmt: skip


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _major_minor(version: str) -> tuple[int, int]:
    parts = [0, 0]
    for i, piece in enumerate(version.split(".")[:2]):
        digits = ""
        for ch in piece:  # "2.1.2+cu121", "4.44.0.dev0": the leading digits count
            if not ch.isdigit():
                break
            digits += ch
        parts[i] = int(digits or 0)
    return parts[0], parts[1]


def source_folder() -> Path | None:
    """The presample repository to install from: ``$PRESAMPLE_SOURCE``, or the one this
    folder lives in (``extensions/zz-presample`` linked to ``integrations/a1111``)."""
    env = os.environ.get("PRESAMPLE_SOURCE")
    here = Path(__file__).resolve().parent
    for folder in ([Path(env).expanduser()] if env else []) + [here.parents[1]]:
        if (folder / "pyproject.toml").is_file() and (folder / "src" / "presample").is_dir():
            return folder.resolve()
    return None


def plan(
    installed: dict[str, str | None], source: Path | None = None
) -> tuple[str | None, str]:
    """What to install given the host's versions and the repository found: a
    requirement or ``None``, and why."""
    if installed.get("presample"):
        return None, f"presample {installed['presample']} is installed"
    too_old = [
        f"{name} {installed[name]} (presample needs >= {'.'.join(map(str, minimum))})"
        for name, minimum in HOST_MINIMUMS.items()
        if installed.get(name) and _major_minor(installed[name] or "0") < minimum
    ]
    if too_old:
        return None, (
            "presample is not installed: this WebUI pins " + ", ".join(too_old)
            + "; upgrading would break it. Use a WebUI with a newer stack (Forge), "
            "or see docs/a1111.md"
        )
    if source is None:
        return None, (
            "presample is not installed and not on the package index: set PRESAMPLE_SOURCE "
            "to a checkout of its repository (or link this folder from one) and restart; "
            "see docs/a1111.md"
        )
    return (
        f"presample[{EXTRAS}] @ {source.as_uri()}",
        f"installing presample from {source} (wheels only, no compiler)",
    )


def host_constraints(distributions: Iterable[tuple[str, str]]) -> str:
    """A pip constraints file pinning every installed distribution to its version:
    pip may add packages, never move one the WebUI has. presample itself is left
    out (it is what is being installed)."""
    lines = sorted({f"{name.lower()}=={version}" for name, version in distributions
                    if name and version and name.lower() != "presample"})  # fmt: skip
    return "\n".join(lines) + "\n"


def _installed() -> list[tuple[str, str]]:
    return [(d.metadata["Name"] or "", d.version or "") for d in metadata.distributions()]


def main() -> None:
    installed = {name: _version(name) for name in ("presample", *HOST_MINIMUMS)}
    requirement, reason = plan(installed, source_folder())
    print(f"[presample] {reason}")
    if requirement is None:
        return
    import launch  # the WebUI's own module, present when the WebUI runs this file

    with tempfile.TemporaryDirectory() as folder:
        constraints = Path(folder) / "host-versions.txt"
        constraints.write_text(host_constraints(_installed()), encoding="utf-8")
        try:
            launch.run_pip(
                f'install "{requirement}" -c "{constraints}" --prefer-binary '
                "--only-binary=:all:",
                "presample: text presampling",
            )
        except Exception as exc:  # launch.run_pip raises RuntimeError with pip's output
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(
                "[presample] not installed: it needs a version of a package this WebUI pins "
                f"({first}); the WebUI is unchanged. See docs/a1111.md"
            )


if __name__ == "__main__":  # the WebUI runs this file as a script
    main()
