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
