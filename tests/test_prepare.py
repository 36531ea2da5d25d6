"""From typed prompt to model input: ratings, ignored tags, user syntax kept aside."""

from __future__ import annotations

import pytest

from presample.categories import Category
from presample.prepare import prepare
from presample.request import PresampleRequest
from presample.tagdb import TagDatabase


def groups(prompt: str, **kw: object) -> list[str]:
    with TagDatabase() as db:
        ready = prepare(PresampleRequest(prompt=prompt, **kw), db)
    return [rule.pattern for rule in ready.rating_bans()]


def test_unrated_requests_are_general_unless_told_otherwise(db: TagDatabase) -> None:
    ready = prepare(PresampleRequest(prompt="1girl, scenery"), db)
    assert ready.tags.rating == ["general"]
    assert ready.meta()["rating"] == "general"
    loose = prepare(PresampleRequest(prompt="1girl, scenery", sfw=False), db)
    assert loose.tags.rating == []


@pytest.mark.parametrize(
    ("prompt", "kw", "expected"),
    [
        ("1girl", {}, ["explicit", "suggestive"]),
        ("1girl, safe", {}, ["explicit", "suggestive"]),
        ("1girl, sensitive", {}, ["explicit"]),
        ("1girl, explicit", {}, []),
        ("1girl, nsfw", {}, []),
        ("1girl", {"sfw": False}, []),
    ],
)
def test_the_rating_decides_what_is_kept_out(prompt: str, kw: dict, expected: list[str]) -> None:
    assert groups(prompt, **kw) == expected


def test_syntax_and_ignored_tags_stay_aside(db: TagDatabase) -> None:
    ready = prepare(
        PresampleRequest(prompt="1girl, (smile:1.2), sks style, BREAK red sky, <lora:x:1>",
                         ignored=["sks style"]),
        db,
    )  # fmt: skip
    assert ready.tags.get(Category.GENERAL) == ["smile", "red sky"]
    assert ready.ignored[Category.GENERAL] == ["sks style"]
    assert ready.raw_forms == {"smile": "(smile:1.2)"}
    assert ready.later_segments == ("red sky",)
    assert ready.user_order[:2] == ("1girl", "smile")


def test_the_users_text_is_never_rewritten() -> None:
    from presample.bans import BanMatcher
    from presample.compose import Draft, merge_output
    from presample.tipo import Length, Task, TipoOutput

    def merged(continuation: str) -> str:
        draft = Draft(tags={c: [] for c in Category}, extended="a cat sitting on a windowsill")
        out = TipoOutput(categories={c: [] for c in Category}, generated=continuation)
        return merge_output(draft, out, Task.LONG_TO_TAG, tag_length=Length.LONG,
                            nl_length=Length.LONG, bans=BanMatcher([]), protected=frozenset(),
                            rng=None).extended  # fmt: skip

    assert merged("a cat sitting on a windowsillfully awake. It sleeps.") == (
        "a cat sitting on a windowsill. It sleeps"
    )
    assert merged("a cat sitting on a windowsill in the sun. It sleeps.") == (
        "a cat sitting on a windowsill in the sun. It sleeps"
    )


@pytest.mark.parametrize(
    ("prompt", "mode", "banned"),
    [
        ("1girl, long hair, smile", "auto", {"artist", "characters", "copyrights"}),
        ("1girl, hatsune miku", "auto", {"artist"}),
        ("1girl, genshin impact", "auto", {"artist"}),
        ("1girl, hatsune miku, wlop", "auto", set()),
        ("1girl, hatsune miku, wlop", "never", {"artist", "characters", "copyrights"}),
        ("1girl, long hair", "always", set()),
    ],
)
def test_names_are_added_only_where_the_request_allows(db, prompt: str, mode: str,
                                                       banned: set[str]) -> None:  # fmt: skip
    prepared = prepare(PresampleRequest(prompt=prompt, new_names=mode), db)
    rules = prepared.name_bans()
    assert {r.pattern for r in rules} == banned and all(r.kind == "category" for r in rules)
    assert all(r in prepared.ban_rules() for r in rules)


def test_a_decimal_point_is_not_a_sentence_end() -> None:
    from presample.bans import BanMatcher
    from presample.compose import Draft, merge_output, sentences
    from presample.tipo import Length, Task, TipoOutput

    assert sentences("a 3.5 m statue. It is old.") == ["a 3.5 m statue", "It is old"]
    draft = Draft(tags={c: [] for c in Category}, extended="a 3.5 m tall statue of a knight")
    out = TipoOutput(categories={c: [] for c in Category},
                     generated="a 3.5 m tall statue of a knight. It is old.")  # fmt: skip
    merged = merge_output(draft, out, Task.LONG_TO_TAG, tag_length=Length.LONG,
                          nl_length=Length.LONG, bans=BanMatcher([]), protected=frozenset(),
                          rng=None)  # fmt: skip
    assert merged.extended == "a 3.5 m tall statue of a knight. It is old"
