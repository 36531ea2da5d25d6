"""Load on ``presample serve``: requests/s and latency percentiles per concurrency.

    python benchmarks/bench_server.py [--model default | PATH | --tiny]
        [--clients 1,8,32] [--per-client 2] [--serial 8] [--length very_short]

In one run:
- a real server (``presample serve`` in a subprocess on a free port, the
  default 20 ms batch window), driven by N concurrent clients (httpx, each
  sending ``--per-client`` requests one after another) for each N in ``--clients``;
- the same requests through ``Presampler.presample`` called serially in this
  process: the baseline the server's batching must beat.

Every request has its own seed, so no result is a cache hit. ``--tiny`` builds
the test suite's tiny random TIPO model (fast; measures the server's overhead
and batching more than the model). The machine is shared and noisy: compare the
ratios within one run, not numbers across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from presample import Presampler  # noqa: E402

PROMPTS = (
    "1girl, scenery",
    "1boy, armor, castle",
    "landscape, mountains, lake",
    "1girl, hatsune miku, singing",
    "a cat sitting on a windowsill",
    "2girls, school uniform, classroom",
)


def build_tiny(folder: Path) -> Path:
    """The tests' tiny random LLaMA with the TIPO special tokens."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import tiny_corpus

    from presample.training.model import random_model
    from presample.training.tokenizer import train_tokenizer

    tokenizer = train_tokenizer(tiny_corpus() * 2, vocab_size=700)
    model = random_model("tiny", len(tokenizer), seed=1234)
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


def request(i: int, length: str, max_new_tokens: int | None) -> dict:
    body: dict = {
        "prompt": PROMPTS[i % len(PROMPTS)],
        "seed": 1000 + i,
        "tag_length": length,
        "nl_length": length,
    }
    if max_new_tokens:
        body["sampling"] = {"max_new_tokens": max_new_tokens}
    return body


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, dtype: str, queue: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "presample", "serve", "--model", model, "--port", str(port),
         "--dtype", dtype, "--log-level", "warning", "--queue-size", str(queue)],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stderr is not None
    line = process.stderr.readline()
    match = re.search(r"serving on (http://\S+)/ ", line)
    if not match:
        process.kill()
        raise SystemExit(f"server did not start: {line}{process.stderr.read()}")
    url = match.group(1)
    deadline = time.monotonic() + 300
    while True:
        try:
            httpx.get(f"{url}/health", timeout=5).raise_for_status()
            return process, url
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("server died while loading the model") from None
            time.sleep(0.2)


async def load(url: str, clients: int, per_client: int, bodies: list[dict]) -> dict:
    latencies: list[float] = []

    async def client(index: int, http: httpx.AsyncClient) -> None:
        for k in range(per_client):
            body = bodies[(index * per_client + k) % len(bodies)]
            started = time.perf_counter()
            response = await http.post("/api/presample", json=body)
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=3600, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(i, http) for i in range(clients)))
        wall = time.perf_counter() - started
    return {
        "clients": clients,
        "requests": len(latencies),
        "seconds": wall,
        "rps": len(latencies) / wall,
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--tiny", action="store_true", help="build and use the tests' tiny model")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--per-client", type=int, default=2)
    parser.add_argument("--serial", type=int, default=8, help="requests in the serial baseline")
    parser.add_argument("--length", default="very_short", help="tag_length and nl_length")
    parser.add_argument("--max-new-tokens", type=int, default=0, help="per request (0: model's)")
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]

    model = args.model
    if args.tiny:
        model = str(build_tiny(Path(tempfile.mkdtemp(prefix="tiny-tipo-"))))
        # A random model never stops on its own: cap it as the tests do.
        args.max_new_tokens = args.max_new_tokens or 8
    bodies = [request(i, args.length, args.max_new_tokens) for i in range(max(levels) * 4)]

    with Presampler(model, dtype=args.dtype) as presampler:
        from presample.server.schemas import PresampleCall

        calls = [PresampleCall.model_validate(b) for b in bodies[: args.serial]]
        presampler.presample(calls[0].request())  # warm-up
        started = time.perf_counter()
        for call in calls:
            sampling = call.sampling.applied_to(presampler.sampling) if call.sampling else None
            if sampling is not None:
                presampler.sampling = sampling
            presampler.presample(call.request())
        serial_rps = len(calls) / (time.perf_counter() - started)

    process, url = start_server(model, args.dtype, queue=max(levels) * 2)
    rows = []
    try:
        asyncio.run(load(url, 1, 1, bodies))  # warm-up
        for clients in levels:
            rows.append(asyncio.run(load(url, clients, args.per_client, bodies)))
        health = httpx.get(f"{url}/health").json()
    finally:
        process.terminate()
        process.wait(timeout=30)

    (stats,) = health["models"].values()
    print(f"model {model} ({args.dtype}), lengths {args.length}; serial engine: "
          f"{serial_rps:.2f} requests/s over {len(calls)} requests")  # fmt: skip
    print("| clients | requests | requests/s | vs serial engine | p50 s | p95 s | p99 s |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        row["vs_serial"] = row["rps"] / serial_rps
        print(
            f"| {row['clients']} | {row['requests']} | {row['rps']:.2f} | {row['vs_serial']:.2f}x "
            f"| {row['p50']:.2f} | {row['p95']:.2f} | {row['p99']:.2f} |"
        )
    print(f"server model calls: {stats['calls']} for {stats['requests']} requests "
          f"(largest {stats['largest_batch']})")  # fmt: skip
    if args.json:
        document = {"model": model, "dtype": args.dtype, "serial_rps": serial_rps,
                    "levels": rows, "batcher": stats}  # fmt: skip
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
