"""The evaluation report: ``report.md`` with a table of every metric, the issue's
targets checked with numbers, and a few matplotlib PNGs (matplotlib is imported
only here, and only when the report is written; without it the report says the
plots were skipped)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import install_hint

# (key, label, how to show it); shares are shown as percentages.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("real_tag_share", "new tags that are real tags", "%"),
    ("new_tags_per_run", "new tags per run", "f1"),
    ("tag_recall", "recall of held-out continuation tags", "%"),
    ("tag_precision", "precision: new tags among the held-out tags", "%"),
    ("unseen_tag_share", "new tags no training prompt holds (junk proxy)", "%"),
    ("tag_length_hit", "tag count within the requested length", "%"),
    ("input_tags_preserved", "input tags preserved", "%"),
    ("rating_respected", "no explicit tags for a non-explicit request", "%"),
    ("tag_distinct_share", "distinct tag outputs across seeds", "%"),
    ("tag_jaccard_distance", "tag Jaccard distance across seeds", "f3"),
    ("repeated_tag_runs", "runs with a tag twice in the result", "%"),
    ("invented_name_runs", "runs that added a name of a kind the request gave none of", "%"),
    ("contradiction_runs", "runs that added a tag contradicting the line (day/night ...)", "%"),
    ("nl_length_hit", "sentence count within the requested length", "%"),
    ("caption_written", "runs that wrote a caption", "%"),
    ("caption_similarity", "caption similarity to the input (MiniLM cosine)", "f3"),
    ("new_caption_similarity", "similarity of a generated caption the prompt hides", "f3"),
    ("reference_similarity", "real long caption's similarity to the input", "f3"),
    ("caption_frechet", "Fréchet distance to real long captions (lower is better)", "f4"),
    ("caption_distinct_share", "distinct captions across seeds", "%"),
    ("tag_caption_written", "runs that wrote a caption from tags alone", "%"),
    ("tag_caption_similarity", "caption from tags: similarity to the real caption", "f3"),
    ("tag_caption_names_people", "caption from people-count tags names the people", "%"),
    ("tag_caption_conflicts", "caption from tags contradicts their hair or eyes", "%"),
    ("caption_jaccard_distance", "caption word Jaccard distance across seeds", "f3"),
    ("hard_kept", "hard inputs: the user's words come back", "%"),
    ("hard_no_names", "hard inputs: no name invented", "%"),
    ("hard_consistent", "hard inputs: no contradicting new tag", "%"),
    ("hard_no_repeats", "hard inputs: no tag twice", "%"),
    ("hard_answered", "hard inputs: answered with something new", "%"),
    ("failures", "failed runs", "d"),
    ("seconds_per_run", "seconds per run", "f3"),
)
SHARE_KEYS = (
    "real_tag_share", "tag_recall", "tag_precision", "tag_length_hit", "input_tags_preserved",
    "rating_respected", "nl_length_hit", "tag_distinct_share", "tag_caption_names_people",
    "tag_caption_conflicts", "repeated_tag_runs", "invented_name_runs", "contradiction_runs",
    "unseen_tag_share",
    "hard_kept", "hard_no_names", "hard_consistent", "hard_no_repeats", "hard_answered",
)  # fmt: skip
GROUPS = (("rating", "rating"), ("length", "requested tag length"))


def fmt(value: Any, how: str) -> str:
    if value is None:
        return "–"
    if how == "%":
        return f"{100 * value:.1f}%"
    if how == "d":
        return str(int(value))
    return f"{value:.{int(how[1:])}f}"


def metrics_table(samplers: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per metric, one column per sampler (``–``: not measured)."""
    names = list(samplers)
    columns = []
    for key in names:
        name = samplers[key].get("name")
        columns.append(f"{key} (`{name}`)" if name and name != key else key)
    lines = ["| metric | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(names)]
    for key, label, how in ROWS:
        cells = " | ".join(fmt(samplers[n].get(key), how) for n in names)
        lines.append(f"| {label} | {cells} |")
    return "\n".join(lines)


def target_checks(samplers: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, bool | None, str]]:
    """The issue's "done when" numbers for the model: (target, met?, the numbers)."""
    model = samplers.get("model")
    if model is None:
        return []
    checks: list[tuple[str, bool | None, str]] = []

    def versus(key: str, label: str, how: str, against: str = "baseline") -> None:
        mine, theirs = model.get(key), (samplers.get(against) or {}).get(key)
        met = None if mine is None or theirs is None else mine > theirs
        name = {"baseline": "the baseline", "frequent": "the frequent-tags baseline",
                "danbooru": "the Danbooru-frequency baseline"}[against]  # fmt: skip
        checks.append((f"beats {name} on {label}", met,
                       f"{fmt(mine, how)} vs {fmt(theirs, how)}"))  # fmt: skip

    def at_most(key: str, label: str, ceiling: float) -> None:
        value = model.get(key)
        met = None if value is None else value <= ceiling
        checks.append((f"{label} at most {100 * ceiling:.0f}%", met, fmt(value, "%")))

    def at_least(key: str, label: str, floor: float) -> None:
        value = model.get(key)
        met = None if value is None else value >= floor
        checks.append((f"{label} at least {100 * floor:.0f}%", met, fmt(value, "%")))

    versus("tag_recall", "tag recall", "%")
    versus("tag_recall", "tag recall", "%", against="frequent")
    versus("tag_precision", "tag precision", "%", against="frequent")
    versus("tag_recall", "tag recall", "%", against="danbooru")
    versus("tag_precision", "tag precision", "%", against="danbooru")
    versus("caption_similarity", "caption similarity", "f3")
    at_least("input_tags_preserved", "input tags preserved", 1.0)
    at_least("tag_length_hit", "tag length target hit", 0.9)
    at_least("nl_length_hit", "sentence length target hit", 0.9)
    at_least("real_tag_share", "new tags that are real tags", 0.95)
    at_most("repeated_tag_runs", "runs with a tag twice", 0.0)
    at_most("invented_name_runs", "runs with an invented name", 0.0)
    at_most("contradiction_runs", "runs with a contradictory new tag", 0.0)
    for key, label in (("hard_kept", "hard inputs: the user's words kept"),
                       ("hard_no_names", "hard inputs: no name invented"),
                       ("hard_consistent", "hard inputs: no contradiction")):  # fmt: skip
        at_least(key, label, 1.0)
    return checks


