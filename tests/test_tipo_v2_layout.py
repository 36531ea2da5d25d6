"""The TIPO v2 / v2.1 strings (spec/TIPO_V2.md §7): the exact prompts the spec gives."""

from __future__ import annotations

import pytest

from presample import PresampleRequest
from presample.prepare import prepare
from presample.tagdb import TagDatabase
from presample.tipo import Dialect, Length, Step, Task, build_meta, tipo_input

TAGS = {
    "rating": ["general"],
    "artist": ["ningen mame"],
    "characters": ["hatsune miku"],
    "copyrights": ["vocaloid"],
    "quality": ["masterpiece"],
    "special": ["1girl"],
    "general": ["solo", "long hair", "twintails", "smile"],
}
META = """rating: safe
artist: ningen mame
characters: hatsune miku
copyrights: vocaloid
quality: masterpiece, newest
aspect ratio: 0.7
"""


def test_the_spec_tag_prompt() -> None:
    meta = build_meta(TAGS, 0.7, dialect=Dialect.V2_1)
    text = tipo_input(meta, "1girl, solo, long hair, twintails, smile", "", Task.TAG,
                      Length.LONG, expand=True, dialect=Dialect.V2_1)  # fmt: skip
    assert text == META + "target: <|long|>\ntag: 1girl, solo, long hair, twintails, smile"


def test_the_spec_caption_prompt() -> None:
    meta = build_meta(TAGS, 0.7, dialect=Dialect.V2_1)
    text = tipo_input(meta, "1girl, solo, long hair, twintails, smile", "", Task.TAG_TO_LONG,
                      Length.SHORT, expand=False, dialect=Dialect.V2_1)  # fmt: skip
    assert text == (
        META + "target: <|short|> <|tag_to_long|>\n"
        "tag: 1girl, solo, long hair, twintails, smile\nlong:"
    )


def test_the_spec_nl_to_tags_prompt() -> None:
    text = tipo_input({}, "", "a girl reading in a library", Task.SHORT_TO_TAG, Length.LONG,
                      expand=False, dialect=Dialect.V2_1)  # fmt: skip
    assert text == "target: <|long|> <|short_to_tag|>\nshort: a girl reading in a library\ntag:"


@pytest.mark.parametrize(
    ("ratings", "line"),
    [
        (["general"], "safe"),
        (["sensitive"], "sensitive"),
        (["questionable"], "nsfw"),
        (["explicit"], "nsfw, explicit"),
        (["questionable", "explicit"], "nsfw, explicit"),
    ],
)
def test_v21_rating_words(ratings: list[str], line: str) -> None:
    assert build_meta({"rating": ratings}, dialect=Dialect.V2_1)["rating"] == line
    # v1 and v2 read Danbooru's own words.
    assert build_meta({"rating": ratings}, dialect=Dialect.V2)["rating"] == ", ".join(ratings)


def test_period_word_is_a_setting_and_never_doubled() -> None:
    quality = {"quality": ["masterpiece"]}
    assert build_meta(quality, dialect=Dialect.V2_1, period="old")["quality"] == "masterpiece, old"
    assert build_meta(quality, dialect=Dialect.V2_1, period=None)["quality"] == "masterpiece"
    typed = {"quality": ["best quality", "recent"]}
    assert build_meta(typed, dialect=Dialect.V2_1)["quality"] == "best quality, recent"
    # No quality line is invented, and v2 has no period words.
    assert build_meta({}, dialect=Dialect.V2_1)["quality"] == ""
    assert build_meta(quality, dialect=Dialect.V2)["quality"] == "masterpiece"


def test_aspect_key_by_dialect() -> None:
    assert "aspect_ratio" in build_meta({}, 0.75, dialect=Dialect.V1)
    assert "aspect ratio" in build_meta({}, 0.75, dialect=Dialect.V2)
    assert "aspect ratio" in build_meta({}, 0.75, dialect=Dialect.V2_1)


def test_an_empty_tag_line_opens_with_its_key_on_v2() -> None:
    meta = {"rating": "safe"}
    v2 = tipo_input(meta, "", "", Task.TAG, Length.SHORT, expand=True, dialect=Dialect.V2_1)
    assert v2 == "rating: safe\ntarget: <|short|>\ntag: "
    v1 = tipo_input(meta, "", "", Task.TAG, Length.SHORT, expand=True)
    assert v1 == "rating: safe\ntarget: <|short|>"


def test_a_request_becomes_the_v21_prompt(db: TagDatabase) -> None:
    request = PresampleRequest(
        prompt="1girl, solo, long hair, twintails, smile, hatsune miku, vocaloid, "
        "ningen mame, masterpiece",
        aspect_ratio=0.7,
        period="newest",
    )
    prepared = prepare(request, db, dialect=Dialect.V2_1)
    text = prepared.model_input(Step(Task.TAG, Length.LONG, True))
    assert text == META + "target: <|long|>\ntag: 1girl, solo, long hair, twintails, smile"
    # The same request for a v1 model is unchanged (the reference's strings).
    v1 = prepare(request, db).model_input(Step(Task.TAG, Length.LONG, True))
    assert v1.startswith("rating: general\nartist: ningen mame\n")
    assert "aspect_ratio: 0.7\n" in v1 and "newest" not in v1


def test_v2_length_buckets() -> None:
    from presample.tipo import tag_range

    assert tag_range(Length.LONG) == (36, 54) and tag_range(Length.VERY_LONG) == (54, 72)
    assert tag_range(Length.LONG, Dialect.V2_1) == (36, 48)
    assert tag_range(Length.VERY_LONG, Dialect.V2) == (48, 72)
    assert tag_range(Length.SHORT, Dialect.V2_1) == tag_range(Length.SHORT) == (18, 36)


def test_a_v2_long_tag_list_stops_at_its_bucket() -> None:
    from presample.bans import BanMatcher
    from presample.categories import Category
    from presample.compose import Draft, merge_output, reached_minimum
    from presample.tipo import TipoOutput

    draft = Draft(tags={c: [] for c in Category})
    out = TipoOutput(categories={c: [] for c in Category})
    out.categories[Category.GENERAL] = [f"tag {i}" for i in range(60)]

    def merged(dialect: Dialect) -> Draft:
        return merge_output(draft, out, Task.TAG, tag_length=Length.LONG, nl_length=Length.LONG,
                            bans=BanMatcher([]), protected=frozenset(), rng=None,
                            dialect=dialect)  # fmt: skip

    assert len(merged(Dialect.V1).tags[Category.GENERAL]) == 54
    v21 = merged(Dialect.V2_1)
    assert len(v21.tags[Category.GENERAL]) == 48
    assert reached_minimum(v21, Task.TAG, Length.VERY_LONG, Length.LONG, dialect=Dialect.V2_1)
    assert not reached_minimum(v21, Task.TAG, Length.VERY_LONG, Length.LONG)
