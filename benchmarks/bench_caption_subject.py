"""Captions written from tags: do they name the people the tags count?

    python benchmarks/bench_caption_subject.py --data-dir artifacts/data2 [--split validation]
        [--items 60] [--seeds 0,1] [--strengths 0,2,4,6]

Held-out records with tags and a real caption (the evaluation's tag-caption
items, ``evaluation.run.select_tag_caption_items``) whose tags count people
(``1girl``, ``2boys`` ...), plus the prompts a new user types first, each
captioned from its tags alone with the shipped model, once per lean strength
(``caption_subject.SUBJECT_STRENGTH``; 0 is ``caption_people: false``, no lean
and no fresh draw, the baseline of the same run). Measured: captions that name the counted people
(``caption_fit.names_people``), captions that bring in people of the other
family ("a man" for ``1girl`` alone), captions that contradict the tags' hair
or eyes, similarity to the record's real caption (all-MiniLM-L6-v2, as
``presample eval``), share of the caption's words that come from the tags
(``caption_fit``), seconds a run. ``--things`` items whose tags count nobody
measure the lean towards the things the tags name: captions naming one of them
(``caption_subject.subject_words``), similarity, words from the tags.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_default_path import cpu_name  # noqa: E402

from presample import (  # noqa: E402
    Presampler,
    PresampleRequest,
)
from presample import runs as run_module  # noqa: E402
from presample.caption_fit import (  # noqa: E402
    caption_conflicts,
    caption_fit,
    content_words,
    names_people,
    people_words,
    tag_words,
)
from presample.caption_subject import CaptionSubject, subject_words  # noqa: E402
from presample.evaluation.run import TAG_LINE, select_tag_caption_items  # noqa: E402
from presample.training.records import read_records, split_path  # noqa: E402

FIRST_PROMPTS = ("1girl, scenery", "long hair, smile, beach", "2girls, beach",
                 "1boy, armor, castle", "1girl, 1boy, kimono, festival")  # fmt: skip


def others(caption: str, tags: list[str]) -> bool:
    """Whether the caption names people of a family the tags do not count."""
    lean = CaptionSubject.for_tags(tags, 1.0)
    return lean is not None and bool(content_words(caption) & lean.unwanted)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "artifacts" / "data2")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--strengths", default="0,2,4,6")
    parser.add_argument("--first-seeds", type=int, default=8,
                        help="seeds for each of the first prompts a user types")
    parser.add_argument("--things", type=int, default=80,
                        help="items whose tags count nobody (the lean towards the things "
                        "the tags name), half Civitai; 0 skips")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    pool = select_tag_caption_items(read_records(split_path(args.data_dir, args.split)), 10**6)
    counted = [i for i in pool if people_words([t for c in TAG_LINE for t in i.tags.get(c, [])])]
    # Half Civitai prompts (anime tags, a prompt's fragment as the caption), half
    # caption-set records (a real description, tagged from its nouns), as the evaluation.
    civitai = [i for i in counted if i.id.startswith("civitai:")][: (args.items + 1) // 2]
    chosen = civitai + [i for i in counted if not i.id.startswith("civitai:")][
        : args.items - len(civitai)
    ]
    from presample.evaluation.embeddings import MiniLM

    embed = MiniLM().encode
    presampler = Presampler()
    if chosen:  # --items 0: the things alone
        people_table(presampler, embed, chosen, seeds, args)
    else:
        print(f"CPU: {cpu_name()}; model {presampler.source.name} on {presampler.engine}")
    if args.things:
        nobody = [i for i in pool if i not in counted]
        civitai = [i for i in nobody if i.id.startswith("civitai:")][: (args.things + 1) // 2]
        rest = [i for i in nobody if not i.id.startswith("civitai:")]
        things_table(presampler, embed, civitai + rest[: args.things - len(civitai)],
                     seeds, args.strengths)  # fmt: skip
    return 0


def people_table(presampler: Presampler, embed: Any, chosen: list, seeds: list[int],
                 args: argparse.Namespace) -> None:  # fmt: skip
    """Each lean strength on items whose tags count people, and on the first prompts."""
    print(f"CPU: {cpu_name()}; {len(chosen)} {args.split} tag-caption items that count people "
          f"x seeds {args.seeds}; the first prompts x {args.first_seeds} seeds; "
          f"model {presampler.source.name} on {presampler.engine}\n")  # fmt: skip
    print("| strength | names the people | other people | contradicts hair/eyes | "
          "similarity to the real caption: Civitai / caption sets | words from the tags "
          "| first prompts: names | first prompts: other people | s/run |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    real = run_module.SUBJECT_STRENGTH
    references = embed([item.long for item in chosen])
    for setting in args.strengths.split(","):
        run_module.SUBJECT_STRENGTH = float(setting)
        on = {"caption_people": float(setting) > 0}  # 0: no lean and no fresh draw
        requests = [item.request(seed).model_copy(update=on) for item in chosen for seed in seeds]
        firsts = [PresampleRequest(prompt=p, seed=s, **on)
                  for p in FIRST_PROMPTS for s in range(args.first_seeds)]  # fmt: skip
        started = time.perf_counter()
        results = presampler.presample_many(requests)
        seconds = (time.perf_counter() - started) / len(requests)
        named, other, conflicts, fits, written, rows = [], [], [], [], [], []
        for index, result in enumerate(results):
            item = chosen[index // len(seeds)]
            if isinstance(result, Exception) or not result.generated.strip():
                continue
            caption = result.generated.strip()
            tags = [t for c in TAG_LINE for t in item.tags.get(c, [])]
            named.append(bool(names_people(caption, tags)))
            other.append(others(caption, tags))
            conflicts.append(caption_conflicts(caption, tags) > 0)
            fits.append(caption_fit(caption, tag_words(tags)))
            written.append(caption)
            rows.append(index // len(seeds))
        vectors = embed(written)
        by_kind: dict[bool, list[float]] = {True: [], False: []}
        for vector, row in zip(vectors, rows, strict=True):
            by_kind[chosen[row].id.startswith("civitai:")].append(float(vector @ references[row]))
        similarity = " / ".join(f"{statistics.fmean(by_kind[k]):.3f}" for k in (True, False))
        first_named, first_other = [], []
        for result in presampler.presample_many(firsts):
            if isinstance(result, Exception):
                continue
            tags = [*result.tags.special, *result.tags.general]
            first_named.append(bool(names_people(result.generated, tags)))
            first_other.append(others(result.generated, tags))
        share = statistics.fmean
        print(f"| {setting} | {share(named):.1%} | {share(other):.1%} | "
              f"{share(conflicts):.1%} | {similarity} | {share(fits):.3f} | "
              f"{share(first_named):.1%} | {share(first_other):.1%} | {seconds:.2f} |")  # fmt: skip
    run_module.SUBJECT_STRENGTH = real


def things_table(presampler: Presampler, embed: Any, items: list, seeds: list[int],
                 strengths: str) -> None:  # fmt: skip
    """The same settings on items whose tags count nobody: the caption leans towards
    the things the tags name (``caption_subject.subject_words``)."""
    print(f"\n{len(items)} items whose tags count nobody x seeds {seeds}:\n")
    print("| strength | names one of the things | names the first | similarity to the real "
          "caption: Civitai / caption sets | words from the tags |\n|---|---:|---:|---:|---:|")
    references = embed([item.long for item in items])
    real = run_module.SUBJECT_STRENGTH
    for setting in strengths.split(","):
        run_module.SUBJECT_STRENGTH = float(setting)
        on = {"caption_people": float(setting) > 0}
        requests = [item.request(seed).model_copy(update=on) for item in items for seed in seeds]
        named, first, fits, by_kind = [], [], [], {True: [], False: []}
        results = presampler.presample_many(requests)
        captions = [r.generated.strip() if not isinstance(r, Exception) else "" for r in results]
        for index, (caption, vector) in enumerate(zip(captions, embed(captions), strict=True)):
            item = items[index // len(seeds)]
            tags = [t for c in TAG_LINE for t in item.tags.get(c, [])]
            # Each one-word tag that names a thing, in the tags' order; both sides
            # through content_words (plural endings off: "glass", "cats").
            things = [content_words(" ".join(w)) for t in tags if (w := subject_words([t]))]
            if things:
                said = content_words(caption)
                named.append(bool(said & frozenset().union(*things)))
                first.append(bool(said & things[0]))
            fits.append(caption_fit(caption, tag_words(tags)))
            reference = references[index // len(seeds)]
            by_kind[item.id.startswith("civitai:")].append(float(vector @ reference))
        similarity = " / ".join(f"{statistics.fmean(by_kind[k]):.3f}" for k in (True, False))
        print(f"| {setting} | {statistics.fmean(named):.1%} | {statistics.fmean(first):.1%} | "
              f"{similarity} | "
              f"{statistics.fmean(fits):.3f} |")
    run_module.SUBJECT_STRENGTH = real


if __name__ == "__main__":
    raise SystemExit(main())
