"""What the caption sentence floor costs: model work per prompt with it on and off.

    python benchmarks/bench_caption_floor.py [--data-dir artifacts/data2] [--items 24]
        [--backend auto] [--seed 0]

On the shipped default model, the held-out caption items of ``presample eval``
(a short caption in, a longer one asked for) and its tag-caption items (tags
in, a caption written from them) run with ``fill_nl_length`` on and off, the
two interleaved item by item (the order alternating) so that a busy machine
shifts both sides alike. Reports seconds and generated tokens per prompt, the
sentence-target hit rate, and the ratios on/off.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from presample import Presampler, PresampleRequest  # noqa: E402
from presample.evaluation.metrics import nl_length_hit  # noqa: E402
from presample.evaluation.run import select_items, select_tag_caption_items  # noqa: E402
from presample.training.records import read_records, split_path  # noqa: E402


def requests(data_dir: Path, items: int, seed: int) -> list[PresampleRequest]:
    test = split_path(data_dir, "test")
    _, captions = select_items(read_records(test), 2 * items)
    tag_captions = select_tag_caption_items(read_records(test), items // 2)
    chosen = [*captions[:items], *tag_captions]
    return [item.request(seed) for item in chosen]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "artifacts" / "data2")
    parser.add_argument(
        "--items", type=int, default=24, help="caption items (half as many tag-caption items)"
    )
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    base = requests(args.data_dir, args.items, args.seed)
    stats: dict[bool, dict[str, list[float]]] = {
        on: {"seconds": [], "tokens": [], "hits": []} for on in (True, False)
    }
    with Presampler("default", backend=args.backend) as sampler:
        print(f"{len(base)} prompts, backend {sampler.backend.info.name}")
        sampler(base[0])  # warm-up: the first call pays one-off costs
        for index, request in enumerate(base):
            order = (True, False) if index % 2 == 0 else (False, True)
            for on in order:
                req = request.model_copy(update={"fill_nl_length": on})
                start = time.perf_counter()
                result = sampler(req)
                stats[on]["seconds"].append(time.perf_counter() - start)
                stats[on]["tokens"].append(result.timings["generated_tokens"])
                caption = result.extended or result.generated
                stats[on]["hits"].append(float(nl_length_hit(caption, req.nl_length)))

    print(f"{'floor':<6}{'s/prompt':>10}{'tokens/prompt':>15}{'s/token':>10}{'sentence hits':>15}")
    means = {}
    for on in (True, False):
        s = stats[on]
        seconds, tokens = statistics.mean(s["seconds"]), statistics.mean(s["tokens"])
        means[on] = (seconds, tokens)
        print(
            f"{'on' if on else 'off':<6}{seconds:>10.2f}{tokens:>15.1f}"
            f"{sum(s['seconds']) / sum(s['tokens']):>10.4f}{statistics.mean(s['hits']):>15.1%}"
        )
    print(
        f"on/off: time {means[True][0] / means[False][0]:.2f}x, "
        f"tokens {means[True][1] / means[False][1]:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
