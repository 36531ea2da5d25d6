"""The evaluation: test records -> requests -> the same metrics for every sampler.

Two kinds of items are drawn from the held-out test split (a fixed shuffle, so
``--limit`` picks the same records every time, half of each kind):

- **tag items**: records with at least ``given + 2`` tag-line tags (special and
  general) and no long caption. The request gives the first ``given`` of them,
  or with a share (``given=0.3``) that share of them drawn at random (stable per
  record: the way a post's tags are known, in no particular order, rather than
  a prompt's first words), plus the record's characters, copyrights, artists
  and rating, and asks for the tag length class of the record's real tag
  count; the rest are the held-out continuation.
- **caption items**: records with a short and a long caption. The request gives
  the short caption and asks for the sentence length class of the real long
  one; the real long caption is the reference.

Each item runs once per seed. A sampler is anything with ``presample_many``:
a :class:`~presample.presampler.Presampler` or the
:class:`~presample.evaluation.baseline.PromptDB` baseline.
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..caption_fit import caption_conflicts, names_people
from ..lengths import nl_length_hit, sentence_count, tag_length_hit
from ..rating import infer_rating
from ..request import PresampleRequest, PresampleResult, TagSet
from ..tipo import Length
from ..training.records import Record
from ..training.samples import nl_length, tag_length
from . import metrics as m
from .hard_inputs import HARD_INPUTS, hard_input_metrics, hard_requests

TAG_LINE = ("special", "general")
CONDITIONS = ("characters", "copyrights", "artist")
CONTENT = (*TAG_LINE, *CONDITIONS)
DEFAULT_GIVEN = 0.3
"""A random 30% of each item's tags: how the posts that judge the model are given
(the first four of a prompt's tags nearly always include its people-count tag,
which a post's random 30% often leaves to be added)."""
DEFAULT_SEEDS = (0, 1, 2)
SELECTION_SEED = 20240601
"""Fixes the shuffle of the test split that ``--limit`` takes items from."""
MIN_HELD_OUT = 2
MIN_CAPTION_TAGS = 3


@dataclass(frozen=True)
class TagItem:
    id: str
    given: dict[str, list[str]]
    """The first tag-line tags by category, plus the record's conditions."""
    held_out: list[str]
    rating: str
    length: Length

    def given_tags(self) -> list[str]:
        return [t for c in TAG_LINE for t in self.given.get(c, [])]

    def request(self, seed: int) -> PresampleRequest:
        tags = TagSet(**self.given, rating=[self.rating])
        return PresampleRequest(tags=tags, tag_length=self.length, generate_nl=False, seed=seed)


@dataclass(frozen=True)
class CaptionItem:
    id: str
    short: str
    long: str
    length: Length
    tag_length: Length

    def request(self, seed: int) -> PresampleRequest:
        return PresampleRequest(
            nl_prompt=self.short, nl_length=self.length, tag_length=self.tag_length, seed=seed
        )


def given_count(line_length: int, given: int | float) -> int:
    """How many of a line's tags an item gives: ``given`` itself, or for a share
    (a float below 1) that share of them rounded, at least one."""
    if isinstance(given, float):
        return max(1, round(line_length * given))
    return given


def tag_item(record: Record, given: int | float) -> TagItem | None:
    line = [(c, t) for c in TAG_LINE for t in record.tags.get(c, [])]
    count = given_count(len(line), given)
    if record.long or len(line) < count + MIN_HELD_OUT:
        return None
    if isinstance(given, float):
        # Seeded by the record, so every sampler and every run gets the same split.
        picked = set(random.Random(f"{SELECTION_SEED}:{record.id}").sample(range(len(line)), count))
    else:
        picked = set(range(count))
    first: dict[str, list[str]] = {c: [] for c in CONTENT}
    for category, tag in (pair for i, pair in enumerate(line) if i in picked):
        first[category].append(tag)
    for category in CONDITIONS:
        first[category] = list(record.tags.get(category, []))
    rating = (record.tags.get("rating") or ["general"])[0]
    held_out = [t for i, (_, t) in enumerate(line) if i not in picked]
    return TagItem(record.id, first, held_out, rating, tag_length(len(line)))


def caption_item(record: Record) -> CaptionItem | None:
    if not (record.short and record.long) or record.short == record.long:
        return None
    count = sum(len(record.tags.get(c, [])) for c in TAG_LINE)
    return CaptionItem(
        record.id,
        record.short,
        record.long,
        nl_length(record.long),
        tag_length(count) if count else Length.VERY_SHORT,
    )


@dataclass(frozen=True)
class TagCaptionItem:
    """A record with tags and a long caption: the tags are given, the caption is
    the reference for the caption a sampler writes from them (``tag_to_long``)."""

    id: str
    tags: dict[str, list[str]]
    rating: str
    long: str
    length: Length

    def request(self, seed: int) -> PresampleRequest:
        tags = TagSet(**self.tags, rating=[self.rating])
        return PresampleRequest(
            tags=tags, expand_tags=False, nl_length=self.length, seed=seed
        )  # fmt: skip


def tag_caption_item(record: Record) -> TagCaptionItem | None:
    if not record.long or sum(len(record.tags.get(c, [])) for c in TAG_LINE) < MIN_CAPTION_TAGS:
        return None
    tags = {c: list(record.tags.get(c, [])) for c in CONTENT}
    rating = (record.tags.get("rating") or ["general"])[0]
    return TagCaptionItem(record.id, tags, rating, record.long, nl_length(record.long))


def select_tag_caption_items(records: Iterable[Record], limit: int) -> list[TagCaptionItem]:
    """Up to ``limit`` tag-caption items from the same fixed shuffle: half Civitai
    records (anime tags), half caption-set records (whose tags are words of the
    caption), either filling in when the other runs out."""
    pool = sorted(records, key=lambda r: r.id)
    random.Random(SELECTION_SEED).shuffle(pool)
    items = [(r.src == "civitai", i) for r in pool if (i := tag_caption_item(r)) is not None]
    civitai = [i for anime, i in items if anime]
    others = [i for anime, i in items if not anime]
    # Half each when both have enough; either fills in when the other runs out.
    take = min(len(civitai), max((limit + 1) // 2, limit - len(others)))
    return civitai[:take] + others[: limit - take]


def select_items(
    records: Iterable[Record], limit: int, given: int | float = DEFAULT_GIVEN
) -> tuple[list[TagItem], list[CaptionItem]]:
    """Up to ``limit`` items, half tag items and half caption items (either kind
    fills in when the other runs out), from a fixed shuffle of the records."""
    pool = sorted(records, key=lambda r: r.id)
    random.Random(SELECTION_SEED).shuffle(pool)
    tags = [i for r in pool if (i := tag_item(r, given)) is not None]
    captions = [i for r in pool if (i := caption_item(r)) is not None]
    want_tags = min(len(tags), max(limit - len(captions), (limit + 1) // 2))
    want_captions = min(len(captions), limit - want_tags)
    return tags[:want_tags], captions[:want_captions]


class Sampler(Protocol):
    def presample_many(
        self,
        requests: Sequence[PresampleRequest],
        *,
        on_result: Callable[[int, PresampleResult | Exception], None] | None = None,
    ) -> Sequence[PresampleResult | Exception]: ...


def run_requests(
    sampler: Sampler,
    requests: Sequence[PresampleRequest],
    *,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> list[PresampleResult | Exception]:
    """Every request, in chunks of ``batch_size``; ``progress(1)`` as each finishes."""
    results: list[PresampleResult | Exception] = []
    for start in range(0, len(requests), batch_size):
        chunk = requests[start : start + batch_size]
        done = (lambda _i, _r: progress(1)) if progress is not None else None
        results.extend(sampler.presample_many(chunk, on_result=done))
    return results


def output_tags(result: PresampleResult, categories: Sequence[str] = CONTENT) -> list[str]:
    return [t for c in categories for t in result.tags.get(c)]


def caption_of(result: PresampleResult, given: str) -> str:
    """The long caption a run wrote, as its prompt shows it.

    The output templates show the user's text as the model expanded it and fall
    back to a newly generated caption (``spec/TIPO.md``); a run that left the
    text as typed (the baseline) is judged by the caption it generated instead.
    """
    expanded = result.extended.strip()
    if expanded and expanded != given.strip():
        return expanded
    return result.generated or result.extended


def new_caption_of(result: PresampleResult, shown: str) -> str:
    """A generated caption the prompt does not show (the plan's last step), if any."""
    generated = result.generated.strip()
    return generated if generated and generated != shown.strip() else ""


@dataclass
class Outcome:
    """Every run of one sampler, and the metrics computed from them."""

    name: str
    seconds: float = 0.0
    runs: int = 0
    failures: int = 0
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    """Per-run details (item, seed, outputs and per-run numbers) for the plots and
    ``samples.jsonl``."""


def evaluate_sampler(
    name: str,
    sampler: Sampler,
    tag_items: Sequence[TagItem],
    caption_items: Sequence[CaptionItem],
    *,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    is_known: Callable[[str], bool],
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
    embed: Callable[[Sequence[str]], Any] | None = None,
    tag_caption_items: Sequence[TagCaptionItem] = (),
    overrides: Mapping[str, Any] | None = None,
    is_seen: Callable[[str], bool] | None = None,
    hard_inputs: bool = False,
) -> Outcome:
    """Run every item with every seed and compute the metrics (see :func:`tag_metrics`,
    :func:`caption_metrics`, :func:`tag_caption_metrics`). ``embed`` maps texts to
    vectors; without it the embedding metrics are ``None``. ``overrides``: request
    fields set for every run (``EvalConfig.overrides``)."""
    outcome = Outcome(name)
    per_seed = len(seeds)

    def run(items: Sequence[Any]) -> list[list[PresampleResult | Exception]]:
        requests = [item.request(seed) for item in items for seed in seeds]
        if overrides:
            # model_copy marks them set: the model card's defaults do not replace them.
            requests = [r.model_copy(update=dict(overrides)) for r in requests]
        flat = run_requests(sampler, requests, batch_size=batch_size, progress=progress)
        outcome.runs += len(flat)
        outcome.failures += sum(isinstance(r, Exception) for r in flat)
        return [flat[i * per_seed : (i + 1) * per_seed] for i in range(len(items))]

    started = time.perf_counter()
    tag_groups, caption_groups = run(tag_items), run(caption_items)
    tag_caption_groups = run(tag_caption_items)
    hard_numbers: dict[str, float | int | None] = {}
    hard_samples: list[dict[str, Any]] = []
    if hard_inputs:
        hard = run_requests(sampler, hard_requests(seeds), batch_size=batch_size,
                            progress=progress)  # fmt: skip
        outcome.runs += len(hard)
        outcome.failures += sum(isinstance(r, Exception) for r in hard)
        hard_numbers, hard_samples = hard_input_metrics(hard, seeds)
    outcome.seconds = time.perf_counter() - started
    tag_numbers, tag_samples = tag_metrics(tag_items, tag_groups, seeds, is_known, is_seen)
    caption_numbers, caption_samples = caption_metrics(caption_items, caption_groups, seeds, embed)
    from_tags, from_tags_samples = tag_caption_metrics(
        tag_caption_items, tag_caption_groups, seeds, embed
    )
    outcome.metrics = {
        **tag_numbers,
        **caption_numbers,
        **from_tags,
        **hard_numbers,
        "runs": outcome.runs,
        "failures": outcome.failures,
        "seconds_per_run": outcome.seconds / outcome.runs if outcome.runs else None,
    }
    outcome.samples = tag_samples + caption_samples + from_tags_samples + hard_samples
    return outcome


def tag_metrics(
    items: Sequence[TagItem],
    groups: Sequence[Sequence[PresampleResult | Exception]],
    seeds: Sequence[int],
    is_known: Callable[[str], bool],
    is_seen: Callable[[str], bool] | None = None,
) -> tuple[dict[str, float | int | None], list[dict[str, Any]]]:
    """Tag metrics over every (item, seed) run; failed runs count as misses.

    ``is_seen``: whether a training prompt holds a tag. A real tag no prompt holds
    (``2 fuel 4 ammo 11 steel`` after ``1girl, dress``) is what a length filled
    at any price looks like; its share is a proxy for junk, not proof of it.
    """
    new_total = new_real = new_unseen = kept = given_total = 0
    recalls: list[float | None] = []
    precisions: list[float | None] = []
    hits: list[float] = []
    ratings: list[float] = []
    distinct: list[float | None] = []
    jaccard: list[float | None] = []
    repeated: list[float] = []
    invented: list[float] = []
    contradictory: list[float] = []
    samples: list[dict[str, Any]] = []
    for item, results in zip(items, groups, strict=True):
        given = item.given_tags()
        # A name category the request left empty; new_names "auto" adds none there.
        unasked = [c for c in CONDITIONS if not item.given.get(c)]
        outputs: list[frozenset[str]] = []
        for seed, result in zip(seeds, results, strict=True):
            if isinstance(result, Exception):
                recalls.append(0.0)
                hits.append(0.0)
                given_total += len(given)
                samples.append({"kind": "tag", "id": item.id, "seed": seed, "error": str(result)})
                continue
            line = output_tags(result, TAG_LINE)
            everything = output_tags(result)
            new = m.new_tags(line, given)
            new_total += len(new)
            new_real += m.real_tag_count(new, is_known)
            if is_seen is not None:
                new_unseen += sum(1 for t in new if not is_seen(t))
            recall = m.continuation_recall(line, item.held_out)
            recalls.append(recall)
            precision = m.continuation_precision(new, item.held_out)
            precisions.append(precision)
            hit = tag_length_hit(len(line), item.length)
            hits.append(float(hit))
            got, wanted = m.preserved(everything, given)
            kept += got
            given_total += wanted
            respected = m.rating_respected(everything, item.rating, infer_rating)
            if respected is not None:
                ratings.append(float(respected))
            outputs.append(frozenset(m.tag_key(t) for t in new))
            repeated.append(float(m.repeats(everything)))
            contradictory.append(float(bool(m.contradicting(new, line))))
            names = [t for c in unasked for t in result.tags.get(c)]
            invented.append(float(bool(names)))
            samples.append({
                "kind": "tag", "id": item.id, "seed": seed, "length": item.length.value,
                "rating": item.rating, "given": given, "held_out": item.held_out,
                "new": new, "tag_count": len(line), "length_hit": hit, "recall": recall,
                "precision": precision, "invented_names": names,
            })  # fmt: skip
        distinct.append(m.distinct_share(outputs) if len(outputs) == len(seeds) else None)
        jaccard.append(m.mean_pairwise_jaccard(outputs))
    numbers: dict[str, float | int | None] = {
        "tag_items": len(items),
        "real_tag_share": m.share(new_real, new_total),
        "new_tags_per_run": m.share(new_total, len(recalls)),
        "tag_recall": m.mean(recalls),
        "tag_precision": m.mean(precisions),
        "tag_length_hit": m.mean(hits),
        "input_tags_preserved": m.share(kept, given_total),
        "rating_respected": m.mean(ratings),
        "rating_checked_runs": len(ratings),
        "tag_distinct_share": m.mean(distinct),
        "tag_jaccard_distance": m.mean(jaccard),
        "repeated_tag_runs": m.mean(repeated),
        "invented_name_runs": m.mean(invented),
        "contradiction_runs": m.mean(contradictory),
        "unseen_tag_share": m.share(new_unseen, new_total) if is_seen is not None else None,
    }
    return numbers, samples


def caption_metrics(
    items: Sequence[CaptionItem],
    groups: Sequence[Sequence[PresampleResult | Exception]],
    seeds: Sequence[int],
    embed: Callable[[Sequence[str]], Any] | None,
) -> tuple[dict[str, float | int | None], list[dict[str, Any]]]:
    """Caption metrics over every (item, seed) run; failed runs count as misses."""
    hits: list[float] = []
    distinct: list[float | None] = []
    jaccard: list[float | None] = []
    samples: list[dict[str, Any]] = []
    written: list[tuple[int, str]] = []  # (item index, caption) of runs that wrote one
    unshown: list[tuple[int, str]] = []  # (item index, generated caption the prompt hides)
    for index, (item, results) in enumerate(zip(items, groups, strict=True)):
        texts: list[str] = []
        for seed, result in zip(seeds, results, strict=True):
            if isinstance(result, Exception):
                hits.append(0.0)
                samples.append({"kind": "caption", "id": item.id, "seed": seed,
                                "error": str(result)})  # fmt: skip
                continue
            caption = caption_of(result, item.short)
            hit = nl_length_hit(caption, item.length)
            hits.append(float(hit))
            texts.append(caption)
            if caption:
                written.append((index, caption))
            if new_caption := new_caption_of(result, caption):
                unshown.append((index, new_caption))
            samples.append({
                "kind": "caption", "id": item.id, "seed": seed, "length": item.length.value,
                "input": item.short, "reference": item.long, "caption": caption,
                "sentences": sentence_count(caption), "length_hit": hit,
                **({"new_caption": new_caption} if new_caption else {}),
            })  # fmt: skip
        distinct.append(m.distinct_share(texts) if len(texts) == len(seeds) else None)
        jaccard.append(m.mean_pairwise_jaccard([m.words(t) for t in texts]))
    numbers: dict[str, float | int | None] = {
        "caption_items": len(items),
        "nl_length_hit": m.mean(hits),
        "caption_written": m.share(len(written), len(hits)),
        "caption_distinct_share": m.mean(distinct),
        "caption_jaccard_distance": m.mean(jaccard),
        "caption_similarity": None,
        "new_caption_similarity": None,
        "reference_similarity": None,
        "caption_frechet": None,
    }
    if embed is not None and written and items:
        inputs = embed([item.short for item in items])
        references = embed([item.long for item in items])
        generated, similarity = _similarity_by_run(embed, written, inputs)
        numbers["caption_similarity"] = float(similarity.mean())
        numbers["reference_similarity"] = float(m.cosine_similarities(references, inputs).mean())
        if unshown:
            _, extra_similarity = _similarity_by_run(embed, unshown, inputs)
            numbers["new_caption_similarity"] = float(extra_similarity.mean())
        if len(written) >= 2 and len(items) >= 2:
            # Without scipy (the eval extra) it stays unmeasured.
            with contextlib.suppress(ImportError):
                numbers["caption_frechet"] = m.frechet_distance(generated, references)
        by_run = iter(similarity.tolist())
        for sample in samples:
            if sample.get("caption"):
                sample["similarity"] = next(by_run)
    return numbers, samples


def _similarity_by_run(
    embed: Callable[[Sequence[str]], Any], written: Sequence[tuple[int, str]], targets: Any
) -> tuple[Any, Any]:
    """Embeddings of the written ``(item index, caption)`` runs and each one's cosine
    similarity to its item's row of ``targets``."""
    import numpy as np

    vectors = embed([caption for _, caption in written])
    rows = np.array([index for index, _ in written])
    return vectors, m.cosine_similarities(vectors, targets[rows])


def tag_caption_metrics(
    items: Sequence[TagCaptionItem],
    groups: Sequence[Sequence[PresampleResult | Exception]],
    seeds: Sequence[int],
    embed: Callable[[Sequence[str]], Any] | None,
) -> tuple[dict[str, float | int | None], list[dict[str, Any]]]:
    """How close the caption written from tags is to the record's real caption."""
    samples: list[dict[str, Any]] = []
    written: list[tuple[int, str]] = []
    people: list[bool] = []
    conflicts: list[bool] = []
    runs = 0
    for index, (item, results) in enumerate(zip(items, groups, strict=True)):
        for seed, result in zip(seeds, results, strict=True):
            runs += 1
            if isinstance(result, Exception):
                samples.append({"kind": "tag_caption", "id": item.id, "seed": seed,
                                "error": str(result)})  # fmt: skip
                continue
            caption = result.generated.strip()
            tags = [t for c in TAG_LINE for t in item.tags.get(c, [])]
            sample = {"kind": "tag_caption", "id": item.id, "seed": seed, "tags": tags,
                      "reference": item.long, "caption": caption}  # fmt: skip
            if caption:
                written.append((index, caption))
                if (named := names_people(caption, tags)) is not None:
                    sample["names_people"] = named
                    people.append(named)
                sample["conflicts"] = caption_conflicts(caption, tags)
                conflicts.append(sample["conflicts"] > 0)
            samples.append(sample)
    numbers: dict[str, float | int | None] = {
        "tag_caption_items": len(items),
        "tag_caption_written": m.share(len(written), runs),
        "tag_caption_similarity": None,
        "tag_caption_names_people": m.share(sum(people), len(people)),
        "tag_caption_conflicts": m.share(sum(conflicts), len(conflicts)),
    }
    if embed is not None and written:
        references = embed([item.long for item in items])
        _, similarity = _similarity_by_run(embed, written, references)
        numbers["tag_caption_similarity"] = float(similarity.mean())
        by_run = iter(similarity.tolist())
        for sample in samples:
            if sample.get("caption"):
                sample["similarity"] = next(by_run)
    return numbers, samples


def items_summary(tag_items: Sequence[TagItem], caption_items: Sequence[CaptionItem]) -> dict:
    return {
        "tag_items": len(tag_items),
        "caption_items": len(caption_items),
        "tag_lengths": _count(i.length.value for i in tag_items),
        "caption_lengths": _count(i.length.value for i in caption_items),
        "ratings": _count(i.rating for i in tag_items),
    }


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items()))


def new_tag_counts(
    items: Sequence[TagItem],
    seeds: Sequence[int],
    samples: Sequence[dict[str, Any]],
    update: dict[str, Any],
) -> dict[tuple, int]:
    """The new tag-line tags a sampler added in each tag run, by the run's request
    (``baseline.request_key``), for baselines that add as many (``PromptDB.matched``).
    ``samples``: the sampler's, one per (item, seed) in order, as ``tag_metrics`` makes."""
    from .baseline import request_key

    runs = [(item, seed) for item in items for seed in seeds]
    tag_samples = [s for s in samples if s["kind"] == "tag"]
    return {
        request_key(item.request(seed).model_copy(update=update)): len(sample["new"])
        for (item, seed), sample in zip(runs, tag_samples, strict=True)
        if "new" in sample
    }


# --------------------------------------------------------------------------- the command


@dataclass
class EvalConfig:
    data_dir: Path
    out_dir: Path
    limit: int = 200
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    batch_size: int = 8
    given: int | float = DEFAULT_GIVEN
    """Tags given per tag item: the first N, or a float below 1: that share at random."""
    tag_captions: int = 60
    caption_candidates: int | None = None
    """Overrides the requests' default (``PresampleRequest.caption_candidates``)."""
    tag_prior: float | None = None
    """Overrides the model card's ``tag_prior`` (``PresampleRequest.tag_prior``)."""
    tag_draw: float | None = None
    """Overrides the model card's ``tag_draw`` (``PresampleRequest.tag_draw``)."""
    embeddings: bool = True
    progress: bool = True

    def overrides(self) -> dict[str, Any]:
        """The request fields the evaluation sets for every run (left out: the defaults)."""
        fields = {"caption_candidates": self.caption_candidates, "tag_prior": self.tag_prior,
                  "tag_draw": self.tag_draw}  # fmt: skip
        return {k: v for k, v in fields.items() if v is not None}


def evaluate(
    config: EvalConfig,
    open_model: Callable[[], Any] | None,
    *,
    log: Callable[[str], None] = lambda _message: None,
) -> dict[str, Any]:
    """Evaluate the baseline and (unless ``open_model`` is ``None``) the model it opens;
    write ``metrics.json``, ``samples.jsonl``, ``report.md`` and the plots to
    ``config.out_dir``; return what ``metrics.json`` holds."""
    from ..tagdb import TagDatabase
    from ..training.records import read_records, split_path
    from .baseline import BACKOFF_TAGS, PromptDB
    from .report import write_report

    for split in ("train", "test"):
        if not split_path(config.data_dir, split).is_file():
            raise FileNotFoundError(
                f"{split_path(config.data_dir, split)} not found; run 'presample train prepare'"
            )
    # The model loads first, so a missing model fails before the slow work.
    if open_model is not None:
        log("loading the model")
    model = open_model() if open_model is not None else None
    log("reading the test split")
    tag_items, caption_items = select_items(
        read_records(split_path(config.data_dir, "test")), config.limit, config.given
    )
    tag_caption_items = select_tag_caption_items(
        read_records(split_path(config.data_dir, "test")), config.tag_captions
    )
    if not tag_items and not caption_items:
        raise ValueError(f"no usable test records in {config.data_dir}")
    log("indexing the training prompts for the baseline")
    baseline = PromptDB(read_records(split_path(config.data_dir, "train")))

    embed = None
    notes: list[str] = []
    if config.embeddings and (caption_items or tag_caption_items):
        from .embeddings import EmbeddingUnavailable, MiniLM

        try:
            embed = MiniLM().encode
        except EmbeddingUnavailable as exc:
            notes.append(f"caption embedding metrics skipped: {exc}")

    with TagDatabase() as tags:
        popular = tags.most_popular(BACKOFF_TAGS)
    runs = (len(tag_items) + len(caption_items) + len(tag_caption_items)) * len(config.seeds)
    samplers = 3 + (model is not None)
    hard_runs = len(HARD_INPUTS) * len(config.seeds) if model is not None else 0
    outcomes: dict[str, Outcome] = {}
    names: dict[str, str] = {}
    from tqdm import tqdm

    try:
        with TagDatabase() as db, tqdm(
            total=runs * samplers + hard_runs, unit="run", disable=not config.progress,
            file=sys.stderr,
        ) as bar:  # fmt: skip

            def measure(key: str, sampler: Any) -> Outcome:
                bar.set_description(key)
                source = getattr(sampler, "source", None)
                names[key] = getattr(source, "name", None) or getattr(sampler, "name", key)
                outcomes[key] = evaluate_sampler(
                    key, sampler, tag_items, caption_items,
                    seeds=config.seeds, is_known=db.is_known, batch_size=config.batch_size,
                    progress=bar.update, embed=embed, tag_caption_items=tag_caption_items,
                    overrides=config.overrides(), is_seen=baseline.known,
                    hard_inputs=key == "model",
                )  # fmt: skip
                return outcomes[key]

            # The model runs first: the frequency baselines then add as many new tags
            # to each request as it did, so their recall compares choices, not counts.
            counts: dict[tuple, int] = {}
            if model is not None:
                done = measure("model", model)
                counts = new_tag_counts(tag_items, config.seeds, done.samples, config.overrides())
            measure("baseline", baseline)
            measure("frequent", baseline.frequent_tags().matched(counts))
            measure("danbooru", baseline.danbooru_tags(popular).matched(counts))
    finally:
        if model is not None and hasattr(model, "close"):
            model.close()

    # The table's columns: baselines first, the model last.
    outcomes = {k: outcomes[k] for k in ("baseline", "frequent", "danbooru", "model")
                if k in outcomes}  # fmt: skip
    result: dict[str, Any] = {
        "config": {
            "data_dir": str(config.data_dir),
            "limit": config.limit,
            "seeds": list(config.seeds),
            "given_tags": config.given,
            "tag_captions": config.tag_captions,
            "caption_candidates": config.caption_candidates
            or PresampleRequest.model_fields["caption_candidates"].default,
            "tag_prior": "model card" if config.tag_prior is None else config.tag_prior,
            "tag_draw": "model card" if config.tag_draw is None else config.tag_draw,
            "batch_size": config.batch_size,
        },
        "items": {
            **items_summary(tag_items, caption_items),
            "tag_caption_items": len(tag_caption_items),
        },
        "samplers": {key: {"name": names[key], **o.metrics} for key, o in outcomes.items()},
        "notes": notes,
    }
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    with (out / "samples.jsonl").open("w", encoding="utf-8") as fh:
        for key, outcome in outcomes.items():
            for sample in outcome.samples:
                fh.write(json.dumps({"sampler": key, **sample}, ensure_ascii=False) + "\n")
    write_report(out, result, {key: o.samples for key, o in outcomes.items()})
    return result
