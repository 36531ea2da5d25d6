"""Training data preparation: real prompts and captions in ``../shared/data`` -> clean records.

``prepare(data_dir, out_dir)`` is the one reproducible command behind
``presample train prepare``: the same inputs give byte-identical outputs.

- Civitai prompts become tag records: A1111 syntax (weights, LoRAs, BREAK) is
  dropped, tags are canonicalised and categorised through the tag database,
  natural-language fragments become a caption, a rating is inferred; junk
  (few real tags and no sentence, mostly unknown tags, duplicates) is dropped.
- ImageInWords, DPG-Bench, ELLA, COCO and CC3M become caption records: a long
  caption with a short version (its first sentence, or its head noun phrase)
  and the Danbooru tags its words spell, so caption tasks see tags too.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..categories import Category
from ..rating import infer_rating
from ..syntax import PromptSyntaxError, parse_prompt
from ..tagdb import TagDatabase
from ..tipo import TAG_MAX, Length
from .captions import caption_people, caption_tags, coarse_summary, first_sentence, sentences, tidy
from .records import SPLITS, Record, split_of, split_path, write_records


def project_root() -> Path:
    """The repository root for a source checkout, else the working directory."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


def default_data_dir() -> Path:
    """``$PRESAMPLE_SHARED_DATA``, else ``../shared/data`` next to the repository."""
    env = os.environ.get("PRESAMPLE_SHARED_DATA")
    return Path(env) if env else project_root().parent / "shared" / "data"


def default_out_dir() -> Path:
    return project_root() / "artifacts" / "data"


# Junk filters for prompts (see module docstring).
MIN_REAL_TAGS = 4
MAX_UNKNOWN_SHARE = 0.5
MAX_TAGS = TAG_MAX[Length.VERY_LONG]
MAX_CAPTION_CHARS = 1200
# A caption needs this many tags spelled out before we treat it as a tag record.
MIN_CAPTION_TAGS = 3
# Fragments this long read as a description (``long:``), shorter ones as ``short:``.
LONG_CAPTION_WORDS = 30


@dataclass(slots=True)
class SourceCounts:
    read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)


# --------------------------------------------------------------------------- prompts


def prompt_record(
    record_id: str, prompt: str, db: TagDatabase, counts: SourceCounts
) -> Record | None:
    """One Civitai prompt as a clean tag record, or ``None`` (reason counted)."""
    try:
        parsed = parse_prompt(prompt, is_known_tag=db.is_known)
    except PromptSyntaxError:
        counts.dropped["syntax error"] += 1
        return None
    raw_tags = [t for t in parsed.tags if t.strip()]
    infos = db.lookup_many(raw_tags)
    known = [tag for tag, info in zip(raw_tags, infos, strict=True) if info is not None]
    caption = tidy(", ".join(tidy(t) for t in parsed.texts if t.strip()))[:MAX_CAPTION_CHARS]
    if raw_tags and len(known) < (1 - MAX_UNKNOWN_SHARE) * len(raw_tags):
        counts.dropped["mostly unknown tags"] += 1
        return None
    # Unknown tags are dropped: a model that learns them writes tags that exist nowhere.
    tags = {str(k): v for k, v in db.categorize(known).items()}
    given_rating = set(tags.pop(str(Category.RATING), []))
    real = len(tags["special"]) + len(tags["general"])
    if real < MIN_REAL_TAGS and not sentences(caption):
        counts.dropped["too few tags"] += 1
        return None
    tags["general"] = tags["general"][:MAX_TAGS]
    everything = [t for values in tags.values() for t in values]
    rating = infer_rating(everything)
    if given_rating & {"nsfw", "explicit"}:
        rating = "explicit"
    tags["rating"] = [rating]
    short, long = _split_caption(caption, record_id, has_tags=real > 0)
    return Record(record_id, "civitai", tags, short=short, long=long)


