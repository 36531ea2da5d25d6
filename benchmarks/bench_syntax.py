"""How parse time grows with prompt size on hostile inputs (it must stay linear).

    python benchmarks/bench_syntax.py

For each pathological pattern, parses it at n and 2n repetitions and prints the
ratio of the times: about 2 means linear, 4 would mean quadratic. Ratios are
measured in the same run, so a busy machine shifts both sides alike.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from presample.syntax import PromptSyntaxError, parse_prompt

PATTERNS = {
    "(": 40_000, "<a:": 20_000, ":": 60_000, "\\\\": 60_000, "{a|": 20_000, "a|": 30_000,
    "word ": 12_000, "a, ": 20_000, "a girl in a field, ": 3_000, ";),": 20_000,
}  # fmt: skip


def seconds(text: str, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        with contextlib.suppress(PromptSyntaxError):
            parse_prompt(text, max_chars=10**7, max_pieces=10**7)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    print(f"{'pattern':<24}{'n':>8}{'t(n) s':>10}{'t(2n)/t(n)':>12}")
    worst = 0.0
    for pattern, n in PATTERNS.items():
        small, large = seconds(pattern * n), seconds(pattern * 2 * n)
        worst = max(worst, large / small)
        print(f"{pattern!r:<24}{n:>8}{small:>10.3f}{large / small:>12.2f}")
    print(f"worst growth ratio: {worst:.2f} (2 = linear)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
