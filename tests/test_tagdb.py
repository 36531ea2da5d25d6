"""The shipped tag database answers for every row of the Danbooru table."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest

from presample.categories import DANBOORU_CATEGORY, FIXED_CATEGORY, Category
from presample.formatting import Target, escape
from presample.tagdb import TagDatabase, TagDatabaseError, display_name, normalize_key


def danbooru_rows(shared_data: Path) -> list[tuple[str, int, int, list[str]]]:
    with (shared_data / "tags" / "danbooru.csv").open(newline="", encoding="utf-8") as fh:
        return [
            (r[0], int(r[1]), int(r[2]), [a for a in r[3].split(",") if a] if len(r) > 3 else [])
            for r in csv.reader(fh)
        ]


def expected_category(name: str, danbooru_category: int) -> Category:
    shown = display_name(name)
    return FIXED_CATEGORY.get(shown) or DANBOORU_CATEGORY[danbooru_category]


def test_every_row_resolves_with_category_and_count(db: TagDatabase, shared_data: Path) -> None:
    rows = danbooru_rows(shared_data)
    assert len(rows) > 140_000
    infos = db.lookup_many([name for name, *_ in rows])
    for (name, category, count, _aliases), info in zip(rows, infos, strict=True):
        assert info is not None, name
        assert info.name == display_name(name)
        assert info.category is expected_category(name, category), name
        assert info.post_count == count
        assert not info.alias


@pytest.mark.parametrize(
    "spell",
    [
        lambda n: n.replace("_", " "),
        lambda n: n.upper(),
        lambda n: escape(n, Target.A1111),
        lambda n: f"  {escape(n.replace('_', ' '), Target.COMFYUI)} ",
    ],
    ids=["spaces", "upper", "escaped", "escaped-spaced"],
)
def test_every_row_round_trips_other_spellings(db: TagDatabase, shared_data: Path, spell) -> None:
    rows = danbooru_rows(shared_data)
    names = [name for name, *_ in rows]
    for name, info in zip(names, db.lookup_many([spell(n) for n in names]), strict=True):
        assert info is not None and info.name == display_name(name), name


def test_every_alias_resolves_to_the_tag_that_claims_it(db: TagDatabase, shared_data: Path) -> None:
    rows = danbooru_rows(shared_data)
    names = {normalize_key(name) for name, *_ in rows}
    claims: dict[str, tuple[int, str]] = {}
    for name, _category, count, aliases in rows:
        for alias in aliases:
            key = normalize_key(alias)
            if key and key not in names and (key not in claims or count > claims[key][0]):
                claims[key] = (count, name)
    assert len(claims) > 20_000
    keys = sorted(claims)
    for key, info in zip(keys, db.lookup_many(keys), strict=True):
        assert info is not None and info.alias, key
        assert info.name == display_name(claims[key][1]), key


@pytest.mark.parametrize(
    ("query", "name", "category"),
    [
        ("Hatsune_Miku", "hatsune miku", Category.CHARACTERS),
        ("ganyu \\(genshin impact\\)", "ganyu (genshin impact)", Category.CHARACTERS),
        ("1girls", "1girl", Category.SPECIAL),  # an alias leading to a special tag
        ("1girl", "1girl", Category.SPECIAL),
        ("boobs", "breasts", Category.GENERAL),
        ("O_O", "o_o", Category.GENERAL),  # emoticons keep their underscore
        ("^_^", "^_^", Category.GENERAL),
        ("Masterpiece", "masterpiece", Category.QUALITY),
        ("score_8_up", "score_8_up", Category.QUALITY),
        ("score 8 up", "score_8_up", Category.QUALITY),
        ("sensitive", "sensitive", Category.RATING),
        ("absurdres", "absurdres", Category.META),
        ("vocaloid", "vocaloid", Category.COPYRIGHTS),
        ("ｈａｔｓｕｎｅ＿ｍｉｋｕ", "hatsune miku", Category.CHARACTERS),  # fullwidth
    ],
)
def test_known_spellings(db: TagDatabase, query: str, name: str, category: Category) -> None:
    info = db.lookup(query)
    assert info is not None
    assert (info.name, info.category) == (name, category)


def test_unknown_and_empty(db: TagDatabase) -> None:
    assert db.lookup("definitely not a danbooru tag xyz") is None
    assert db.lookup("") is None
    assert db.lookup_many([]) == []
    assert db.canonical("My_Custom  Thing") == "My Custom Thing"


def test_categorize_orders_dedupes_and_canonicalises(db: TagDatabase) -> None:
    cats = db.categorize(
        [
            "1girl",
            "Hatsune_Miku",
            "long_hair",
            "long hair",
            "masterpiece",
            "vocaloid",
            "my own tag",
            "absurdres",
            "explicit",
            "ningen_mame",
        ]
    )
    assert cats[Category.SPECIAL] == ["1girl"]
    assert cats[Category.CHARACTERS] == ["hatsune miku"]
    assert cats[Category.GENERAL] == ["long hair", "my own tag"]
    assert cats[Category.QUALITY] == ["masterpiece"]
    assert cats[Category.COPYRIGHTS] == ["vocaloid"]
    assert cats[Category.META] == ["absurdres"]
    assert cats[Category.RATING] == ["explicit"]
    assert cats[Category.ARTIST] == ["ningen mame"]


def test_lookup_is_batched_and_handles_many(db: TagDatabase) -> None:
    queries = ["long hair"] * 40_000 + ["nope"] * 10  # beyond one statement's parameters
    infos = db.lookup_many(queries)
    assert infos[0] is not None and infos[-1] is None and len(infos) == len(queries)


def test_prefix_search_is_by_popularity(db: TagDatabase) -> None:
    rows = db.search_prefix("hatsune", 3)
    assert rows[0].name == "hatsune miku"
    counts = [r.post_count for r in rows]
    assert counts == sorted(counts, reverse=True)


def test_prefix_search_takes_any_character(db: TagDatabase) -> None:
    # The range scan's upper bound increments the last character: the last
    # code point and the one before the surrogates must not break it.
    for odd in ("\U0010ffff", "a\U0010ffff", "a\ud7ff", "\ud7ff"):
        assert db.search_prefix(odd) == [] and not db.has_prefix(odd)
    assert db.search_prefix("1gir")[0].name == "1girl"


def test_bad_database_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(TagDatabaseError, match="not found"):
        TagDatabase(tmp_path / "missing.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(TagDatabaseError, match="not a presample tag database"):
        TagDatabase(junk)
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE info (key TEXT, value TEXT)")
    conn.execute("INSERT INTO info VALUES ('schema_version', '0')")
    conn.commit()
    conn.close()
    with pytest.raises(TagDatabaseError, match="schema version"):
        TagDatabase(other)


def test_shipped_database_is_compact_and_records_provenance(db: TagDatabase) -> None:
    info = db.info()
    assert info["source"] == "danbooru.csv"
    assert int(info["tags"]) > 140_000
    assert db.path.stat().st_size < 12_000_000
