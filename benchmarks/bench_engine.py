"""Decode speed of the engine against the machine's memory bandwidth and the reference.

    python benchmarks/bench_engine.py [--shape tipo-200m] [--new-tokens 128]
        [--kgen-path DIR] [--batches 1,8,32] [--dtypes float32,bfloat16]

On a model of the published TIPO-200M shape with random weights (the real
files cannot be downloaded here), in one run:
- the memory-bandwidth limit: the read bandwidth of summing a 1 GB tensor, turned
  into the batch-1 ceiling ``bandwidth / weight bytes`` tokens/s per precision;
- our transformers backend: tokens/s at batch 1 and prompts/s at each batch size
  (every prompt generates ``--new-tokens`` tokens: random weights never emit eos
  because eos is masked out here, so the work per prompt is fixed);
- our ONNX Runtime backend (the default engine; ``--onnx int8``), converted from
  the same weights, at each batch size;
- the reference, when ``--kgen-path`` holds tipo-kgen 0.3.1 (``pip install --no-deps
  --target DIR tipo-kgen==0.3.1``): its ``generate()`` on the same weights loaded
  the way it loads them (float16), one prompt at a time (it has no batching).
Ratios are the numbers to compare; the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from presample.engine import invariant, llamacpp_backend  # noqa: E402
from presample.engine.backend import GenerationJob  # noqa: E402
from presample.engine.int8 import quantize_int8  # noqa: E402
from presample.engine.sampling import Sampling  # noqa: E402
from presample.engine.torch_backend import TorchBackend  # noqa: E402
from presample.training.model import random_model  # noqa: E402

PROMPT = (
    "rating: general\nartist: ningen mame\ncharacters: hatsune miku\ncopyrights: vocaloid\n"
    "quality: masterpiece, newest\naspect_ratio: 0.7\ntarget: <|long|>\n"
    "tag: 1girl, long hair, twintails, smile, aqua hair, aqua eyes, looking at viewer"
)


def read_bandwidth(gigabytes: float = 1.0, repeat: int = 5) -> float:
    """Bytes per second read by a reduction over a tensor far larger than the caches."""
    x = torch.ones(int(gigabytes * 2**30 / 4), dtype=torch.float32)
    x.sum()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        x.sum()
        best = min(best, time.perf_counter() - start)
    return x.numel() * 4 / best


def tiny_tokenizer():
    from presample.training.tokenizer import train_tokenizer

    corpus = [PROMPT] * 50 + ["a girl with long hair sitting in a field of flowers"] * 50
    return train_tokenizer(corpus, vocab_size=400)


def timed_generate(backend, jobs: list[GenerationJob], repeat: int) -> float:
    """Median seconds of ``backend.generate(jobs)`` after a short warm-up batch; the
    backend never stops early (random weights: every prompt costs the same)."""
    backend.eos_id = -1
    backend.generate([GenerationJob(PROMPT, Sampling(max_new_tokens=8), 0)] * len(jobs))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        backend.generate(jobs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_ours(model, tokenizer, batch: int, new_tokens: int, repeat: int) -> float:
    """Median seconds to generate ``new_tokens`` for each of ``batch`` prompts."""
    backend = TorchBackend(model, tokenizer, name="bench", max_batch=batch)
    sampling = Sampling(max_new_tokens=new_tokens)
    jobs = [GenerationJob(PROMPT, sampling, seed=i) for i in range(batch)]
    return timed_generate(backend, jobs, repeat)


def run_onnx(converted: Path, batch: int, new_tokens: int, repeat: int) -> float:
    """Median seconds to generate ``new_tokens`` for each of ``batch`` prompts on ONNX
    Runtime (the prompts differ by one token, so each is read on its own as in use)."""
    from presample.engine.onnx_backend import OnnxBackend

    backend = OnnxBackend.load(converted, name="bench")
    sampling = Sampling(max_new_tokens=new_tokens)
    jobs = [GenerationJob(f"{PROMPT}, {i}", sampling, seed=i) for i in range(batch)]
    return timed_generate(backend, jobs, repeat)


def run_llamacpp(gguf: Path, new_tokens: int, repeat: int) -> float:
    """Median seconds for one prompt of ``new_tokens`` through the llama.cpp backend."""
    from presample.engine.llamacpp_backend import LlamaCppBackend

    backend = LlamaCppBackend.load(gguf, name="bench")
    backend.eos_id = -1  # as above: never stop early
    backend.generate([GenerationJob(PROMPT, Sampling(max_new_tokens=8), 0)])  # warm-up
    times = []
    for i in range(repeat):
        backend.llm.reset()  # no prompt cache across runs: the same work as the first
        start = time.perf_counter()
        backend.generate([GenerationJob(PROMPT, Sampling(max_new_tokens=new_tokens), i)])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_kgen(kgen_path: str, model_dir: Path, new_tokens: int, prompts: int) -> float:
    sys.path.insert(0, kgen_path)
    from kgen import models as kmodels
    from kgen.generate import generate
    from transformers import AutoTokenizer, LlamaForCausalLM

    # Loaded as the reference loads it: float16, sdpa, on the CPU.
    kmodels.text_model = LlamaForCausalLM.from_pretrained(
        model_dir, dtype=torch.float16, attn_implementation="sdpa"
    ).eval()
    kmodels.tokenizer = AutoTokenizer.from_pretrained(model_dir)
    settings = {"temperature": 0.35, "top_p": 0.95, "top_k": 60, "min_p": 0.1}
    generate(prompt=PROMPT, max_new_tokens=4, seed=0, **settings)
    start = time.perf_counter()
    for i in range(prompts):
        # kgen fixes min_new_tokens itself; random weights almost never draw eos
        # (1 in 32k per token), so each prompt runs to max_new_tokens like ours.
        generate(prompt=PROMPT, max_new_tokens=new_tokens, seed=i, **settings)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="tipo-200m")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument(
        "--dtypes",
        default="float32,bfloat16,bfloat16-invariant,int8",
        help="bfloat16 is stock PyTorch; bfloat16-invariant is our CPU default "
        "(packed oneDNN linears + row-wise attention, engine/invariant.py)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="median of this many runs")
    parser.add_argument(
        "--llamacpp",
        default="f32,f16,bf16,q8_0",
        help="GGUF weight types to run through the llama.cpp backend at batch 1, "
        "if llama-cpp-python is installed ('' to skip)",
    )
    parser.add_argument(
        "--onnx",
        default="int8",
        help="ONNX Runtime precisions to run at every batch size, if presample[onnx] is "
        "installed ('' to skip)",
    )
    parser.add_argument("--kgen-path", help="folder where tipo-kgen 0.3.1 is importable")
    parser.add_argument("--kgen-prompts", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    bandwidth = read_bandwidth()
    tokenizer = tiny_tokenizer()
    # The published vocabulary size, so the embedding and head weigh what they do there.
    model = random_model(args.shape, 32013, seed=0)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.shape}, {params / 1e6:.1f}M parameters, threads {args.threads}")
    print(f"read bandwidth: {bandwidth / 1e9:.1f} GB/s")
    rows = []
    base_b1: dict[str, float] = {}
    bytes_per_param = {
        "float32": 4, "bfloat16": 2, "bfloat16-invariant": 2, "float16": 2, "int8": 1
    }  # fmt: skip
    for dtype_name in args.dtypes.split(","):
        if dtype_name == "int8":
            m = quantize_int8(copy.deepcopy(model))
        elif dtype_name == "bfloat16-invariant":
            m = invariant.make_invariant(copy.deepcopy(model))
        else:
            m = copy.deepcopy(model).to(getattr(torch, dtype_name))
        ceiling = bandwidth / (params * bytes_per_param[dtype_name])
        for batch in (int(b) for b in args.batches.split(",")):
            seconds = run_ours(m, tokenizer, batch, args.new_tokens, args.repeat)
            tokens_s = batch * args.new_tokens / seconds
            rows.append((dtype_name, batch, tokens_s, batch / seconds, ceiling))
            if batch == 1:
                base_b1[dtype_name] = batch / seconds
            print(
                f"ours {dtype_name:<18} batch {batch:>3}: {tokens_s:7.1f} tokens/s, "
                f"{batch / seconds:6.3f} prompts/s"
                + (
                    f", {tokens_s / ceiling:5.0%} of the {ceiling:.0f} tokens/s ceiling"
                    if batch == 1
                    else ""
                )
            )

    onnx_precisions = [t for t in args.onnx.split(",") if t]
    from presample.engine import onnx_export

    if onnx_precisions and onnx_export.available():
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            for precision in onnx_precisions:
                ceiling = bandwidth / (params * {"int8": 1, "fp32": 4}.get(precision, 1))
                converted = onnx_export.convert(
                    folder, identity=onnx_export.file_identity(Path(folder)), precision=precision
                )
                for batch in (int(b) for b in args.batches.split(",")):
                    seconds = run_onnx(converted, batch, args.new_tokens, args.repeat)
                    tokens_s = batch * args.new_tokens / seconds
                    rows.append((f"onnx-{precision}", batch, tokens_s, batch / seconds, ceiling))
                    print(f"onnx {precision:<18} batch {batch:>3}: {tokens_s:7.1f} tokens/s, "
                          f"{batch / seconds:6.3f} prompts/s")  # fmt: skip
                shutil.rmtree(converted, ignore_errors=True)  # a random model: keep no copy
    elif onnx_precisions:
        print("onnx: skipped (pip install 'presample[onnx]')")

    gguf_types = [t for t in args.llamacpp.split(",") if t]
    if gguf_types and llamacpp_backend.available():
        import tempfile

        from presample.training.gguf_export import export_gguf

        # Q8_0 blocks: 32 int8 values and one f16 scale.
        gguf_bytes = {"f32": 4, "f16": 2, "bf16": 2, "q8_0": 34 / 32}
        with tempfile.TemporaryDirectory() as folder:
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            for kind in gguf_types:
                gguf = export_gguf(folder, Path(folder) / f"bench-{kind}.gguf", dtype=kind)
                seconds = run_llamacpp(gguf, args.new_tokens, args.repeat)
                gguf.unlink()
                tokens_s = args.new_tokens / seconds
                ceiling = bandwidth / (params * gguf_bytes[kind])
                rows.append((f"llama.cpp-{kind}", 1, tokens_s, 1 / seconds, ceiling))
                print(
                    f"llama.cpp {kind:<13} batch   1: {tokens_s:7.1f} tokens/s, "
                    f"{1 / seconds:6.3f} prompts/s, {tokens_s / ceiling:5.0%} of the "
                    f"{ceiling:.0f} tokens/s ceiling (serial: batch N = N x this)"
                )
    elif gguf_types:
        print("llama.cpp: skipped (pip install 'presample[llamacpp]')")

    if args.kgen_path:
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            seconds = run_kgen(args.kgen_path, Path(folder), args.new_tokens, args.kgen_prompts)
        ref_prompts_s = args.kgen_prompts / seconds
        print(
            f"reference tipo-kgen 0.3.1 (float16, serial): "
            f"{args.kgen_prompts * args.new_tokens / seconds:7.1f} tokens/s, "
            f"{ref_prompts_s:6.3f} prompts/s"
        )
        for dtype_name, batch, _tok, prompts_s, _c in rows:
            ratio = prompts_s / ref_prompts_s
            print(f"  ours {dtype_name} batch {batch}: {ratio:5.1f}x the reference")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
