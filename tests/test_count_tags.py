"""The people-count tag a line implies, and when a run puts it in place."""

from __future__ import annotations

import pytest
from conftest import finish_run as finish
from conftest import tag_line

from presample import PresampleRequest
from presample.count_tags import implied_count_tags
from presample.request import TagSet
from presample.tag_prior import CooccurrenceTable
from presample.tagdb import TagDatabase
from presample.training.cooccurrence import build_table
from presample.training.records import Record


def record(rid: str, tags: list[str], rating: str = "general", **names: list[str]) -> Record:
    return Record(rid, "civitai", {"general": tags, "rating": [rating], **names})


RECORDS = [
    *(record(f"g{i}", ["1girl", "long hair", "smile", "dress"]) for i in range(6)),
    *(record(f"b{i}", ["1boy", "muscular", "smile", "armor"]) for i in range(6)),
    record("t", ["2girls", "long hair", "hug"]),
    *(record(f"n{i}", ["no humans", "scenery", "sky"]) for i in range(4)),
    record("x", ["1girl", "smile", "cup"]),
    *(record(f"c{i}", ["smile", "cup", "table"]) for i in range(6)),
    *(record(f"h{i}", ["1girl", "1boy", "hetero", "kiss"]) for i in range(6)),
    *(record(f"k{i}", ["1boy", "sword", "black coat"], characters=["kirito"]) for i in range(3)),
]


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> CooccurrenceTable:
    path = tmp_path_factory.mktemp("counts") / "table.sqlite"
    build_table(RECORDS, path, neighbours=8, min_pair=1)
    return CooccurrenceTable(path)


def test_a_persons_features_get_the_count_tag_they_come_with(table: CooccurrenceTable) -> None:
    assert implied_count_tags(["long hair", "dress"], table, 0) == ["1girl"]
    assert implied_count_tags(["muscular", "armor"], table, 0) == ["1boy"]
    # Weighted by rarity: the dress says more than the smile everyone wears.
    assert implied_count_tags(["smile", "dress"], table, 0) == ["1girl"]


def test_a_counted_line_gets_another_count_tag_only_on_strong_evidence(
    table: CooccurrenceTable,
) -> None:
    assert implied_count_tags(["1girl", "hetero"], table, 0) == ["1boy"]  # 6 of 6 records
    assert implied_count_tags(["1girl", "long hair"], table, 0) == []  # 1boy: never with it


def test_a_named_character_is_a_person_and_says_who(table: CooccurrenceTable) -> None:
    # "cup, table" alone is nobody; the character's records count him.
    assert implied_count_tags(["cup", "table"], table, 0) == []
    assert implied_count_tags(["cup", "table"], table, 0, characters=["kirito"]) == ["1boy"]
    assert implied_count_tags(["scenery", "sky"], table, 0, characters=["kirito"]) == ["1boy"]


def test_no_count_tag_where_the_line_counts_or_has_nobody(table: CooccurrenceTable) -> None:
    assert implied_count_tags(["2girls", "long hair"], table, 0) == []  # counted already
    assert implied_count_tags(["scenery", "sky"], table, 0) == []  # nobody in the picture
    assert implied_count_tags(["no humans", "long hair"], table, 0) == []  # the user's clash
    assert implied_count_tags([], table, 0) == []
    # A person, but the records rarely count one with these tags: no guess.
    assert implied_count_tags(["smile", "cup"], table, 0) == []
    assert implied_count_tags(["unknown tag", "blue hair"], table, 0) == []  # nothing known


def test_a_run_puts_the_count_tag_first_and_calls_it_added(db: TagDatabase) -> None:
    prompts, result = finish(PresampleRequest(prompt="long hair, large breasts, smile"), db)
    assert tag_line(prompts[0]).startswith("tag: 1girl, long hair")
    assert result.tags.special == ["1girl"] and "1girl" in result.added
    assert result.tags_prompt.startswith("1girl, ")


def test_a_run_counts_the_character_the_request_names(db: TagDatabase) -> None:
    tags = TagSet(general=["outdoors", "cherry blossoms"], characters=["haruno sakura"])
    prompts, result = finish(PresampleRequest(tags=tags), db)
    assert tag_line(prompts[0]).startswith("tag: 1girl, outdoors")
    assert "1girl" in result.added


@pytest.mark.parametrize(
    "request_",
    [
        PresampleRequest(prompt="long hair, large breasts, smile", count_tag=False),
        PresampleRequest(prompt="long hair, large breasts", ban=[{"pattern": "1girl"}]),
        PresampleRequest(prompt="long hair, large breasts", expand_tags=False),  # captions only
        PresampleRequest(prompt="scenery, mountain, lake"),
        PresampleRequest(prompt="1boy, long hair"),
    ],
    ids=["turned off", "banned", "no tag step", "nobody", "counted"],
)
def test_no_count_tag_added(request_: PresampleRequest, db: TagDatabase) -> None:
    _, result = finish(request_, db)
    assert "1girl" not in result.added


def test_the_setting_is_in_the_schema() -> None:
    assert PresampleRequest().count_tag is True
    assert "1girl" in (PresampleRequest.model_fields["count_tag"].description or "")
