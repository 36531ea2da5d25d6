"""How fast the shipped model's forward pass can run on ONNX Runtime, by quantization.

    python benchmarks/bench_onnx_kernels.py [--variants int8-b32,int8-b64,int8-b128,dynamic,fp32]
        [--work /tmp/onnx-kernels]

The batched-throughput target of issue 19 (16 prompts at 4 a second) needs the
forward pass to read a prompt and write its tokens at about 1,400 token passes a
second on 2 cores (a default prompt is ~146 tokens read and ~200 written). This
measures what each way of quantizing the model for ONNX Runtime's CPU kernels
gives, on the shipped weights: reading a 150-token prompt (tokens/s) and one
decode step at batch 1, 16 and 32 (tokens/s), and whether the last logits of the
prompt keep the shipped conversion's best token, and whether a row's logits are
the same bits alone and in batches of 2-16 (what makes a seed give the same text
in any batch position). The shipped conversion (``engine/onnx_export.py``: the
model builder's ``MatMulNBits`` int8 in its default blocks of 32 weights, int8
activations) is the baseline of the same run.

Variants: ``int8-b32`` (shipped), ``int8-b64`` / ``int8-b128`` (larger
quantization blocks), ``dynamic`` (the builder's float32 graph with ONNX
Runtime's ``quantize_dynamic``: per-channel int8 weights, one activation scale
for a whole pass), ``fp32``. Each is converted once into ``--work``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_default_path import cpu_name  # noqa: E402

from presample.engine import onnx_export  # noqa: E402
from presample.engine.onnx_backend import OnnxBackend  # noqa: E402

MODEL = ROOT / "src" / "presample" / "models" / "default"
BUILDER = {
    "int8-b32": ("int8", ["accuracy_level=4"]),
    "int8-b64": ("int8", ["accuracy_level=4", "block_size=64"]),
    "int8-b128": ("int8", ["accuracy_level=4", "block_size=128"]),
    "fp32": ("fp32", []),
}
SHIPPED = "int8-b32"
PROMPT_TOKENS = 150
STEPS = 20


def build(variant: str, work: Path) -> Path:
    out = work / variant
    if (out / onnx_export.MODEL_FILE).is_file():
        return out
    hf = work / "hf"
    if not hf.is_dir():
        onnx_export._write_float32_folder(MODEL, hf, gguf_file="model.gguf")
    if variant == "dynamic":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        source = build("fp32", work)
        out.mkdir(parents=True)
        quantize_dynamic(
            str(source / onnx_export.MODEL_FILE), str(out / onnx_export.MODEL_FILE),
            per_channel=True, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
            use_external_data_format=True,
        )  # fmt: skip
        for name in (onnx_export.TOKENIZER_FILE, onnx_export.SOURCE_FILE):
            shutil.copyfile(source / name, out / name)
        return out
    precision, options = BUILDER[variant]
    command = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(hf),
               "-o", str(out), "-p", precision, "-e", "cpu", "-c", str(work / "cache"),
               "--extra_options", "prune_lm_head=true", *options]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    shutil.copyfile(hf / onnx_export.TOKENIZER_FILE, out / onnx_export.TOKENIZER_FILE)
    card = {"precision": precision, "model": onnx_export._card(hf)}
    (out / onnx_export.SOURCE_FILE).write_text(json.dumps(card), encoding="utf-8")
    return out


def measure(folder: Path) -> tuple[dict[str, float], np.ndarray]:
    backend = OnnxBackend.load(folder, name=folder.name, threads=None, spinning=None)
    rng = np.random.default_rng(0)
    ids = rng.integers(100, 40_000, size=(1, PROMPT_TOKENS))
    times = []
    for _ in range(5):
        cache = backend._empty_cache(PROMPT_TOKENS + STEPS + 1)
        start = time.perf_counter()
        logits = backend._forward(ids, PROMPT_TOKENS, cache)
        times.append(time.perf_counter() - start)
    speeds = {"read": PROMPT_TOKENS / statistics.median(times)}
    for rows in (1, 16, 32):
        cache = backend._empty_cache(PROMPT_TOKENS + STEPS + 1, rows)
        for row in range(rows):
            backend._forward(ids, PROMPT_TOKENS, cache, row)
        step = rng.integers(100, 40_000, size=(rows, 1))
        times = []
        for n in range(STEPS):
            start = time.perf_counter()
            backend._forward(step, PROMPT_TOKENS + n + 1, cache)
            times.append(time.perf_counter() - start)
        speeds[f"batch {rows}"] = rows / statistics.median(times)
    return speeds, logits[0], invariant(backend, ids)


def invariant(backend: OnnxBackend, ids: np.ndarray) -> bool:
    """Whether a decode step gives a row the same bits alone and first in a batch of
    2-16 rows of other prompts and tokens."""
    rng = np.random.default_rng(1)
    alone_cache = backend._empty_cache(PROMPT_TOKENS + 1)
    backend._forward(ids, PROMPT_TOKENS, alone_cache)
    alone = backend._forward(np.asarray([[5]]), PROMPT_TOKENS + 1, alone_cache)[0]
    for rows in (2, 3, 8, 16):
        cache = backend._empty_cache(PROMPT_TOKENS + 1, rows)
        backend._forward(ids, PROMPT_TOKENS, cache, 0)
        for row in range(1, rows):
            other = rng.integers(100, 40_000, size=(1, PROMPT_TOKENS))
            backend._forward(other, PROMPT_TOKENS, cache, row)
        step = np.concatenate([[[5]], rng.integers(100, 40_000, size=(rows - 1, 1))])
        if not np.array_equal(backend._forward(step, PROMPT_TOKENS + 1, cache)[0], alone):
            return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="int8-b32,int8-b64,int8-b128,dynamic,fp32")
    parser.add_argument("--work", type=Path, default=Path("/tmp/onnx-kernels"))
    args = parser.parse_args()
    variants = args.variants.split(",")
    if variants[0] != SHIPPED:
        variants.insert(0, SHIPPED)  # the baseline
    args.work.mkdir(parents=True, exist_ok=True)
    folders = {v: build(v, args.work) for v in variants}
    print(f"CPU: {cpu_name()}; shipped model; {PROMPT_TOKENS}-token prompt; decode steps "
          f"after it (median of {STEPS}); tokens/s, ratio to the shipped {SHIPPED} in this run\n")
    print("| variant | read a prompt | decode batch 1 | batch 16 | batch 32 | same best token "
          "| same bits alone and in a batch |")
    print("|---|---:|---:|---:|---:|---|---|")
    base: dict[str, float] = {}
    best = -1
    for variant, folder in folders.items():
        speeds, logits, same_bits = measure(folder)
        if variant == SHIPPED:
            base, best = speeds, int(np.argmax(logits))
        cells = [f"{speeds[k]:.0f} ({speeds[k] / base[k]:.2f}x)" for k in speeds]
        same_best = int(np.argmax(logits)) == best
        print(f"| {variant} | {' | '.join(cells)} | {same_best} | {same_bits} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
