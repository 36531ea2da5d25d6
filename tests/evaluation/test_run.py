"""Test items, and the metrics of hand-made runs with exact values."""

from __future__ import annotations

import pytest

from presample.evaluation.run import (
    CaptionItem,
    TagItem,
    caption_item,
    caption_metrics,
    select_items,
    select_tag_caption_items,
    tag_caption_item,
    tag_caption_metrics,
    tag_item,
    tag_metrics,
)
from presample.request import PresampleResult, TagSet
from presample.tipo import Length
from presample.training.records import Record

from .conftest import caption_records, tag_records


def test_tag_items_give_the_first_tags_and_hold_out_the_rest() -> None:
    record = tag_records(1)[0]
    item = tag_item(record, given=3)
    assert item is not None
    line = record.tags["special"] + record.tags["general"]
    assert item.given_tags() == line[:3]
    assert item.held_out == line[3:]
    assert item.length is Length.VERY_SHORT  # 9 tags
    request = item.request(7)
    assert request.seed == 7 and not request.generate_nl
    assert request.tags.rating == ["general"]
    assert tag_item(record, given=len(line) - 1) is None  # fewer than 2 held out
    assert caption_item(record) is None


def test_a_share_gives_random_tags_the_same_for_every_run() -> None:
    record = tag_records(1)[0]
    line = record.tags["special"] + record.tags["general"]
    item = tag_item(record, given=0.3)
    assert item is not None
    assert len(item.given_tags()) == 3  # 30% of 9, rounded
    assert sorted(item.given_tags() + item.held_out) == sorted(line)
    assert not set(item.given_tags()) & set(item.held_out)
    assert tag_item(record, given=0.3) == item  # the same split every time
    # Not simply the first tags: over a few records some split skips the first.
    splits = [tag_item(r, given=0.3) for r in tag_records(8)]
    assert any(s.given_tags() != (r.tags["special"] + r.tags["general"])[:3]
               for s, r in zip(splits, tag_records(8), strict=True))  # fmt: skip
    assert tag_item(record, given=0.9) is None  # fewer than 2 held out


def test_select_items_is_balanced_and_fixed() -> None:
    records = [*tag_records(10, "t"), *caption_records("c")]
    tags, captions = select_items(records, limit=6)
    assert (len(tags), len(captions)) == (3, 3)
    assert select_items(list(reversed(records)), limit=6) == (tags, captions)
    tags, captions = select_items(records, limit=12)
    assert (len(tags), len(captions)) == (8, 4)  # captions run out; tags fill in


def test_tag_metrics_exact() -> None:
    item = TagItem("r", {"special": ["1girl"], "general": ["smile"]}, ["a", "b"], "general",
                   Length.VERY_SHORT)  # fmt: skip
    results = [
        PresampleResult(tags=TagSet(special=["1girl"], general=["smile", "a", "not a tag"])),
        PresampleResult(tags=TagSet(special=["1girl"], general=["smile", "b", "a"])),
    ]
    numbers, samples = tag_metrics([item], [results], (0, 1), lambda t: t != "not a tag")
    assert numbers["real_tag_share"] == 0.75  # 3 of the 4 new tags
    assert numbers["tag_recall"] == 0.75  # 1/2 and 2/2
    assert numbers["tag_length_hit"] == 0.0  # 4 tags, very_short wants 6..18
    assert numbers["input_tags_preserved"] == 1.0
    assert numbers["rating_respected"] == 1.0
    assert numbers["tag_distinct_share"] == 1.0
    assert numbers["tag_jaccard_distance"] == pytest.approx(2 / 3)
    assert [s["recall"] for s in samples] == [0.5, 1.0]
    assert numbers["repeated_tag_runs"] == 0.0 and numbers["invented_name_runs"] == 0.0


