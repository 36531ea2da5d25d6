"""Where the time of one default prompt goes, per engine, and how engines compare.

    python benchmarks/bench_default_path.py [--engines onnx,transformers] [--seeds 5]
        [--batch 16] [--fresh 3] [--out benchmarks/results/default-path-DATE.txt]

On the shipped default model, for each engine (the previous default,
transformers, is the baseline every ratio is taken against, measured in the
same run; llama.cpp joins when ``llama-cpp-python`` is installed):

- a fresh ``presample PROMPT`` process, wall time (median of ``--fresh`` runs,
  the model's one-off conversion done beforehand);
- in one process: import of the engine, model load, then the two prompts a new
  user tries (``1girl, scenery`` and ``a cat sitting on a windowsill``) for
  ``--seeds`` seeds each, split into model forward time, token drawing
  (sampling, ``engine/choose.py`` or the torch sampler) and the generation-time
  rules (tag floor and known tags, bans, caption floor, loop rule: each
  ``Constraint.allowed`` timed on its own), tokens generated and kept, retries
  and draws;
- ``--batch`` prompts at once through ``presample_many`` (prompts/s).

Run it on a quiet machine: the numbers are medians, but two cores shared with
another job stall OpenMP threads badly. The CPU model is printed with the table.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

PROMPTS = ("1girl, scenery", "a cat sitting on a windowsill")
DEFAULT_ENGINE = "onnx"  # what --backend auto picks on a CPU with presample[onnx]
BATCH_PROMPTS = (
    "1girl, scenery", "a cat sitting on a windowsill", "1boy, armor, castle", "2girls, beach",
    "a dragon over a castle", "1girl, hatsune miku, stage", "scenery, night, city lights",
    "a bowl of ramen on a wooden table",
)  # fmt: skip


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


class Clock:
    """Seconds spent inside wrapped callables, by label."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start

        return timed


@contextlib.contextmanager
def patched(target: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, original)


def instrument(clock: Clock, backend: Any) -> contextlib.ExitStack:
    """Time the forward pass, token drawing and each rule of ``backend``'s engine."""
    from presample import bans, caption_floor, caption_loops, tag_floor

    stack = contextlib.ExitStack()
    rules = {
        "rule: tag floor + known tags": tag_floor.TagFloor,
        "rule: bans": bans.BanConstraint,
        "rule: caption floor": caption_floor.CaptionFloor,
        "rule: loops": caption_loops.NoLoops,
    }
    for label, cls in rules.items():
        stack.enter_context(patched(cls, "allowed", clock.wrap(label, cls.allowed)))
    name = backend.info.name
    if name == "onnx":
        from presample.engine import onnx_backend

        stack.enter_context(patched(backend, "_forward", clock.wrap("model", backend._forward)))
        draw = clock.wrap("draw", onnx_backend.choose)
        stack.enter_context(patched(onnx_backend, "choose", draw))
    elif name == "transformers":
        stack.enter_context(patched(backend, "model", _TimedModule(backend.model, clock)))
        stack.enter_context(patched(backend, "_sample", clock.wrap("draw", backend._sample)))
    elif name == "llama.cpp":
        from presample.engine import llamacpp_backend

        llm = backend.llm
        stack.enter_context(patched(llm, "eval", clock.wrap("model", llm.eval)))
        stack.enter_context(
            patched(llamacpp_backend, "choose", clock.wrap("draw", llamacpp_backend.choose))
        )
    return stack


