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


def test_text_in_a_script_the_models_cannot_read_is_kept_but_not_shown(db: TagDatabase) -> None:
    from presample.prepare import readable

    assert readable("a cat, 1girl, café, naïve") and readable("(1.2), 2024") and readable("")
    assert not readable("一只猫坐在窗台上") and not readable("長い黒髪")
    mixed = prepare(PresampleRequest(prompt="1girl, 夕焼けの海辺, long hair, a girl waving"), db)
    assert mixed.tags.general == ["long hair"]
    assert "夕焼け" not in mixed.model_input(mixed.steps()[0])
    assert mixed.nl == "a girl waving" and mixed.unread == ("夕焼けの海辺",)
    assert mixed.steps() and not mixed.unreadable
    chinese = prepare(PresampleRequest(prompt="一只猫坐在窗台上, 窗外下着雪"), db)
    assert chinese.unreadable and chinese.steps() == [] and chinese.nl == ""
    # An empty prompt is not unreadable: it gets a picture from nothing.
    assert prepare(PresampleRequest(prompt=""), db).steps()


def test_an_unreadable_prompt_comes_back_as_typed_without_a_model_call(db: TagDatabase) -> None:
    from presample.engine.sampling import Sampling
    from presample.engine.scheduler import run_all
    from presample.runs import RunOptions, dtg_run, tipo_run

    class NoModel:
        def generate(self, jobs, progress=None):  # type: ignore[no-untyped-def]
            raise AssertionError("the model was called")

    typed = "夕焼けの海辺に立つ少女、長い黒髪、白いワンピース"
    prepared = prepare(PresampleRequest(prompt=typed), db)
    for run in (tipo_run, dtg_run):
        (result,) = run_all(NoModel(), [run(prepared, db, RunOptions(Sampling(), seed=1))])  # type: ignore[arg-type]
        assert result.prompt == typed and result.steps == []
        (note,) = result.notes
        assert note.endswith("'夕焼けの海辺に立つ少女', '長い黒髪', '白いワンピース'")


def test_any_script_reaches_the_model_when_asked(db: TagDatabase) -> None:
    ready = prepare(PresampleRequest(prompt="一只猫坐在窗台上", read_any_script=True), db)
    assert ready.nl == "一只猫坐在窗台上" and not ready.unread and ready.steps()
