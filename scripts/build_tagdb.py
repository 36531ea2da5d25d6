"""Build the shipped tag database from Danbooru's tag table.

    python scripts/build_tagdb.py [--csv ../shared/data/tags/danbooru.csv]
                                  [--out src/presample/data/tags.sqlite]

Input rows are ``name,category,post_count,"alias1,alias2,..."`` without a header.
Every name and alias is stored under its normalised key (see
``presample.tagdb.normalize_key``). When two tags claim the same key, a tag's own
name beats an alias, then the more popular tag wins, so lookups are
deterministic.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import sqlite3
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from presample.tagdb import SCHEMA_VERSION, literal_key, normalize_key  # noqa: E402

DEFAULT_CSV = ROOT.parent / "shared" / "data" / "tags" / "danbooru.csv"
DEFAULT_OUT = ROOT / "src" / "presample" / "data" / "tags.sqlite"


def read_rows(csv_path: Path) -> list[tuple[str, int, int, list[str]]]:
    rows = []
    with csv_path.open(newline="", encoding="utf-8") as fh:
        for line_no, row in enumerate(csv.reader(fh), start=1):
            if len(row) < 3:
                raise SystemExit(f"{csv_path}:{line_no}: expected at least 3 columns, got {row!r}")
            name, category, count = row[0].strip(), int(row[1]), int(row[2])
            aliases = [a.strip() for a in (row[3] if len(row) > 3 else "").split(",") if a.strip()]
            if name:
                rows.append((name, category, count, aliases))
    # Ids follow popularity so the id doubles as a popularity rank.
    rows.sort(key=lambda r: (-r[2], r[0]))
    return rows


def build(csv_path: Path, out: Path) -> dict[str, str]:
    rows = read_rows(csv_path)
    # key -> (is_alias, -post_count, tag_id): min() picks names before aliases,
    # then the most popular tag.
    best: dict[str, tuple[int, int, int]] = {}
    for tag_id, (name, _cat, count, aliases) in enumerate(rows):
        # A name is also found as typed raw (``\(^o^)/`` unescaped by A1111 rules).
        spellings = [(0, literal_key(name)), (0, normalize_key(name))]
        spellings += [(1, normalize_key(a)) for a in aliases]
        for alias_flag, key in spellings:
            if not key:
                continue
            cand = (alias_flag, -count, tag_id)
            if key not in best or cand < best[key]:
                best[key] = cand

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    conn.executescript(
        """
        PRAGMA page_size = 4096;
        CREATE TABLE info (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE tag (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            category INTEGER NOT NULL,
            post_count INTEGER NOT NULL
        );
        CREATE TABLE lookup (
            key TEXT PRIMARY KEY,
            tag_id INTEGER NOT NULL,
            alias INTEGER NOT NULL
        ) WITHOUT ROWID;
        """
    )
    conn.executemany(
        "INSERT INTO tag VALUES (?, ?, ?, ?)",
        ((i, name, cat, count) for i, (name, cat, count, _a) in enumerate(rows)),
    )
    conn.executemany(
        "INSERT INTO lookup VALUES (?, ?, ?)",
        sorted((key, tag_id, alias) for key, (alias, _c, tag_id) in best.items()),
    )
    info = {
        "schema_version": SCHEMA_VERSION,
        "source": csv_path.name,
        "source_sha256": hashlib.sha256(csv_path.read_bytes()).hexdigest(),
        "tags": str(len(rows)),
        "keys": str(len(best)),
        "built": dt.date.today().isoformat(),
    }
    conn.executemany("INSERT INTO info VALUES (?, ?)", info.items())
    conn.commit()
    conn.execute("VACUUM")
    conn.close()
    tmp.replace(out)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="Danbooru tag table")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="SQLite file to write")
    args = parser.parse_args(argv)
    if not args.csv.is_file():
        print(f"error: {args.csv} not found", file=sys.stderr)
        return 2
    info = build(args.csv, args.out)
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size / 1e6:.1f} MB): {info['tags']} tags, {info['keys']} keys")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
