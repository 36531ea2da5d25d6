"""Rows per second of `presample run`: one process, and Ray with 1 and 2 workers.

    python benchmarks/bench_dataset.py [--rows 64] [--batch-size 16]

The shipped model on its default engine, the same requests file (prompts of
tags and of sentences, every row's seed fixed by --seed) run three ways, each
as a user runs it (a fresh command, timed from start to exit, so model loading
and Ray's start are in the figure): `presample run` in one process; on a local
Ray with one worker holding every CPU; with two workers of one CPU each. Also
checked: every way gives every row the same prompt (a row's result does not
depend on its worker or batch). Ratios are to the one-process path measured
in the same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_default_path import cpu_name  # noqa: E402

PROMPTS = [
    "1girl, scenery", "a cat sitting on a windowsill", "1boy, sword, armor",
    "1girl, long hair, smile, school uniform", "scenery, night, city lights",
    "an old fisherman on a boat at dawn", "2girls, beach, swimsuit", "1girl, dress, flower field",
]  # fmt: skip
WAYS = {
    "one process": [],
    "Ray, 1 worker x 2 CPUs": ["--workers", "1", "--cpus-per-worker", "2"],
    "Ray, 2 workers x 1 CPU": ["--workers", "2", "--cpus-per-worker", "1"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-dataset-"))
    requests = work / "requests.jsonl"
    requests.write_text(
        "".join(json.dumps({"prompt": PROMPTS[i % len(PROMPTS)]}) + "\n" for i in range(args.rows))
    )
    print(f"CPU: {cpu_name()}; {args.rows} rows, --batch-size {args.batch_size}")
    print("| way | seconds | rows/s | vs one process |\n|---|---:|---:|---:|")
    prompts: dict[str, dict[int, str]] = {}
    base = 0.0
    for name, extra in WAYS.items():
        out = work / f"{len(prompts)}.jsonl"
        command = [sys.executable, "-m", "presample", "run", str(requests), "-o", str(out),
                   "--seed", "0", "--batch-size", str(args.batch_size), "--no-progress",
                   *extra]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            print(f"{name}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
            return 1
        rows = [json.loads(x) for x in out.read_text().splitlines()]
        prompts[name] = {r["line"]: r["result"]["prompt"] for r in rows}
        rate = len(rows) / seconds
        base = base or rate
        print(f"| {name} | {seconds:.1f} | {rate:.2f} | {rate / base:.2f}x |")
    first = next(iter(prompts.values()))
    same = all(p == first for p in prompts.values())
    print(f"\nevery way gives every row the same prompt: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
