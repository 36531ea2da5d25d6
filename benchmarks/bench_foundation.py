"""Start-up and tag-database benchmark.

    python benchmarks/bench_foundation.py [--repeat 5] [--kgen-python PATH]

Reports, as medians over fresh processes, the cost of ``import presample``
against a bare interpreter, opening the tag database, and resolving 10k tags,
with two baselines measured in the same run: reading the same Danbooru table
into a Python dict (the obvious alternative design) and, when ``--kgen-python``
names an interpreter with tipo-kgen 0.3.1 installed, the reference's own tag
list loading (``import kgen.formatter``). Ratios are what to compare across
machines; absolute times on a shared 2-core box are noisy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT.parent / "shared" / "data" / "tags" / "danbooru.csv"

# Each snippet prints {"seconds": ..., "rss_mb": ...} for the part it measures.
PRELUDE = "import time, resource, json\nt0 = time.perf_counter()\n"
REPORT = (
    "\nprint(json.dumps({'seconds': time.perf_counter() - t0, "
    "'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))"
)
SNIPPETS = {
    "bare interpreter": "pass",
    "import presample": "import presample",
    "open tag database": "from presample.tagdb import TagDatabase\n"
    "t0 = time.perf_counter()\ndb = TagDatabase(); db.lookup('1girl')",
    "lookup 10k tags (cold)": "import csv\nfrom presample.tagdb import TagDatabase\n"
    "names = [r[0] for r in csv.reader(open({csv!r}))][:10000]\n"
    "db = TagDatabase()\nt0 = time.perf_counter()\nres = db.lookup_many(names)\n"
    "assert all(res)",
    "baseline: csv into dict": "import csv\nfrom presample.tagdb import normalize_key\n"
    "t0 = time.perf_counter()\ntable = {{}}\n"
    "for r in csv.reader(open({csv!r})):\n"
    "    table[normalize_key(r[0])] = (r[0], int(r[1]), int(r[2]))\n"
    "    for a in r[3].split(','):\n"
    "        table.setdefault(normalize_key(a), (r[0], int(r[1]), int(r[2])))",
}
KGEN_SNIPPET = "import kgen.formatter"


def measure(python: str, code: str, repeat: int) -> tuple[float, float]:
    times, rss = [], []
    for _ in range(repeat):
        proc = subprocess.run(
            [python, "-c", PRELUDE + code + REPORT],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        times.append(row["seconds"])
        rss.append(row["rss_mb"])
    return statistics.median(times), statistics.median(rss)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--kgen-python", help="python with tipo-kgen 0.3.1 importable")
    args = parser.parse_args()
    if not CSV.is_file():
        print(f"needs {CSV}", file=sys.stderr)
        return 2

    results: dict[str, tuple[float, float]] = {}
    for name, code in SNIPPETS.items():
        results[name] = measure(sys.executable, code.format(csv=str(CSV)), args.repeat)
    if args.kgen_python:
        results["reference: kgen tag lists"] = measure(args.kgen_python, KGEN_SNIPPET, args.repeat)

    lookup_s = results["lookup 10k tags (cold)"][0]
    print(f"{'what':<28}{'median s':>10}{'peak RSS MB':>13}")
    for name, (sec, rss) in results.items():
        print(f"{name:<28}{sec:>10.4f}{rss:>13.1f}")
    open_s = results["open tag database"][0]
    print()
    print(f"import presample: {results['import presample'][0] * 1000:.0f} ms")
    print(f"lookup throughput: {10_000 / lookup_s:,.0f} tags/s")
    print(
        f"dict baseline load / database open: {results['baseline: csv into dict'][0] / open_s:.0f}x"
    )
    if "reference: kgen tag lists" in results:
        ref_s, ref_rss = results["reference: kgen tag lists"]
        print(
            f"reference tag-list load / database open: {ref_s / open_s:.0f}x "
            f"({ref_rss:.0f} MB vs {results['open tag database'][1]:.0f} MB peak RSS)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
