"""One family of errors: every front end maps input errors and run errors alike."""

from __future__ import annotations

import pytest

from presample import InputError, ModelError, PresampleError, RunError
from presample.canvas.parse import CanvasParseError
from presample.cli import main
from presample.cli.common import EXIT_FAILURE, EXIT_USAGE, UserError
from presample.refine import RefineError
from presample.syntax import PromptSyntaxError
from presample.tag_prior import TagPriorError
from presample.tagdb import TagDatabaseError


@pytest.mark.parametrize(
    ("error", "family", "builtin"),
    [
        (UserError, InputError, ValueError),
        (PromptSyntaxError, InputError, ValueError),
        (RefineError, InputError, ValueError),
        (CanvasParseError, InputError, ValueError),
        (ModelError, RunError, RuntimeError),
        (TagDatabaseError, RunError, RuntimeError),
        (TagPriorError, RunError, RuntimeError),
    ],
)
def test_every_error_belongs_to_one_family_and_keeps_its_builtin_base(
    error: type, family: type, builtin: type
) -> None:
    assert issubclass(error, family) and issubclass(error, PresampleError)
    assert issubclass(error, builtin)  # callers that caught the built-in still do


@pytest.mark.parametrize(
    ("error", "code"),
    [(TagPriorError("co-occurrence table not found at /x"), EXIT_FAILURE),
     (RefineError("no such candidate: 9"), EXIT_USAGE)],
)  # fmt: skip
def test_the_cli_maps_each_family_to_its_exit_code_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception,
    code: int,
) -> None:  # fmt: skip
    def fail(args: object) -> int:
        raise error

    monkeypatch.setattr("presample.cli.generate.run", fail)
    assert main(["1girl"]) == code
    err = capsys.readouterr().err
    assert err == f"presample: error: {error}\n"


def test_a_missing_extra_is_named_with_a_command_that_works_here() -> None:
    from pathlib import Path

    from presample.errors import install_hint

    repo = Path(__file__).resolve().parents[1]
    # presample is not on the package index: the command installs from this checkout.
    assert install_hint("server") == f"pip install -e '{repo}[server]'"
    assert "\n" not in install_hint("onnx")
