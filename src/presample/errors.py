"""One family of errors, so every front end answers them the same way.

``InputError``: what the user gave is wrong (a request, a prompt, a file, an
option); the CLI exits 2, the server answers 422. ``RunError``: the input was
fine but the work could not be done (a model that will not load, a missing
table, an endpoint that does not answer); the CLI exits 1, the server answers
503. Each keeps the built-in base its callers caught before (``ValueError``,
``RuntimeError``).
"""

from __future__ import annotations


class PresampleError(Exception):
    """Any error presample reports in one line."""


class InputError(PresampleError, ValueError):
    """The user's input is wrong; the message says which field and why."""


class RunError(PresampleError, RuntimeError):
    """The work could not be done; the message says what failed and why."""


def install_hint(extra: str) -> str:
    """The command that installs one of presample's extras, for error messages.

    presample is not on the package index: run from a checkout of its repository
    (an editable install, as ``scripts/run.sh`` makes), the command names that
    folder; otherwise it says to run it there.
    """
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "src" / "presample").is_dir():
        return f"pip install -e '{root}[{extra}]'"
    return f"pip install -e '.[{extra}]' in the presample repository"
