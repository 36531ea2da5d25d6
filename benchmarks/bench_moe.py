"""TIPO v2's mixture-of-experts decode on the CPU: our engines against llama.cpp.

    python benchmarks/bench_moe.py [--new-tokens 48] [--batches 1,32]
        [--torch-dtypes bfloat16,float32] [--gguf f16,q8_0] [--work DIR]

On a random model of the published TIPO-v2.1-1B-A200M shape (990.8M parameters,
64 experts top-8 + 1 shared, ~197M read per token; the real weights cannot be
downloaded here), built in the publisher's kohaku format and exported to the
dots1 GGUF the reference runs, in one run:
- the memory-bandwidth limit: bytes read per token at batch 1 -> tokens/s ceiling;
- transformers' Dots1 through our backend (the default engine for v2): tokens/s
  at each batch size (experts through PyTorch's grouped matmul, no Python loop);
- llama.cpp on the same weights as f16 and Q8_0 GGUF (the reference's engine),
  through our backend: one sequence at a time, so batch N takes N times batch 1.
Every prompt generates ``--new-tokens`` tokens (eos masked out: random weights).
Ratios against llama.cpp Q8_0 (the reference's recommended file) in the same run
are the numbers to compare; the machine is noisy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from presample.engine import llamacpp_backend  # noqa: E402
from presample.engine.backend import GenerationJob  # noqa: E402
from presample.engine.sampling import Sampling  # noqa: E402
from presample.engine.torch_backend import TorchBackend  # noqa: E402
from presample.training import tipo_v2  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_engine import read_bandwidth  # noqa: E402  (the same measure in both)

PROMPT = (
    "rating: safe\nartist: ningen mame\ncharacters: hatsune miku\ncopyrights: vocaloid\n"
    "quality: masterpiece, newest\naspect ratio: 0.7\ntarget: <|long|>\n"
    "tag: 1girl, solo, long hair, twintails, smile, aqua hair, aqua eyes, looking at viewer"
)
# A draw the way the v2.1 card samples, with a top-k so that drawing costs the
# same on every engine (the model is what is measured here).
SAMPLING = Sampling(temperature=1.0, top_p=1.0, top_k=40, min_p=0.1, repetition_penalty=1.0)


def active_parameters(shape: tipo_v2.KohakuShape) -> int:
    """Weights one token reads: attention, the dense layer, 8 + 1 experts per MoE layer, head."""
    h, hd = shape.hidden_size, shape.head_dim
    attention = 2 * h * shape.num_attention_heads * hd + 2 * h * shape.num_key_value_heads * hd
    dense = 3 * h * shape.intermediate_size
    experts = (shape.num_experts_per_tok + shape.n_shared_experts) * 3 * h
    moe = experts * shape.moe_intermediate_size + shape.n_routed_experts * h
    layers = shape.num_hidden_layers
    moe_layers = layers - shape.first_k_dense
    return layers * attention + shape.first_k_dense * dense + moe_layers * moe + tipo_v2.VOCAB * h


def timed(backend, batch: int, new_tokens: int, repeat: int, reset=None) -> float:
    """Median seconds for ``batch`` prompts of ``new_tokens`` each."""
    backend.eos_id = -1  # random weights: never stop early, every prompt costs the same
    sampling = SAMPLING.with_(max_new_tokens=new_tokens)
    jobs = [GenerationJob(PROMPT, sampling, seed=i) for i in range(batch)]
    backend.generate([GenerationJob(PROMPT, SAMPLING.with_(max_new_tokens=4), 0)] * batch)
    times = []
    for _ in range(repeat):
        if reset is not None:
            reset()
        start = time.perf_counter()
        backend.generate(jobs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--torch-dtypes", default="bfloat16,float32")
    parser.add_argument("--gguf", default="f16,q8_0", help="llama.cpp files ('' to skip)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, help="keep the random model here between runs")
    args = parser.parse_args()

    shape = tipo_v2.SHAPES["full"]
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-moe-"))
    folder = work / "TIPO-v2.1-random"
    if not (folder / "model.safetensors").is_file():
        print("building the random full-shape model (kohaku format) ...", flush=True)
        tipo_v2.write_kohaku(folder, [PROMPT] * 50, shape="full", seed=0)
    bandwidth = read_bandwidth()
    active = active_parameters(shape)
    print(f"machine: {torch.get_num_threads()} threads, read bandwidth {bandwidth / 1e9:.1f} GB/s")
    print(f"model: TIPO-v2.1 shape, 990.8M parameters, {active / 1e6:.0f}M read per token")
    print(f"prompt {len(PROMPT)} characters, {args.new_tokens} new tokens per prompt\n")
    rows: list[tuple[str, int, float]] = []

    def report(name: str, batch: int, seconds: float, bytes_per_param: float) -> None:
        tokens_s = batch * args.new_tokens / seconds
        ceiling = bandwidth / (active * bytes_per_param)
        rows.append((name, batch, tokens_s))
        extra = f", {tokens_s / ceiling:4.0%} of the {ceiling:.0f} tokens/s ceiling"
        extra = extra if batch == 1 else ""
        print(f"{name:<26} batch {batch:>3}: {tokens_s:7.1f} tokens/s, "
              f"{batch / seconds:6.3f} prompts/s{extra}", flush=True)  # fmt: skip

    for dtype in (d for d in args.torch_dtypes.split(",") if d):
        start = time.perf_counter()
        backend = TorchBackend.load(folder, dtype=dtype, device="cpu")
        print(f"transformers {dtype}: loaded in {time.perf_counter() - start:.1f} s", flush=True)
        for batch in (int(b) for b in args.batches.split(",")):
            seconds = timed(backend, batch, args.new_tokens, args.repeat)
            report(f"transformers {dtype}", batch, seconds, 4 if dtype == "float32" else 2)
        del backend

    kinds = [k for k in args.gguf.split(",") if k]
    if kinds and llamacpp_backend.available():
        from presample.engine.llamacpp_backend import LlamaCppBackend

        for kind in kinds:
            gguf = work / f"TIPO-v2.1-random-{kind}.gguf"
            if not gguf.is_file():
                print(f"exporting {gguf.name} ...", flush=True)
                tipo_v2.export_dots1_gguf(folder, gguf, dtype=kind)
            start = time.perf_counter()
            backend = LlamaCppBackend.load(gguf, name="bench")
            print(f"llama.cpp {kind}: loaded in {time.perf_counter() - start:.1f} s", flush=True)
            seconds = timed(backend, 1, args.new_tokens, args.repeat, reset=backend.llm.reset)
            report(f"llama.cpp {kind}", 1, seconds, {"f16": 2, "q8_0": 34 / 32}[kind])
            print(f"{'':<26} (one sequence at a time: batch N takes N x this)")
            del backend
    elif kinds:
        print("llama.cpp: skipped (pip install 'presample[llamacpp]')")

    base = next((t for name, b, t in rows if name == "llama.cpp q8_0" and b == 1), None)
    if base:
        print("\nagainst llama.cpp q8_0 at batch 1 (aggregate tokens/s):")
        for name, batch, tokens_s in rows:
            print(f"  {name:<26} batch {batch:>3}: {tokens_s / base:5.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
