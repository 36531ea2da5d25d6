"""ONNX Runtime thread settings on a quiet and on a busy machine.

    python benchmarks/bench_threads.py [--rounds 3]

The shipped model on the ONNX engine, one warm prompt (``1girl, scenery``,
seeds 0-3) per setting: 2 threads spinning (ONNX Runtime's default), 2
threads waiting passively, 1 thread; first alone, then with a foreign process
keeping one core busy (what a user's machine often is: a browser, an image
model), and presample's policy (``onnx_backend.thread_policy``: spinning only
when no other process keeps a core busy at load time; loaded inside each
condition). Settings are interleaved round by round, medians reported, with the
ratio to the default setting measured in the same conditions.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_default_path import cpu_name  # noqa: E402

from presample import Presampler, PresampleRequest  # noqa: E402
from presample.engine.onnx_backend import OnnxBackend  # noqa: E402

SETTINGS = {"2 threads, spinning": (2, True), "2 threads, passive": (2, False),
            "1 thread": (1, False), "presample's policy": (None, None)}  # fmt: skip
BUSY = "import time\nwhile True: pass"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    base = Presampler("default", backend="onnx")
    folder = base.backend.folder  # type: ignore[attr-defined]
    requests = [PresampleRequest(prompt="1girl, scenery", seed=s) for s in range(4)]
    print(f"CPU: {cpu_name()}")
    print("| load | setting | s/prompt | vs 2 threads spinning |\n|---|---|---|---|")
    for load in ("quiet", "one core busy"):
        hog = subprocess.Popen([sys.executable, "-c", BUSY]) if load != "quiet" else None
        try:
            time.sleep(0.5)
            samplers = {
                name: Presampler("default", source=base.source, loaded=OnnxBackend.load(
                    folder, name="default", threads=t, spinning=s))
                for name, (t, s) in SETTINGS.items()
            }  # fmt: skip
            for sampler in samplers.values():
                sampler(requests[0])
            times: dict[str, list[float]] = {name: [] for name in samplers}
            for _ in range(args.rounds):
                for name, sampler in samplers.items():
                    for request in requests:
                        start = time.perf_counter()
                        sampler(request)
                        times[name].append(time.perf_counter() - start)
        finally:
            if hog is not None:
                hog.kill()
        first = statistics.median(times["2 threads, spinning"])
        for name, values in times.items():
            median = statistics.median(values)
            print(f"| {load} | {name} | {median:.2f} | {first / median:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
