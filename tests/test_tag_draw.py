"""Tags drawn from the co-occurrence table before the model writes (``tag_draw``)."""

from __future__ import annotations

import random

import pytest
from conftest import finish_run, tag_line

from presample import PresampleRequest
from presample.contradictions import contradicts, describes_person, has_person
from presample.request import TagSet
from presample.tag_prior import draw_tags
from presample.tagdb import TagDatabase, normalize_key

WEIGHTS = {"solo": 0.5, "smile": 0.3, "blush": 0.15, "hat": 0.05}


def test_a_draw_is_distinct_repeatable_and_favours_the_likeliest() -> None:
    def draw(seed: int, count: int = 2) -> list[str]:
        return draw_tags(WEIGHTS, count, lambda _tag, _drawn: True, random.Random(seed))

    assert draw(1) == draw(1)
    assert len(set(draw(1, 4))) == 4 and set(draw(1, 4)) == set(WEIGHTS)
    firsts = [draw(seed, 1)[0] for seed in range(200)]
    # At temperature 0.3 weights count to the power 3.3: "solo" nearly always leads.
    assert firsts.count("solo") > 150 and "hat" not in firsts
    # Every seed does not draw the same list.
    assert len({tuple(draw(seed)) for seed in range(50)}) > 1


def test_a_draw_asks_before_each_tag_and_stops_when_nothing_is_left() -> None:
    def no_hat_after_smile(tag: str, drawn: list[str]) -> bool:
        return tag != "blush" and not (tag == "hat" and "smile" in drawn)

    for seed in range(30):
        drawn = draw_tags(WEIGHTS, 4, no_hat_after_smile, random.Random(seed))
        assert "blush" not in drawn
        assert not ("smile" in drawn and "hat" in drawn[drawn.index("smile") :])
        assert len(drawn) <= 3
    assert draw_tags({}, 3, lambda _t, _d: True, random.Random(0)) == []


def added_tags(request: PresampleRequest, db: TagDatabase, seed: int = 1) -> list[str]:
    """The added tags on the tag line the model is first given, in line order."""
    prompts, result = finish_run(request, db, seed)
    if "\ntag:" not in f"\n{prompts[0]}":
        return []
    line = [t.strip() for t in tag_line(prompts[0]).split(":", 1)[1].split(",") if t.strip()]
    return [t for t in line if t in result.added]


def test_a_run_draws_its_share_of_the_line_before_the_model_reads_it(db: TagDatabase) -> None:
    request = PresampleRequest(prompt="1girl, long hair, beach", tag_draw=1.0, tag_length="short")
    drawn = added_tags(request, db)
    # "short" asks for 18-36 tags: all but the three given are drawn, none repeated.
    assert 15 <= len(drawn) <= 33 and len(set(drawn)) == len(drawn)
    line = ["1girl", "long hair", "beach"]
    for tag in drawn:
        assert db.is_known(tag)
        assert not contradicts(normalize_key(tag), [*line, *drawn[: drawn.index(tag)]])
    half = added_tags(request.model_copy(update={"tag_draw": 0.5}), db)
    assert 0 < len(half) < len(drawn)
    # Another seed, another draw.
    assert added_tags(request, db, seed=2) != drawn


@pytest.mark.parametrize(
    "request_",
    [
        PresampleRequest(prompt="1girl, long hair, beach"),  # the request's default: 0
        PresampleRequest(prompt="1girl, long hair, beach", tag_draw=1.0, expand_tags=False),
        PresampleRequest(prompt="a girl walking on a beach at dusk", tag_draw=1.0),
    ],
    ids=["off", "no tag step", "a sentence"],
)
def test_no_draw(request_: PresampleRequest, db: TagDatabase) -> None:
    assert added_tags(request_, db) == []


def test_a_draw_keeps_the_requests_rules(db: TagDatabase) -> None:
    bans = [{"pattern": "solo"}, {"kind": "regex", "pattern": "breasts"}]
    banned = PresampleRequest(prompt="1girl, long hair, beach", tag_draw=1.0, ban=bans)
    drawn = added_tags(banned, db)
    assert drawn and "solo" not in drawn and not any("breasts" in t for t in drawn)
    # Nothing puts a person in the picture: the draw brings none in.
    scenery = PresampleRequest(prompt="scenery, mountain, lake", tag_draw=1.0)
    assert (drawn := added_tags(scenery, db))
    assert not any(describes_person(k) or has_person([k]) for k in map(normalize_key, drawn))
    # Unless the records put a person with such tags at least half the time.
    magic = PresampleRequest(prompt="from above, belt, magic circle", tag_draw=1.0)
    assert "1girl" in added_tags(magic, db)
    # A character's own look comes with her name, never another name.
    tags = TagSet(general=["smile"], characters=["haruno sakura"])
    sakura = added_tags(PresampleRequest(tags=tags, tag_draw=1.0), db)
    assert {"forehead mark", "red hairband"} & set(sakura) and "haruno sakura" not in sakura


def test_a_draw_keeps_apart_the_tags_the_records_keep_apart(
    db: TagDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    from presample.tag_prior import CooccurrenceTable

    table = CooccurrenceTable()
    apart = table.apart  # bound now: the rule is switched off below, the count stays
    request = PresampleRequest(prompt="cat, window, sunlight", tag_draw=1.0)

    def apart_on_lines() -> int:
        count = 0
        for seed in range(6):
            line = ["cat", "window", "sunlight", *added_tags(request, db, seed)]
            keys = [normalize_key(t) for t in line]
            count += sum(apart(k, keys[:i]) for i, k in enumerate(keys))
        return count

    # `kitchen` after `street`: the records' photos never hold both.
    assert apart_on_lines() == 0
    monkeypatch.setattr(CooccurrenceTable, "apart", lambda self, key, keys: False)
    with_no_rule = apart_on_lines()
    monkeypatch.undo()
    assert with_no_rule > 0, "the rule had nothing to refuse: pick another prompt"