class _TimedModule:
    """A transformers model whose calls are timed; everything else passes through."""

    def __init__(self, model: Any, clock: Clock) -> None:
        self._model, self._clock = model, clock

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._clock.wrap("model", self._model)(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def fresh_process(engine: str, runs: int) -> float:
    times = []
    # The default engine is run as users run it, without --backend (auto's own checks count).
    chosen = [] if engine == DEFAULT_ENGINE else ["--backend", engine]
    for seed in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "presample", PROMPTS[0], "--seed", str(seed), *chosen],
            check=True, capture_output=True,
        )  # fmt: skip
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def profile(engine: str, seeds: int, batch: int, fresh: int) -> dict[str, Any]:
    from presample import Presampler, PresampleRequest

    row: dict[str, Any] = {"engine": engine}
    start = time.perf_counter()
    if engine == "onnx":
        import onnxruntime  # noqa: F401
    elif engine == "transformers":
        import torch  # noqa: F401
        import transformers  # noqa: F401
    else:
        import llama_cpp  # noqa: F401
    row["import"] = time.perf_counter() - start
    start = time.perf_counter()
    sampler = Presampler("default", backend=engine)
    row["load"] = time.perf_counter() - start
    with sampler:
        sampler(PresampleRequest(prompt=PROMPTS[0], seed=99))  # warm-up
        clock = Clock()
        walls: list[float] = []
        tokens = kept = retries = draws = 0
        with instrument(clock, sampler.backend):
            for prompt in PROMPTS:
                for seed in range(seeds):
                    begin = time.perf_counter()
                    result = sampler(PresampleRequest(prompt=prompt, seed=seed))
                    walls.append(time.perf_counter() - begin)
                    for step in result.steps:
                        tokens += int(step.generated_tokens)
                        kept += sampler.backend.count_tokens(step.model_output)
                        retries += step.attempts - 1
                        draws += step.draws
        runs = len(walls)
        total = sum(walls)
        by_prompt = [walls[i * seeds : (i + 1) * seeds] for i in range(len(PROMPTS))]
        row.update(
            per_prompt=statistics.median(walls),
            per_prompt_by=[statistics.median(w) for w in by_prompt],
            tokens=tokens / runs,
            kept=kept / runs,
            retries=retries / runs,
            draws=draws / runs,
            share={k: v / total for k, v in clock.seconds.items()},
            per_token_ms={k: 1000 * v / max(tokens, 1) for k, v in clock.seconds.items()},
        )
        requests = [PresampleRequest(prompt=BATCH_PROMPTS[i % len(BATCH_PROMPTS)], seed=i)
                    for i in range(batch)]  # fmt: skip
        begin = time.perf_counter()
        sampler.presample_many(requests)
        row["batch_prompts_per_s"] = batch / (time.perf_counter() - begin)
    row["fresh"] = fresh_process(engine, fresh) if fresh else float("nan")
    return row


def report(rows: list[dict[str, Any]]) -> str:
    base = next((r for r in rows if r["engine"] == "transformers"), rows[0])
    lines = [
        f"CPU: {cpu_name()}; {len(__import__('os').sched_getaffinity(0))} cores usable",
        f"baseline for ratios: {base['engine']} (measured in this run)",
        "",
        "| engine | fresh process s | import s | load s | s/prompt (girl, cat) | vs baseline "
        "| tokens/prompt (kept) | retries | draws | batch prompts/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        by = ", ".join(f"{x:.2f}" for x in r["per_prompt_by"])
        lines.append(
            f"| {r['engine']} | {r['fresh']:.2f} | {r['import']:.2f} | {r['load']:.2f} "
            f"| {r['per_prompt']:.2f} ({by}) | {base['per_prompt'] / r['per_prompt']:.1f}x "
            f"| {r['tokens']:.0f} ({r['kept']:.0f}) | {r['retries']:.2f} | {r['draws']:.1f} "
            f"| {r['batch_prompts_per_s']:.2f} |"
        )
    lines += ["", "Share of a prompt's wall time, and milliseconds per generated token:", ""]
    labels = sorted({k for r in rows for k in r["share"]})
    lines.append("| engine | " + " | ".join(labels) + " | rest |")
    lines.append("|---|" + "---|" * (len(labels) + 1))
    for r in rows:
        own = {k: r["share"].get(k, 0.0) for k in labels}
        # Rules run inside token drawing: the rest excludes "draw" and "model" only.
        rest = 1 - own.get("model", 0) - own.get("draw", 0)
        cells = [f"{100 * own[k]:.1f}% ({r['per_token_ms'].get(k, 0):.2f} ms)" for k in labels]
        lines.append(f"| {r['engine']} | " + " | ".join(cells) + f" | {100 * rest:.1f}% |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engines", default="")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--fresh", type=int, default=3, help="fresh-process runs (0: skip)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    if not engines:
        engines = ["onnx", "transformers"]
        with contextlib.suppress(ImportError):
            import llama_cpp  # noqa: F401

            engines.append("llama.cpp")
    rows = []
    for engine in engines:
        print(f"measuring {engine} ...", file=sys.stderr)
        rows.append(profile(engine, args.seeds, args.batch, args.fresh))
    text = report(rows)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
