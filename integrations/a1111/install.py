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

Such a WebUI (A1111 1.10 pins pydantic 1 and torch 2.1) gets presample apart:
presample's own environment, made once in the repository (``.venv``, or
``PRESAMPLE_VENV``) by the repository's ``scripts/venv.sh``, whose server the
script starts and talks to over loopback. The WebUI's packages are not touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

EXTRAS = "torch,gguf,canvas"
APART = "apart"
"""``plan``'s answer for a WebUI whose pins presample cannot share: its own environment."""
APART_EXTRAS = ("onnx", "server")
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
    if too_old and source is not None:
        return APART, (
            "this WebUI pins " + ", ".join(too_old) + ", which presample cannot share; "
            f"presample runs apart, in its own environment ({environment(source)}), "
            "and the WebUI is unchanged"
        )
    if too_old:
        return None, (
            "presample is not installed: this WebUI pins " + ", ".join(too_old)
            + "; upgrading would break it, and running apart needs a presample repository "
            "(set PRESAMPLE_SOURCE or link this folder from one); see docs/a1111.md"
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


def environment(source: Path) -> Path:
    """presample's own environment, for running apart: ``$PRESAMPLE_VENV`` or the
    repository's ``.venv`` (the one ``scripts/run.sh`` makes)."""
    env = os.environ.get("PRESAMPLE_VENV")
    return Path(env).expanduser() if env else source / ".venv"


def environment_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def make_environment(source: Path) -> str:
    """Make (or bring up to date) presample's own environment with the repository's
    ``scripts/venv.sh``; one line saying what happened."""
    env = environment(source)
    script = source / "scripts" / "venv.sh"
    if os.name == "nt" or shutil.which("bash") is None:
        return (
            f"cannot make presample's environment here (no bash): run "
            f"'scripts/venv.sh {' '.join(APART_EXTRAS)}' in {source} yourself"
        )
    print(f"[presample] making presample's environment in {env} (once; a few minutes) ...")
    done = subprocess.run(
        ["bash", str(script), *APART_EXTRAS], env={**os.environ, "PRESAMPLE_VENV": str(env)},
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"presample's environment could not be made: {last[0]}"
    return f"presample's environment is ready in {env}; the script starts its server"


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
    source = source_folder()
    requirement, reason = plan(installed, source)
    print(f"[presample] {reason}")
    if requirement == APART and source is not None:
        print(f"[presample] {make_environment(source)}")
        return
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
