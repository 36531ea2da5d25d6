"""Build the tag co-occurrence table that the tag prior reads (``presample/tag_prior.py``).

From the training split's tag lines (special and general tags) it keeps, per
tag, how many records hold it at each allowed rating level, and its
``neighbours`` most frequent companions at each level with their counts at
every level. A record's characters and copyrights are kept the same way as
conditions only (``tags.name`` = 1): their companions are counted, but no pair
leads to a name, so the prior can say what ``hatsune miku`` wears and never
suggest a name. Pairs are counted
per level because the prompts are mostly explicit: counted over all of them,
``1boy`` was the seventh likeliest companion of ``1girl`` for a general request.
32 companions per tag cost nothing measurable against keeping them all (recall
of held-out tags by the prior alone, 600 test items: 17.5% with 32, 17.7% with
every pair) at an eighth of the size.

It also keeps the pairs of tags that keep apart: within every source of records
(Civitai prompts, COCO captions ...) where both are common enough that chance
alone would put them together ``APART_EXPECTED`` times or more, they meet at
most ``APART_RATIO`` of that (``kitchen`` and ``street``, ``sunset`` lines and
``simple background``, ``1girl`` and ``beard``). Counted per source because the
sources use different words: a COCO tag and a Danbooru tag rarely meet, which
says nothing about the picture.

A record derived twice from one source (a tag task and a tags+caption task)
counts once. A caption's tags leave out the caption words that mean something
else (``training/captions.py``: ``FALSE_FRIENDS``), also in records prepared
before that list existed.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import combinations
from pathlib import Path

from ..rating import LEVELS, rating_level
from ..tag_prior import SCHEMA_VERSION  # the reader's: one number for both sides
from ..tagdb import normalize_key
from .captions import FALSE_FRIENDS
from .records import Record

TAG_LINE = ("special", "general")
NAMES = ("characters", "copyrights")
NEIGHBOURS = 32
MIN_PAIR = 2
"""A pair seen once is noise, not structure."""
APART_EXPECTED = 8.0
"""Times chance would put two tags of a source together, at least, to judge them: at 8
a pair never seen is one in 3,000 by chance (Poisson), and `kitchen` and `outdoors`
are judged (10 left them out; 286 pairs then, 513 now, validation recall 24.8% both)."""
APART_RATIO = 0.05
"""Share of that chance count they meet at most, to keep apart."""
APART_MIN_TAG = 30
"""Records of a source that hold a tag, at least, before its pairs there are judged."""


def build_table(
    records: Iterable[Record],
    out: Path,
    *,
    neighbours: int = NEIGHBOURS,
    min_pair: int = MIN_PAIR,
    source: str = "",
) -> dict[str, int]:
    """Count ``records`` into a fresh SQLite file at ``out``; returns what it holds."""
    # Keys are (key, 1 for a name / 0 for a tag): a name may be spelt like a tag.
    documents = Counter[tuple[str, int]]()
    by_level = [Counter[tuple[str, int]]() for _ in range(LEVELS)]
    # Per level (records at that level or below), per tag or name, its companion tags.
    pairs: list[dict[tuple[str, int], Counter[str]]] = [
        defaultdict(Counter) for _ in range(LEVELS)
    ]
    totals = [0] * LEVELS
    seen: set[tuple[str, tuple[str, ...]]] = set()
    by_source: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    for record in records:
        dropped = FALSE_FRIENDS if record.src != "civitai" else frozenset()
        keys = tuple(
            dict.fromkeys(
                k
                for c in TAG_LINE
                for t in record.tags.get(c, [])
                if (k := normalize_key(t)) and k not in dropped
            )
        )
        if len(keys) < 2 or (record.id, keys) in seen:
            continue
        seen.add((record.id, keys))
        by_source[record.src].append(keys)
        names = dict.fromkeys(
            k for c in NAMES for t in record.tags.get(c, []) if (k := normalize_key(t))
        )
        level = rating_level((record.tags.get("rating") or ["general"])[0])
        for allowed in range(level, LEVELS):
            totals[allowed] += 1
        for key, is_name in [*((k, 0) for k in keys), *((k, 1) for k in names)]:
            documents[key, is_name] += 1
            for allowed in range(level, LEVELS):
                by_level[allowed][key, is_name] += 1
                companions = pairs[allowed][key, is_name]
                for other in keys:
                    if other != key or is_name:
                        companions[other] += 1

    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    ids = {key: i for i, key in enumerate(sorted(documents))}
    rows = 0
    with sqlite3.connect(out) as conn:
        conn.executescript(
            """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE tags (
                id INTEGER PRIMARY KEY, key TEXT NOT NULL, name INTEGER NOT NULL,
                n0 INTEGER NOT NULL, n1 INTEGER NOT NULL, n2 INTEGER NOT NULL,
                UNIQUE (key, name)
            );
            CREATE TABLE pairs (
                a INTEGER NOT NULL, b INTEGER NOT NULL,
                n0 INTEGER NOT NULL, n1 INTEGER NOT NULL, n2 INTEGER NOT NULL,
                PRIMARY KEY (a, b)
            ) WITHOUT ROWID;
            CREATE TABLE apart (a TEXT NOT NULL, b TEXT NOT NULL, PRIMARY KEY (a, b))
                WITHOUT ROWID;
            """
        )
        conn.executemany(
            "INSERT INTO tags VALUES (?, ?, ?, ?, ?, ?)",
            [(i, *k, *(by_level[lv][k] for lv in range(LEVELS))) for k, i in ids.items()],
        )
        for key in pairs[-1]:
            # The best companions at any level, with their counts at every level.
            chosen = dict.fromkeys(
                b
                for level_pairs in pairs
                for b, n in level_pairs.get(key, Counter()).most_common(neighbours)
                if n >= min_pair
            )
            kept = [(ids[key], ids[b, 0], *(pairs[lv][key][b] for lv in range(LEVELS)))
                    for b in chosen]  # fmt: skip
            conn.executemany("INSERT INTO pairs VALUES (?, ?, ?, ?, ?)", kept)
            rows += len(kept)
        kept_apart = apart_pairs(by_source)
        conn.executemany("INSERT INTO apart VALUES (?, ?)", kept_apart)
        meta = {
            "schema": SCHEMA_VERSION,
            "source": source,
            "neighbours": str(neighbours),
            **{f"records{lv}": str(totals[lv]) for lv in range(LEVELS)},
        }
        conn.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
    conn.close()
    with sqlite3.connect(out) as conn:
        conn.execute("VACUUM")
    conn.close()
    return {
        "records": totals[-1],
        "tags": sum(1 for _, is_name in ids if not is_name),
        "names": sum(1 for _, is_name in ids if is_name),
        "pairs": rows,
        "apart": len(kept_apart),
    }


def apart_pairs(
    by_source: dict[str, list[tuple[str, ...]]],
    *,
    expected: float = APART_EXPECTED,
    ratio: float = APART_RATIO,
    min_tag: int = APART_MIN_TAG,
) -> list[tuple[str, str]]:
    """The tag pairs ``(a, b)``, ``a < b``, that keep apart in every source whose
    records (each a tuple of tag keys) would put them together ``expected`` times
    by chance, in at least one source."""
    verdicts: dict[tuple[str, str], bool] = {}
    for _, lines in sorted(by_source.items()):
        count = Counter(k for keys in lines for k in keys)
        common = {k for k, n in count.items() if n >= min_tag}
        met = Counter[tuple[str, str]]()
        for keys in lines:
            met.update(combinations(sorted(common.intersection(keys)), 2))
        ordered = sorted(common)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                chance = count[a] * count[b] / len(lines)
                if chance >= expected:
                    apart = met[a, b] <= ratio * chance
                    verdicts[a, b] = verdicts.get((a, b), True) and apart
    return sorted(pair for pair, apart in verdicts.items() if apart)
