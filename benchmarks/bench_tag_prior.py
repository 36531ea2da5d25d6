"""What the tag prior moves: recall and precision of new tags on held-out posts.

Runs the tag items of ``presample eval`` (a random 30% of the tag-line tags of a
held-out training-split record given, the way a post's tags are known, the rest
held out; ``--given 4``: the first four) through the shipped
model with the co-occurrence prior at several strengths, beside the
frequent-tags and Prompt-DB baselines, in one process::

    python benchmarks/bench_tag_prior.py --data-dir artifacts/data --items 200 \\
        --seeds 0,1,2 --strengths 0,1,2,3,4 --draws 0,0.5,1

``--draws``: shares of the new tags drawn from the co-occurrence table before the
model writes (``PresampleRequest.tag_draw``), each run at every strength.

Prints a table; ``--out FILE`` also writes it. Quality, not speed: seconds per
run are shown only to see what the prior costs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench_default_path import cpu_name  # the sibling script, run from this folder

from presample.cli.evaluate import parse_given
from presample.evaluation.baseline import BACKOFF_TAGS, PromptDB
from presample.evaluation.run import new_tag_counts, run_requests, select_items, tag_metrics
from presample.presampler import Presampler
from presample.tag_prior import CooccurrenceTable
from presample.tagdb import TagDatabase
from presample.training.records import read_records, split_path

COLUMNS = (
    ("tag_recall", "recall", "%"),
    ("tag_precision", "precision", "%"),
    ("new_tags_per_run", "new tags", "f"),
    ("tag_length_hit", "length hits", "%"),
    ("unseen_tag_share", "no training prompt holds", "%"),
    ("tag_jaccard_distance", "Jaccard across seeds", "f"),
    ("repeated_tag_runs", "a tag twice", "%"),
    ("contradiction_runs", "contradicting", "%"),
    ("invented_name_runs", "invented names", "%"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("artifacts/data"))
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--strengths", default="0,3")
    parser.add_argument("--draws", default="0.5",
                        help="tag_draw shares, comma-separated (default 0.5, the card's)")
    parser.add_argument("--model", default="default")
    parser.add_argument("--given", type=parse_given, default="30%",
                        help="the first N tags, or a share (default 30%%) at random")
    parser.add_argument("--split", default="test",
                        help="held-out split to draw items from (validation for tuning)")
    parser.add_argument("--without-apart", action="store_true",
                        help="also run the model with the draw free to put tags the records "
                        "keep apart on one line (CooccurrenceTable.apart), the rule's baseline")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    seeds = tuple(int(s) for s in args.seeds.split(","))
    test = read_records(split_path(args.data_dir, args.split))
    items = select_items(test, 4 * args.items, args.given)[0][: args.items]
    db = TagDatabase()

    rows: list[tuple[str, dict, float]] = []
    prompts = PromptDB(read_records(split_path(args.data_dir, "train")))

    def measure(name: str, sampler: object, update: dict) -> list[dict]:
        requests = [it.request(s).model_copy(update=update) for it in items for s in seeds]
        started = time.perf_counter()
        flat = run_requests(sampler, requests, batch_size=8)  # type: ignore[arg-type]
        seconds = (time.perf_counter() - started) / len(requests)
        groups = [flat[i * len(seeds) : (i + 1) * len(seeds)] for i in range(len(items))]
        numbers, samples = tag_metrics(items, groups, seeds, db.is_known, prompts.known)
        rows.append((name, numbers, seconds))
        print(f"{name}: recall {numbers['tag_recall']:.3f} "
              f"precision {numbers['tag_precision']:.3f}", flush=True)  # fmt: skip
        return samples

    measure("frequent tags", prompts.frequent_tags(), {})
    measure("Prompt-DB", prompts, {})
    measure("Danbooru frequent tags", prompts.danbooru_tags(db.most_popular(BACKOFF_TAGS)), {})
    with Presampler(args.model) as model:
        engine = model.engine
        last: tuple[list[dict], dict] | None = None
        draws = [float(d) for d in args.draws.split(",") if d]
        if args.without_apart:
            kept_apart = CooccurrenceTable.apart
            CooccurrenceTable.apart = lambda self, key, keys: False  # type: ignore[method-assign]
            update = {"tag_prior": float(args.strengths.split(",")[0]),
                      "tag_draw": float(args.draws.split(",")[0])}  # fmt: skip
            measure(f"model, {update}, no apart rule", model, update)
            CooccurrenceTable.apart = kept_apart  # type: ignore[method-assign]
        for strength in (float(s) for s in args.strengths.split(",") if s):
            for draw in draws:
                update = {"tag_prior": strength, "tag_draw": draw}
                name = f"model, tag prior {strength:g}, draw {draw:g}"
                last = measure(name, model, update), update
    if last is not None:
        # As presample eval does: the frequency baseline adding as many new tags to
        # each request as the model (its last strength and draw) did.
        counts = new_tag_counts(items, seeds, *last)
        matched = prompts.frequent_tags().matched(counts)
        measure("frequent tags, as many as the model", matched, {})

    head = "| sampler | " + " | ".join(label for _, label, _ in COLUMNS) + " | s/run |"
    lines = [
        f"# tag prior, {time.strftime('%Y-%m-%d')}: {len(items)} tag items x seeds {args.seeds} "
        f"of {args.data_dir} ({args.split}), given {args.given}; model {args.model} on {engine}; "
        f"{cpu_name()}",
        "",
        head,
        "|---|" + "---:|" * (len(COLUMNS) + 1),
    ]
    for name, numbers, seconds in rows:
        cells = []
        for key, _, how in COLUMNS:
            value = numbers.get(key)
            cells.append("–" if value is None else f"{100 * value:.1f}%" if how == "%"
                         else f"{value:.2f}")  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {seconds:.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
