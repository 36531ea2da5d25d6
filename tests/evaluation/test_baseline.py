"""The Prompt DB baseline: seeded, only training tags, length targets, co-occurrence."""

from __future__ import annotations

import random

from presample.evaluation.baseline import PromptDB
from presample.request import PresampleRequest, TagSet
from presample.tipo import TAG_MAX, TAG_MIN, Length
from presample.training.records import Record

from .conftest import CAPTIONS, caption_records, tag_records


def make_db() -> PromptDB:
    explicit = Record(
        id="x", src="civitai",
        tags={"special": ["1girl"], "general": ["nude", "smile", "long hair"],
              "rating": ["explicit"]},
    )  # fmt: skip
    return PromptDB([*tag_records(30), *caption_records(), explicit])


def tag_request(seed: int, length: str = "very_short", rating: str = "general") -> PresampleRequest:
    tags = TagSet(special=["1girl"], general=["smile", "hat"], rating=[rating])
    return PresampleRequest(tags=tags, tag_length=length, generate_nl=False, seed=seed)


def test_seeded_and_only_training_tags() -> None:
    db = make_db()
    first = db.presample(tag_request(3))
    again = db.presample(tag_request(3))
    assert first == again
    outputs = {tuple(db.presample(tag_request(seed)).tags.general) for seed in range(5)}
    assert len(outputs) > 1  # different seeds, different continuations
    for seed in range(5):
        result = db.presample(tag_request(seed))
        assert result.tags.special[0] == "1girl"
        assert result.tags.general[:2] == ["smile", "hat"]  # input kept, first
        assert all(db.known(t) for t in [*result.tags.special, *result.tags.general])
        assert result.generated == ""


def test_length_targets() -> None:
    db = make_db()
    for length in ("very_short", "short"):
        for seed in range(5):
            result = db.presample(tag_request(seed, length))
            count = len(result.tags.special) + len(result.tags.general)
            assert TAG_MIN[Length(length)] <= count <= TAG_MAX[Length(length)]


def test_rating_keeps_explicit_records_out_of_general_requests() -> None:
    db = make_db()
    for seed in range(20):
        assert "nude" not in db.presample(tag_request(seed, "short")).tags.general
    seen = {t for seed in range(20) for t in db.presample(tag_request(seed, "short", "explicit"))
            .tags.general}  # fmt: skip
    assert "nude" in seen


def test_neighbours_vote_before_the_frequency_backoff() -> None:
    rare = [Record(id=f"cat:{i}", src="civitai",
                   tags={"general": ["cat ears", "tail", "animal ears"], "rating": ["general"]})
            for i in range(3)]  # fmt: skip
    db = PromptDB([*tag_records(30), *rare])
    new = db.continue_tags(["cat ears"], Length.VERY_SHORT, "general", random.Random(1))
    assert {tag for _, tag in new[:2]} == {"tail", "animal ears"}
    assert len(new) >= TAG_MIN[Length.VERY_SHORT] - 1


def test_captions_come_from_training() -> None:
    db = make_db()
    longs = {long for _, long in CAPTIONS}
    request = PresampleRequest(nl_prompt="a dog in the park", nl_length="very_short", seed=2)
    result = db.presample(request)
    assert result.generated in longs
    assert "dog" in result.generated.lower()  # the best word overlap wins here
    assert db.presample(request) == result


def test_frequent_tags_adds_the_most_frequent_allowed_tags_the_input_lacks() -> None:
    from collections import Counter

    db = make_db()
    frequent = db.frequent_tags()
    assert frequent.name == "frequent tags" and db.name == "baseline"  # the index is shared
    result = frequent.presample(tag_request(3))
    given = {"1girl", "smile", "hat"}
    new = [t for t in [*result.tags.special, *result.tags.general] if t not in given]
    counts: Counter = Counter()
    for record in [*tag_records(30), *caption_records()]:  # general-rated records only
        counts.update({t for c in ("special", "general") for t in record.tags.get(c, [])})
    ranked = [t for t, _ in sorted(counts.items(), key=lambda kv: -kv[1]) if t not in given]
    assert new and set(new) <= set(ranked[: len(new) + 3])  # ties may swap neighbours
    assert "nude" not in new  # the explicit record's tags are not allowed for a general request
    # No sampling in the choice: another seed draws only another count, a prefix.
    other = frequent.presample(tag_request(4)).tags.general
    short, long = sorted([other, result.tags.general], key=len)
    assert long[: len(short)] == short


def test_danbooru_tags_adds_danbooru_s_most_popular_tags_the_rating_allows() -> None:
    popular = ["1girl", "solo", "long hair", "large breasts", "nude", "smile", "hat", "sky"]
    danbooru = make_db().danbooru_tags(popular)
    assert danbooru.name == "Danbooru frequent tags"
    result = danbooru.presample(tag_request(3))  # general-rated, gives 1girl, smile, hat
    new = [t for t in [*result.tags.special, *result.tags.general]
           if t not in {"1girl", "smile", "hat"}]  # fmt: skip
    assert new == ["solo", "long hair", "sky"]  # in order; no suggestive or explicit tag


def test_matched_adds_as_many_tags_as_asked_and_draws_lengths_per_input() -> None:
    from presample.evaluation.baseline import request_key

    db = make_db()
    request = tag_request(3)
    matched = db.frequent_tags().matched({request_key(request): 2})
    given = set(request.tags.all_tags())
    assert len([t for t in matched.presample(request).tags.all_tags() if t not in given]) == 2
    # A request the counts do not hold draws its count as usual.
    assert matched.presample(tag_request(5)) == db.frequent_tags().presample(tag_request(5))
    # One seed, different inputs: the drawn lengths differ (they once were all equal).
    lengths = {
        len(db.presample(PresampleRequest(tags={"general": [tag]}, tag_length="short",
                                          seed=0, generate_nl=False)).tags.general)
        for tag in ("smile", "hat", "cat ears", "dress", "sky", "tree")
    }  # fmt: skip
    assert len(lengths) > 1