def _split_caption(caption: str, record_id: str, *, has_tags: bool) -> tuple[str, str]:
    """Where a prompt's own words go: ``long:`` (a description) or ``short:``.

    Long fragments are descriptions. A short one beside tags goes to ``long:``
    for half of the records (a stable hash of the id): otherwise almost no
    record pairs anime tags with a caption, and a model asked to caption a tag
    prompt (tag_to_long) writes the photo descriptions of the caption sets.
    """
    if len(caption.split()) >= LONG_CAPTION_WORDS or len(sentences(caption)) >= 2:
        return "", caption
    if has_tags and caption:
        salted = hashlib.sha1(f"caption-field:{record_id}".encode()).digest()
        if salted[0] % 2 == 0:
            return "", caption
    return caption, ""


def civitai_records(path: Path, db: TagDatabase, counts: SourceCounts) -> Iterator[Record]:
    seen: set[tuple] = set()
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line_no, line in enumerate(fh):
            if not line.strip():
                continue
            counts.read += 1
            record = prompt_record(f"civitai:{line_no}", json.loads(line)["prompt"], db, counts)
            if record is None:
                continue
            key = (
                frozenset(t for v in record.tags.values() for t in v),
                (record.short or record.long).lower(),
            )
            if key in seen:
                counts.dropped["duplicate"] += 1
                continue
            seen.add(key)
            counts.kept += 1
            yield record


# --------------------------------------------------------------------------- captions


def caption_record(record_id: str, src: str, text: str, db: TagDatabase, short: str = "") -> Record:
    """A long caption with its short versions and the tags it spells out."""
    long = tidy(text)[:MAX_CAPTION_CHARS]
    coarse = coarse_summary(long)
    if not short:
        short = first_sentence(long) if len(sentences(long)) >= 2 else coarse
    people = caption_people(long)
    special = [t for t in people if t != "solo"]
    general = [t for t in people if t == "solo"] + caption_tags(long, db.lookup_many)
    tags: dict[str, list[str]] = {}
    if len(special) + len(general) >= MIN_CAPTION_TAGS:
        tags = {"general": general[:MAX_TAGS], "rating": [infer_rating(general)]}
        if special:
            tags = {"special": special, **tags}
    return Record(
        record_id, src, tags, short=tidy(short), long=long, coarse="" if coarse == short else coarse
    )


def iiw_records(folder: Path, db: TagDatabase, counts: dict[str, SourceCounts]) -> Iterator[Record]:
    """ImageInWords: human and model descriptions; IIW-400 objects give label -> description."""
    for name, src in (("IIW-400", "iiw"), ("CM_3600", "iiw-cm3600"), ("LocNar_Eval", "iiw-locnar")):
        path = folder / f"{name}.jsonl"
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                row = json.loads(line)
                record_id = f"iiw:{row['image/key']}"
                for key in ("IIW", "IIW-P5B"):
                    if row.get(key):
                        counts[src].read += 1
                        counts[src].kept += 1
                        yield caption_record(record_id, src, row[key], db)
                for obj in row.get("objects") or ():
                    label, description = tidy(obj.get("label", "")), obj.get("description", "")
                    counts["iiw-objects"].read += 1
                    if not label or not description.strip():
                        counts["iiw-objects"].dropped["empty"] += 1
                        continue
                    counts["iiw-objects"].kept += 1
                    yield caption_record(record_id, "iiw-objects", description, db, short=label)


def dpg_records(path: Path, db: TagDatabase, counts: SourceCounts) -> Iterator[Record]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                counts.read += 1
                counts.kept += 1
                yield caption_record(f"dpg:{row['id']}", "dpg", row["prompt"], db)


def ella_records(path: Path, db: TagDatabase, counts: SourceCounts) -> Iterator[Record]:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for index in range(0, len(lines) - 1, 2):
        counts.read += 1
        counts.kept += 1
        yield caption_record(f"ella:{index // 2}", "ella", lines[index + 1], db, short=lines[index])


def coco_records(path: Path, db: TagDatabase, counts: SourceCounts) -> Iterator[Record]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    by_image: dict[int, list[str]] = defaultdict(list)
    for annotation in data["annotations"]:
        by_image[annotation["image_id"]].append(annotation["caption"])
    for image_id in sorted(by_image):
        for caption in by_image[image_id]:
            counts.read += 1
            text = tidy(caption)
            if len(text.split()) < 4:
                counts.dropped["too short"] += 1
                continue
            counts.kept += 1
            yield caption_record(f"coco:{image_id}", "coco", _sentence_case(text), db)