def breakdown_tables(samples: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """Recall and precision of new tags per rating and per requested length, one
    column per sampler (runs in brackets): where a sampler wins or loses."""
    from .metrics import mean

    names = [n for n, rows in samples.items() if any(r.get("kind") == "tag" for r in rows)]
    lines: list[str] = []
    for field, title in GROUPS:
        values = sorted({str(r.get(field)) for n in names for r in samples[n]
                         if r.get("kind") == "tag" and "error" not in r})  # fmt: skip
        if not values:
            continue
        header = f"| {title} | " + " | ".join(names) + " |"
        lines += [f"### By {title}: recall / precision (runs)", "", header,
                  "|---|" + "---:|" * len(names)]  # fmt: skip
        for value in values:
            cells = []
            for name in names:
                rows = [r for r in samples[name] if r.get("kind") == "tag"
                        and "error" not in r and str(r.get(field)) == value]  # fmt: skip
                recall = mean(r.get("recall") for r in rows)
                precision = mean(r.get("precision") for r in rows)
                cells.append(f"{fmt(recall, '%')} / {fmt(precision, '%')} ({len(rows)})")
            lines.append(f"| {value} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def given_phrase(given: int | float) -> str:
    if isinstance(given, float):
        return f"a random {given:.0%} of the tag-line tags given"
    return f"the first {given} tag-line tags given"


def write_report(
    out: Path,
    result: Mapping[str, Any],
    samples: Mapping[str, Sequence[Mapping[str, Any]]],
) -> Path:
    """Write ``report.md`` (and the PNGs it shows) into ``out``; returns its path."""
    samplers = result["samplers"]
    config, items = result["config"], result["items"]
    plots, plot_note = write_plots(out, samplers, samples)
    lines = [
        "# presample evaluation",
        "",
        f"Held-out test split of `{config['data_dir']}`: {items['tag_items']} tag items "
        f"({given_phrase(config['given_tags'])}, the rest held out) and "
        f"{items['caption_items']} caption items (the short caption given, the long one "
        f"held out), each run with seeds {', '.join(map(str, config['seeds']))}. "
        "The baseline retrieves training prompts sharing the input tags and samples their "
        "co-occurring tags (the TIPO paper's Prompt DB), and retrieves the training long "
        "caption sharing the most words with the input.",
        "",
        metrics_table(samplers),
        "",
    ]
    breakdown = breakdown_tables(samples)
    if breakdown:
        lines += ["## Tags by rating and by length", "", *breakdown]
    checks = target_checks(samplers)
    if checks:
        lines += ["## Targets", "", "| target | met | numbers |", "|---|---|---|"]
        for label, met, numbers in checks:
            lines.append(f"| {label} | {'–' if met is None else 'yes' if met else 'no'} "
                         f"| {numbers} |")  # fmt: skip
        lines.append("")
    lines += [
        "## Definitions",
        "",
        "- *new tags that are real tags*: new tag-line tags (not in the input) that the tag "
        "database knows, over all new tags of all runs.",
        "- *precision*: per run, the share of the new tags that are among the record's "
        "held-out tags; the mean over runs that added tags. The *frequent tags* baseline adds "
        "the training records' most frequent tags (allowed by the rating) that the input "
        "lacks, most frequent first, as many as the model added to the same request (with "
        "no model, as many as the Prompt-DB baseline); the *danbooru* one "
        "the same from Danbooru's own post counts (general tags whose names the rating "
        "allows).",
        "- *recall*: per run, the share of the record's held-out tags found in the output; "
        "the mean over runs.",
        "- *length hits*: the special + general tag count within TAG_MIN..TAG_MAX, and the "
        "sentence count within NL_MIN..NL_MAX (no maximum for very_long), of the requested "
        "length (the record's own length class).",
        "- *rating respected*: runs whose request is not explicit-rated with no tag that "
        "`presample.rating` calls explicit "
        f"({', '.join(str(s.get('rating_checked_runs', 0)) for s in samplers.values())} runs).",
        "- *no training prompt holds*: new tags that are real but appear in no training "
        "record (`2 fuel 4 ammo 11 steel` after `1girl, dress`): what filling a length at any "
        "price adds; a proxy, since a rare tag can be right.",
        "- *a tag twice*: runs whose result holds one tag twice in any spelling or "
        "category; *invented name*: runs that added an artist, character or copyright "
        "when the request gave none of that kind; *contradicting*: runs that added a tag "
        "`presample.contradictions` says cannot go with the line (day and night, solo and "
        "2boys ...).",
        "- *hard inputs*: ten inputs the training data does not resemble (empty, one tag, "
        "Japanese, Chinese, photo sentences, a 40-tag list, a paragraph; "
        "`presample/evaluation/hard_inputs.py`), run by the model with each seed: every "
        "comma-separated piece of the input is in the prompt, no artist, character or "
        "copyright is added, no new tag contradicts the result, no tag is there twice, and "
        "something is added (the two long inputs excepted).",
        "- *diversity*: per item over the seeds, distinct outputs / seeds and the mean pairwise "
        "Jaccard distance of the new tags (captions: of their words); the mean over items.",
        "- *caption similarity*: cosine of all-MiniLM-L6-v2 embeddings (mean pooling) of the "
        "written caption and the input short caption; the Fréchet distance compares Gaussians "
        "fitted to the written and the real long captions' embeddings. The written caption is "
        "the one the prompt shows: the input as the sampler expanded it, else the caption it "
        "generated (the output templates' rule). A model also generates a new caption in the "
        "plan's last step, which the default template hides; its similarity is the row below. "
        "An expanded text keeps the user's words first, as the real long captions do; a "
        "retrieved caption (the baseline) does not, so compare both with the real long "
        "caption's own similarity and the Fréchet distance.",
        "- *caption from tags*: records with tags and a real caption (half Civitai prompts, "
        "half the caption sets, whose tags are words of the caption): all tags are given, no "
        "tag is added, and the caption written from them (tag_to_long) is compared with the "
        "real one (MiniLM cosine). *Names the people*: of those captions whose tags count "
        "people (1girl, 2boys ...), the share that says girl, woman, man ... "
        "(`presample.caption_fit.names_people`). *Contradicts their hair or eyes*: of the "
        "captions written, the share that gives a hair colour, eye colour or hair length "
        "other than the tags give (`presample.caption_fit.caption_conflicts`).",
        "",
        "Failed runs count as misses for recall and the length hits.",
        "",
    ]
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{title}]({name})" for name, title in plots]
        lines.append("")
    for note in [*result.get("notes", []), *([plot_note] if plot_note else [])]:
        lines.append(f"Note: {note}")
    path = out / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path


def write_plots(
    out: Path,
    samplers: Mapping[str, Mapping[str, Any]],
    samples: Mapping[str, Sequence[Mapping[str, Any]]],
) -> tuple[list[tuple[str, str]], str]:
    """The PNGs, as ``(file name, title)``, and a note when none could be drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], f"plots skipped: matplotlib is not installed ({install_hint('eval')})"
    names = list(samplers)
    written: list[tuple[str, str]] = []

    fig, ax = plt.subplots(figsize=(9, 4.5))
    keys = [k for k in SHARE_KEYS if any(samplers[n].get(k) is not None for n in names)]
    width = 0.8 / max(len(names), 1)
    for offset, name in enumerate(names):
        values = [100 * (samplers[name].get(k) or 0.0) for k in keys]
        ax.bar([i + offset * width for i in range(len(keys))], values, width, label=name)
    ax.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(keys))])
    ax.set_xticklabels([k.replace("_", " ") for k in keys], rotation=25, ha="right")
    ax.set_ylabel("%")
    ax.set_ylim(0, 118)  # room for the legend above the 100% bars
    ax.legend(loc="upper right", ncol=len(names))
    ax.set_title("Shares (higher is better)")
    fig.tight_layout()
    fig.savefig(out / "metrics.png", dpi=100)
    plt.close(fig)
    written.append(("metrics.png", "shares per sampler"))

    def histogram(field: str, kind: str, file: str, title: str, xlabel: str) -> None:
        series = {
            n: [s[field] for s in samples.get(n, ()) if s.get("kind") == kind
                and s.get(field) is not None]
            for n in names
        }  # fmt: skip
        if not any(series.values()):
            return
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, values in series.items():
            if values:
                ax.hist(values, bins=20, range=(0, 1), alpha=0.55, label=name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("runs")
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / file, dpi=100)
        plt.close(fig)
        written.append((file, title))

    histogram("recall", "tag", "recall.png", "Recall of held-out tags per run", "recall")
    histogram("similarity", "caption", "similarity.png",
              "Caption similarity to the input per run", "cosine similarity")  # fmt: skip

    counts = {
        n: [(s["length"], s["tag_count"]) for s in samples.get(n, ())
            if s.get("kind") == "tag" and "tag_count" in s]
        for n in names
    }  # fmt: skip
    if any(counts.values()):
        from ..tipo import TAG_MAX, TAG_MIN, Length

        order = [length.value for length in Length]
        fig, ax = plt.subplots(figsize=(6, 4))
        for i, length in enumerate(Length):
            ax.plot([i - 0.4, i + 0.4], [TAG_MIN[length]] * 2, color="grey", lw=1)
            ax.plot([i - 0.4, i + 0.4], [TAG_MAX[length]] * 2, color="grey", lw=1)
        for offset, name in enumerate(names):
            points = counts[name]
            shift = (offset - (len(names) - 1) / 2) * 0.2
            ax.scatter([order.index(length) + shift for length, _ in points],
                       [count for _, count in points], s=8, alpha=0.5, label=name)  # fmt: skip
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels(order)
        ax.set_xlabel("requested tag length (grey: TAG_MIN..TAG_MAX)")
        ax.set_ylabel("tag-line tags in the output")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "tag_counts.png", dpi=100)
        plt.close(fig)
        written.append(("tag_counts.png", "Tag counts against the requested length"))
    return written, ""