def test_repeated_tags_and_invented_names_are_counted_per_run() -> None:
    item = TagItem("r", {"general": ["smile"], "characters": ["hatsune miku"]}, ["a", "b"],
                   "general", Length.VERY_SHORT)  # fmt: skip
    # One tag in two spellings and two categories, and a character the request allows.
    twice = TagSet(general=["smile", "Long_hair"], special=["long hair"],
                   characters=["hatsune miku", "kagamine rin"])  # fmt: skip
    results = [
        PresampleResult(tags=twice),
        PresampleResult(tags=TagSet(general=["smile", "a"], artist=["wlop"])),
    ]
    numbers, samples = tag_metrics([item], [results], (0, 1), lambda t: True)
    assert numbers["repeated_tag_runs"] == 0.5
    assert numbers["invented_name_runs"] == 0.5  # the artist; characters were given
    assert [s["invented_names"] for s in samples] == [[], ["wlop"]]


def test_new_tags_that_contradict_the_line_are_counted() -> None:
    item = TagItem("r", {"general": ["night"]}, ["a", "b"], "general", Length.VERY_SHORT)
    results = [PresampleResult(tags=TagSet(general=["night", "day", "smile"])),
               PresampleResult(tags=TagSet(general=["night", "smile"]))]  # fmt: skip
    numbers, _ = tag_metrics([item], [results], (0, 1), lambda t: True)
    assert numbers["contradiction_runs"] == 0.5
    assert numbers["unseen_tag_share"] is None  # not asked
    seen, _ = tag_metrics([item], [results], (0, 1), lambda t: True, lambda t: t != "day")
    assert seen["unseen_tag_share"] == pytest.approx(1 / 3)  # day of day, smile, smile


def test_tag_metrics_count_failures_as_misses() -> None:
    item = TagItem("r", {"general": ["smile", "hat"]}, ["a", "b"], "general", Length.VERY_SHORT)
    ok = PresampleResult(tags=TagSet(general=["hat", "a", "b", "c", "d", "e"]))
    numbers, _ = tag_metrics([item], [[ok, RuntimeError("boom")]], (0, 1), lambda t: True)
    assert numbers["tag_recall"] == 0.5
    assert numbers["tag_length_hit"] == 0.5
    assert numbers["input_tags_preserved"] == 0.25  # hat kept once; smile dropped; a failure
    assert numbers["tag_distinct_share"] is None  # diversity needs every seed


def test_caption_metrics_exact() -> None:
    np = pytest.importorskip("numpy")
    item = CaptionItem("c", "a cat", "A cat. On a mat.", Length.VERY_SHORT, Length.VERY_SHORT)
    results = [
        PresampleResult(generated="A cat sits. It purrs. Loud."),  # 3 sentences: a miss
        PresampleResult(extended="A cat sits."),
    ]
    vectors = {"a cat": [1.0, 0.0], "A cat. On a mat.": [1.0, 0.0],
               "A cat sits. It purrs. Loud.": [0.0, 1.0], "A cat sits.": [2.0, 0.0]}  # fmt: skip

    def embed(texts: list[str]):
        return np.array([vectors[t] for t in texts])

    numbers, samples = caption_metrics([item], [results], (0, 1), embed)
    assert numbers["nl_length_hit"] == 0.5
    assert numbers["caption_written"] == 1.0
    assert numbers["caption_similarity"] == pytest.approx(0.5)
    assert numbers["reference_similarity"] == pytest.approx(1.0)
    assert numbers["caption_frechet"] is None  # one item: no covariance
    assert numbers["caption_distinct_share"] == 1.0
    assert [s["similarity"] for s in samples] == pytest.approx([0.0, 1.0])
    without, _ = caption_metrics([item], [results], (0, 1), None)
    assert without["caption_similarity"] is None and without["nl_length_hit"] == 0.5


