"""The co-occurrence table and the prior it gives the tag line."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from presample.tag_prior import CooccurrenceTable, TagPrior, TagPriorError, default_table_path
from presample.training.cooccurrence import build_table
from presample.training.records import Record


def record(rid: str, tags: list[str], rating: str = "general", **other: list[str]) -> Record:
    return Record(rid, "civitai", {"general": tags, "rating": [rating], **other})


RECORDS = [
    record("a", ["1girl", "wings", "feathers", "sky"]),
    record("b", ["1girl", "wings", "feathers", "halo"]),
    record("c", ["1girl", "wings", "halo"]),
    record("c", ["1girl", "wings", "halo"]),  # the same source twice counts once
    record("d", ["1girl", "smile", "school uniform"]),
    record("e", ["1girl", "smile", "school uniform", "classroom"]),
    record("f", ["1girl", "smile", "solo"]),
    record("g", ["1girl", "solo", "nude"], rating="explicit"),
    record("h", ["1girl", "solo", "nude"], rating="explicit"),
    record("i", ["1girl", "solo", "wings"], characters=["hatsune miku"]),
    record("j", ["lonely"]),  # one tag: no pairs to count
]


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> CooccurrenceTable:
    path = tmp_path_factory.mktemp("prior") / "table.sqlite"
    counts = build_table(RECORDS, path, neighbours=4, min_pair=1)
    assert counts == {"records": 9, "tags": 10, "names": 1, "pairs": 38, "apart": 0}
    return CooccurrenceTable(path)


def test_the_table_counts_records_by_rating_level_and_names_only_as_conditions(
    table: CooccurrenceTable, tmp_path: Path
) -> None:
    assert table.records == (7, 7, 9)  # two explicit records only at the top level
    conn = sqlite3.connect(table.path)
    keys = {k for (k,) in conn.execute("SELECT key FROM tags WHERE name = 0")}
    assert "hatsune miku" not in keys and "lonely" not in keys
    names = {k for (k,) in conn.execute("SELECT key FROM tags WHERE name = 1")}
    assert names == {"hatsune miku"}
    # No pair leads to a name.
    assert not conn.execute(
        "SELECT 1 FROM pairs JOIN tags ON tags.id = pairs.b WHERE tags.name = 1"
    ).fetchall()
    assert conn.execute("SELECT n0, n2 FROM tags WHERE key = 'nude'").fetchone() == (0, 2)
    # Same records, same bytes.
    again = tmp_path / "again.sqlite"
    build_table(RECORDS, again, neighbours=4, min_pair=1)
    assert again.read_bytes() == table.path.read_bytes()


def test_tags_that_keep_apart_in_every_source_that_judges_them(tmp_path: Path) -> None:
    from presample.training.cooccurrence import apart_pairs

    # 80 photo captions: 40 of a kitchen, 40 of a street; by chance 20 would hold both.
    photos = [("kitchen", "table")] * 40 + [("street", "car")] * 40
    assert ("kitchen", "street") in apart_pairs({"photos": photos})
    assert ("kitchen", "table") not in apart_pairs({"photos": photos})
    # A source where they meet overrules; one where they are too rare to judge does not.
    prompts = [("kitchen", "street")] * 40 + [("cat", "sofa")] * 40
    assert ("kitchen", "street") not in apart_pairs({"photos": photos, "prompts": prompts})
    few = [("kitchen", "street")] * 3 + [("cat", "sofa")] * 77
    assert ("kitchen", "street") in apart_pairs({"photos": photos, "few": few})
    # In the table, either way round.
    records = [Record(f"p{i}", "coco", {"general": list(tags), "rating": ["general"]})
               for i, tags in enumerate(photos)]  # fmt: skip
    path = tmp_path / "apart.sqlite"
    assert build_table(records, path)["apart"] == 4  # each kitchen tag with each street one
    table = CooccurrenceTable(path)
    assert table.apart("street", ["kitchen", "cat"]) and table.apart("kitchen", {"street"})
    assert not table.apart("kitchen", ["table"]) and not table.apart("sofa", ["street"])


def test_weights_favour_companions_of_the_given_tags(table: CooccurrenceTable) -> None:
    weights = table.weights(["wings"], level=0)
    assert math.isclose(sum(weights.values()), 1.0)
    assert "wings" not in weights
    assert weights["feathers"] > weights["smile"]
    assert weights["halo"] > weights["school uniform"]
    school = table.weights(["school uniform"], level=0)
    assert school["smile"] > school["feathers"]


def test_a_named_character_conditions_the_prior_and_is_never_suggested(
    table: CooccurrenceTable,
) -> None:
    miku = table.weights([], level=0, names=["Hatsune_Miku"])
    assert max(miku, key=miku.__getitem__) in {"1girl", "solo", "wings"}
    assert {"solo", "wings"} <= set(miku) and "hatsune miku" not in miku
    # Beside a tag, the rare name weighs more than the tag everyone has.
    assert table.weights(["1girl"], level=0, names=["hatsune miku"])["wings"] > table.weights(
        ["1girl"], level=0
    )["wings"]
    assert table.weights([], level=0, names=["a character nobody drew"]) == {}
    assert table.likelihoods([], 0, ["solo", "smile"], names=["hatsune miku"]) == {"solo": 1.0}


def test_weights_respect_rating_and_exclusions(table: CooccurrenceTable) -> None:
    assert "nude" not in table.weights(["solo"], level=0)
    assert "nude" in table.weights(["solo"], level=2)
    # Pairs are counted per level: "solo" goes with "smile" in one of its two general
    # records, but in one of four once the explicit ones count.
    general, anything = table.weights(["solo"], level=0), table.weights(["solo"], level=2)
    assert general["smile"] > 1.5 * anything["smile"]
    kept = table.weights(["wings"], level=0, excluded=lambda key: key == "feathers")
    assert "feathers" not in kept and math.isclose(sum(kept.values()), 1.0)


def test_nothing_to_condition_on_gives_no_prior(table: CooccurrenceTable) -> None:
    assert table.weights([], level=0) == {}
    assert table.weights(["a tag nobody wrote"], level=0) == {}
    with pytest.raises(ValueError, match="rating level"):
        table.weights(["wings"], level=3)


def test_missing_or_foreign_tables_fail_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(TagPriorError, match="not found"):
        CooccurrenceTable(tmp_path / "nope.sqlite")
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('schema', '0')")
    conn.close()
    with pytest.raises(TagPriorError, match="schema"):
        CooccurrenceTable(foreign)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(TagPriorError, match="not a co-occurrence table"):
        CooccurrenceTable(garbage)


def test_the_shipped_table_opens_and_knows_common_tags() -> None:
    with_table = CooccurrenceTable(default_table_path())
    weights = with_table.weights(["1girl", "long hair"], level=0)
    assert len(weights) > 100
    assert max(weights, key=weights.__getitem__) in {"solo", "looking at viewer", "smile"}
    with_table.close()


PRIOR = TagPrior({"blue eyes": 0.4, "blue sky": 0.1, "blush": 0.2, "smile": 0.3}, strength=1.0)


def test_only_the_tag_line_is_leaned_on() -> None:
    assert PRIOR.boosts("<|long|>: A girl", [" blue", " smile"]) == [None, None]
    assert PRIOR.boosts("tag: 1girl,\nlong: A", [" blue"]) == [None]


def test_a_tag_start_is_boosted_by_the_weight_of_the_tags_it_leads_to() -> None:
    text = "tag: 1girl, long hair,"
    blue, bl, smile, zebra, end, newline = PRIOR.boosts(
        text, [" blue", " bl", " smile", " zebra", None, "\n"]
    )
    assert math.isclose(blue, math.log1p(0.5 / 0.01))
    assert math.isclose(bl, math.log1p(0.7 / 0.01))
    assert math.isclose(smile, math.log1p(0.3 / 0.01))
    assert zebra == 0.0  # leads to no tag the prior holds
    assert end is None and newline is None  # the line's end is left to the model


def test_inside_a_tag_the_prior_is_conditioned_on_what_is_written() -> None:
    eyes, sky, comma = PRIOR.boosts("tag: 1girl, blue", [" eyes", " sky", ","])
    assert math.isclose(eyes, math.log1p(0.8 / 0.01))
    assert math.isclose(sky, math.log1p(0.2 / 0.01))
    assert comma == 0.0  # "blue" alone is no tag of the prior
    # A tag the line already holds weighs nothing, and a finished one counts as such.
    assert PRIOR.boosts("tag: smile, blue eyes, blue", [" eyes", " sky"]) == [
        0.0,
        pytest.approx(math.log1p(1.0 / 0.01)),
    ]
    assert PRIOR.boosts("tag: 1girl, blush", [",", ", smile"])[0] == pytest.approx(
        math.log1p(1.0 / 0.01)
    )


def test_a_tag_outside_the_prior_is_left_to_the_model() -> None:
    assert PRIOR.boosts("tag: 1girl, zeb", [" ra", ","]) == [None, None]
    strong = TagPrior(PRIOR.weights, strength=3.0)
    assert strong.boosts("tag: x,", [" smile"])[0] == pytest.approx(3 * math.log1p(0.3 / 0.01))


def test_a_prefix_whose_tags_are_all_on_the_line_weighs_nothing() -> None:
    # In float, the tags on the line weigh a hair more or less than the cumulative
    # table says (+-1e-16): the boost once took the log of a negative ratio and
    # failed the run. Whatever the weights, a fully written prefix weighs 0.
    import random

    rng = random.Random(0)
    for _ in range(300):
        keys = [f"{rng.choice('ab')}{rng.choice('abc')}{i}" for i in range(rng.randint(3, 12))]
        raw = {k: rng.random() for k in keys}
        weights = {k: v / sum(raw.values()) for k, v in raw.items()}
        prior = TagPrior(weights, strength=3.0)
        line = "tag: " + ", ".join(weights) + ","
        assert prior.boosts(line, [" a", " b"]) == [None, None]
        for prefix in ("", "a", "b", "ab", "ba"):
            assert prior._mass(prefix, set(weights)) == 0.0
