"""The tags added to a sentence: on subject, and no person's features where there is none.

    python benchmarks/bench_sentence_tags.py --data-dir artifacts/data2 [--items 80] [--seeds 0,1]

Held-out caption items that carry tags (the test split's image-caption records:
a short caption, and the objects its long caption names as tags). Each short
caption of three words or more is presampled as a prompt with the shipped
model's defaults; the tags the model adds are scored against the item's tags
(precision), and on items with no person (no people tag, no person word) the
runs that add a person's features (hair, eyes, clothes, body: the
``contradictions.describes_person`` tags) are counted. Two samplers in the same
run: the rule that keeps a person's features off a line with no person, off and
on (``TagFloor.needs_person``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_default_path import cpu_name  # noqa: E402

from presample import Presampler, PresampleRequest  # noqa: E402
from presample import runs as run_module  # noqa: E402
from presample.contradictions import describes_person, has_person, mentions_person  # noqa: E402
from presample.tagdb import normalize_key  # noqa: E402


def items(data_dir: Path, limit: int) -> list[dict]:
    out = []
    with gzip.open(data_dir / "test.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            short, tags = record.get("short", ""), record.get("tags", {})
            if len(short.split()) >= 3 and record.get("long") and tags.get("general"):
                out.append(record)
                if len(out) == limit:
                    break
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "artifacts" / "data2")
    parser.add_argument("--items", type=int, default=80)
    parser.add_argument("--seeds", default="0,1")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    chosen = items(args.data_dir, args.items)
    presampler = Presampler()
    print(f"CPU: {cpu_name()}; {len(chosen)} caption items x seeds {args.seeds}; "
          f"model {presampler.source.name} on {presampler.engine}\n")  # fmt: skip
    print("| sampler | precision | new tags | person-free items: runs adding a person's "
          "features | features per such run | s/run |\n|---|---:|---:|---:|---:|---:|")  # fmt: skip
    real_mentions = run_module.mentions_person
    for name, rule in (("rule off", False), ("rule on (shipped)", True)):
        # Off: every sentence counts as naming a person, so the rule never applies.
        run_module.mentions_person = real_mentions if rule else (lambda text: True)
        hits = added = 0
        free_runs = free_with = free_features = 0
        started = time.perf_counter()
        for record in chosen:
            truth = {normalize_key(t) for ts in record["tags"].values() for t in ts}
            person_free = not has_person(truth) and not mentions_person(record["short"])
            for seed in seeds:
                result = presampler(PresampleRequest(prompt=record["short"], seed=seed))
                new = [normalize_key(t) for t in result.added if t not in ("general",)]
                added += len(new)
                hits += sum(1 for k in new if k in truth)
                if person_free:
                    features = sum(1 for k in new if describes_person(k))
                    free_runs += 1
                    free_with += features > 0
                    free_features += features
        runs = len(chosen) * len(seeds)
        seconds = (time.perf_counter() - started) / runs
        print(f"| {name} | {hits / max(added, 1):.1%} | {added / runs:.2f} | "
              f"{free_with / max(free_runs, 1):.1%} of {free_runs} | "
              f"{free_features / max(free_with, 1):.2f} | {seconds:.3f} |")  # fmt: skip
    run_module.mentions_person = real_mentions
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
