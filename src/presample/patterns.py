"""User regular expressions (ban rules), run in linear time.

Python's ``re`` backtracks: a pattern such as ``(\\w+\\s?)+$!`` takes seconds
on a 24-letter tag, doubling with every letter, while holding the interpreter
lock, so one request could freeze a whole server. Patterns from users therefore
run on RE2 (``google-re2``), whose matching time is linear in the text. RE2
has no backreferences and no lookaround; a pattern using them is refused with
a message naming it, before any work starts. Our own patterns (tag groups,
the rating word lists) stay on ``re``.
"""

from __future__ import annotations

from typing import Any

import re2


def _options() -> Any:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # RE2 would print each refused pattern to stderr
    return options


def compile_user_regex(pattern: str) -> Any:
    """The compiled, case-insensitive pattern; ``ValueError`` naming it when RE2 refuses it."""
    try:
        return re2.compile(pattern, _options())
    except re2.error as exc:
        why = exc.args[0] if exc.args else "invalid"
        if isinstance(why, bytes):
            why = why.decode("utf-8", "replace")
        raise ValueError(
            f"invalid regex {pattern!r}: {why} (patterns run on RE2: no backreferences "
            "or lookaround)"
        ) from None
