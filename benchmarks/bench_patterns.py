"""Ban patterns: backtracking ``re`` against RE2 (what presample runs) on pathological input.

    python benchmarks/bench_patterns.py

The pattern from issue 22 (``(\\w+\\s?)+$!``) against ``"a" * n``: Python's
``re`` doubles its time with every letter; RE2 (``presample.patterns``) stays
linear. ``re`` is measured only while it takes under a few seconds.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from presample.patterns import compile_user_regex

PATTERN = r"(\w+\s?)+$!"


def seconds(search, text: str) -> float:
    start = time.perf_counter()
    search(text)
    return time.perf_counter() - start


def main() -> int:
    python = re.compile(PATTERN, re.IGNORECASE)
    linear = compile_user_regex(PATTERN)
    print(f"pattern {PATTERN!r} on 'a' * n\n")
    print("| n | re s | RE2 s | re / RE2 |\n|---|---|---|---|")
    for n in (16, 18, 20, 22, 1_000, 100_000):
        fast = min(seconds(linear.search, "a" * n) for _ in range(3))
        slow = seconds(python.search, "a" * n) if n <= 22 else float("nan")
        ratio = f"{slow / fast:,.0f}x" if slow == slow else "(re not run: hours)"
        print(f"| {n:,} | {slow:.3f} | {fast:.6f} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