def test_caption_judged_is_the_one_the_prompt_shows() -> None:
    np = pytest.importorskip("numpy")
    item = CaptionItem("c", "a cat", "A cat. On a mat.", Length.VERY_SHORT, Length.VERY_SHORT)
    results = [
        # a model: expanded the text (shown) and generated a hidden new caption
        PresampleResult(extended="A cat sits.", generated="A dog runs."),
        # the baseline: the text as typed, a retrieved caption
        PresampleResult(extended="a cat", generated="A cat naps."),
    ]
    vectors = {"a cat": [1.0, 0.0], "A cat. On a mat.": [1.0, 0.0], "A cat sits.": [1.0, 0.0],
               "A dog runs.": [0.0, 1.0], "A cat naps.": [1.0, 1.0]}  # fmt: skip

    def embed(texts: list[str]):
        return np.array([vectors[t] for t in texts])

    numbers, samples = caption_metrics([item], [results], (0, 1), embed)
    assert [s["caption"] for s in samples] == ["A cat sits.", "A cat naps."]
    assert samples[0]["new_caption"] == "A dog runs." and "new_caption" not in samples[1]
    assert numbers["new_caption_similarity"] == pytest.approx(0.0)
    assert numbers["caption_similarity"] == pytest.approx((1 + 2**-0.5) / 2)


def test_tag_caption_items_give_every_tag_and_judge_the_caption() -> None:
    np = pytest.importorskip("numpy")
    tags = {"special": ["1girl"], "general": ["smile", "sky"], "rating": ["general"]}
    anime = Record("a", "civitai", tags, long="A girl smiles.")
    photo = Record("p", "coco", {"general": ["dog", "park", "ball"]}, long="A dog runs.")
    assert tag_caption_item(Record("t", "civitai", tags)) is None  # no caption
    assert tag_caption_item(Record("s", "coco", {"general": ["dog"]}, long="A dog.")) is None
    items = select_tag_caption_items([photo, anime], limit=2)
    assert [i.id for i in items] == ["a", "p"]  # anime tags first, half each
    assert len(select_tag_caption_items([anime, photo], limit=9)) == 2
    more = [Record(f"a{i}", "civitai", tags, long="A girl.") for i in range(4)]
    assert len(select_tag_caption_items([*more, photo], limit=4)) == 4  # anime fills in
    request = items[0].request(3)
    assert not request.expand_tags and request.generate_nl and request.seed == 3
    assert request.tags.general == ["smile", "sky"] and request.tags.rating == ["general"]
    results = [[PresampleResult(generated="A girl smiles."), RuntimeError("boom")]]
    vectors = {"A girl smiles.": [1.0, 0.0]}
    numbers, samples = tag_caption_metrics(
        items[:1], results, (0, 1), lambda texts: np.array([vectors[t] for t in texts])
    )
    assert numbers["tag_caption_written"] == 0.5  # a failure wrote nothing
    assert numbers["tag_caption_similarity"] == pytest.approx(1.0)
    assert samples[0]["tags"] == ["1girl", "smile", "sky"]
    assert numbers["tag_caption_names_people"] == 1.0 and samples[0]["names_people"] is True
    off = [[PresampleResult(generated="A red wine glass."), PresampleResult(generated="A girl.")]]
    vectors.update({"A red wine glass.": [0.0, 1.0], "A girl.": [1.0, 0.0]})
    numbers, samples = tag_caption_metrics(
        items[:1], off, (0, 1), lambda texts: np.array([vectors[t] for t in texts])
    )
    assert numbers["tag_caption_names_people"] == 0.5 and samples[0]["names_people"] is False
    photo_only = tag_caption_metrics(items[1:], [[PresampleResult(generated="A dog.")]], (0,), None)
    assert photo_only[0]["tag_caption_names_people"] is None  # no people counted
    assert numbers["tag_caption_conflicts"] == 0.0
    blonde = Record("b", "civitai", {"special": ["1girl"], "general": ["blonde hair", "sky"]},
                    long="A girl.")  # fmt: skip
    two = [[PresampleResult(generated="A girl with black hair."),
            PresampleResult(generated="A girl with blonde hair.")]]  # fmt: skip
    numbers, samples = tag_caption_metrics([tag_caption_item(blonde)], two, (0, 1), None)
    assert numbers["tag_caption_conflicts"] == 0.5 and samples[0]["conflicts"] == 1