def cc3m_records(path: Path, db: TagDatabase, counts: SourceCounts) -> Iterator[Record]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line_no, row in enumerate(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)):
            if not row:
                continue
            counts.read += 1
            text = tidy(row[0])
            if len(text.split()) < 4:
                counts.dropped["too short"] += 1
                continue
            counts.kept += 1
            yield caption_record(f"cc3m:{line_no}", "cc3m", _sentence_case(text), db)


def _sentence_case(text: str) -> str:
    """COCO and CC3M write lower case without a final stop; the other sources do not."""
    text = text[:1].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


# --------------------------------------------------------------------------- the command


def prepare(
    data_dir: Path,
    out_dir: Path,
    *,
    db: TagDatabase | None = None,
    limit: int | None = None,
) -> dict:
    """Build ``{train,validation,test}.jsonl.gz`` and ``counts.json`` in ``out_dir``.

    ``limit`` caps the records read per source (tests). Returns the counts.
    """
    missing = [p for p in _inputs(data_dir) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]} not found; is {data_dir} the shared data folder?")
    own_db = db is None
    database = db if db is not None else TagDatabase()
    try:
        counts: dict[str, SourceCounts] = defaultdict(SourceCounts)
        captions = data_dir / "captions"
        streams = [
            civitai_records(
                data_dir / "prompts" / "civitai_prompts.jsonl.gz", database, counts["civitai"]
            ),
            iiw_records(captions, database, counts),
            dpg_records(captions / "dpg_bench_prompts.jsonl", database, counts["dpg"]),
            ella_records(captions / "ella_prompts_pairs.txt", database, counts["ella"]),
            coco_records(captions / "coco_captions_val2017.json.gz", database, counts["coco"]),
            cc3m_records(captions / "cc3m_validation.tsv.gz", database, counts["cc3m"]),
        ]
        by_split: dict[str, list[Record]] = {split: [] for split in SPLITS}
        per_split_src: dict[str, Counter] = {split: Counter() for split in SPLITS}
        for stream in streams:
            for index, record in enumerate(stream):
                if limit is not None and index >= limit:
                    break
                split = split_of(record.id)
                by_split[split].append(record)
                per_split_src[split][record.src] += 1
    finally:
        if own_db:
            database.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, records in by_split.items():
        write_records(split_path(out_dir, split), records)
    result = {
        "data_dir": str(data_dir),
        "sources": {
            src: {"read": c.read, "kept": c.kept, "dropped": dict(sorted(c.dropped.items()))}
            for src, c in sorted(counts.items())
        },
        "splits": {
            split: {"records": len(by_split[split]), "by_source": dict(sorted(c.items()))}
            for split, c in per_split_src.items()
        },
        "tasks": _task_support(by_split["train"]),
    }
    (out_dir / "counts.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def _inputs(data_dir: Path) -> list[Path]:
    captions = data_dir / "captions"
    return [
        data_dir / "prompts" / "civitai_prompts.jsonl.gz",
        *(captions / f"{name}.jsonl" for name in ("IIW-400", "CM_3600", "LocNar_Eval")),
        captions / "dpg_bench_prompts.jsonl",
        captions / "ella_prompts_pairs.txt",
        captions / "coco_captions_val2017.json.gz",
        captions / "cc3m_validation.tsv.gz",
    ]


def _task_support(records: list[Record]) -> dict[str, int]:
    """How many training records can feed each kind of sample."""
    support: Counter = Counter()
    for record in records:
        has_tags = bool(record.tags.get("general") or record.tags.get("special"))
        support["tags"] += has_tags
        support["short"] += bool(record.short)
        support["long"] += bool(record.long)
        support["tags+long"] += has_tags and bool(record.long)
        support["short+long"] += bool(record.short) and bool(record.long)
    return dict(support)
