"""Ban patterns cannot stall the process (presample/patterns.py)."""

from __future__ import annotations

import subprocess
import sys

from presample.bans import BanMatcher
from presample.request import BanRule

# Exponential on a backtracking engine: 2**200 steps on the text below.
PATHOLOGICAL = r"(\w+\s?)+$!"


def test_a_pathological_pattern_finishes_on_a_long_text() -> None:
    # In a child process with a generous limit, so a regression fails instead
    # of hanging the suite (Python's re would need about 2**200 steps here).
    code = (
        "from presample.bans import BanMatcher\n"
        "from presample.request import BanRule\n"
        f"m = BanMatcher([BanRule(kind='regex', pattern={PATHOLOGICAL!r})])\n"
        "print(m.text_banned('a' * 200), m.tag_banned('a' * 200))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)  # fmt: skip
    assert done.stdout.split() == ["False", "False"]


def test_user_patterns_still_match_case_insensitively() -> None:
    matcher = BanMatcher([BanRule(kind="regex", pattern=r"^official\b.*")])
    assert matcher.tag_banned("Official Art")
    assert matcher.tag_banned("official_alternate_costume")
    assert not matcher.tag_banned("unofficial art")
