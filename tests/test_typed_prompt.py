"""The default output: the prompt exactly as typed, the model's additions inserted."""

from __future__ import annotations

from presample import PresampleRequest
from presample.categories import Category
from presample.compose import Draft, format_result
from presample.prepare import prepare
from presample.tagdb import TagDatabase


def _draft(prepared, *, general=(), extended="", generated="", artist=()) -> Draft:
    start = Draft.start(prepared)
    tags = {c: list(v) for c, v in start.tags.items()}
    tags[Category.GENERAL] += list(general)
    tags[Category.ARTIST] += list(artist)
    return Draft(tags=tags, extended=extended or start.extended, generated=generated)


def test_every_typed_byte_stays_in_place(db: TagDatabase) -> None:
    typed = ("1girl, a girl standing in a field, (masterpiece:1.2), <lora:detail:0.6>, "
             "looking over her shoulder BREAK night sky")  # fmt: skip
    prepared = prepare(PresampleRequest(prompt=typed), db)
    draft = _draft(prepared, general=["blue sky", "smile"],
                   extended=prepared.nl + ". The wind is warm")  # fmt: skip
    out = format_result(draft, prepared)
    assert out == (
        "1girl, a girl standing in a field, (masterpiece:1.2), blue sky, smile, "
        "<lora:detail:0.6>, looking over her shoulder. The wind is warm. BREAK night sky"
    )
    assert format_result(draft, prepared, user_only=True) == typed
    # The rating the model was asked for (sfw) is not written: the user typed none.
    assert "general" not in out


def test_a_caption_from_tags_follows_the_new_tags(db: TagDatabase) -> None:
    prepared = prepare(PresampleRequest(prompt="1girl, scenery"), db)
    draft = _draft(prepared, general=["tree"], generated="A girl stands under a tree")
    assert format_result(draft, prepared) == "1girl, scenery, tree, A girl stands under a tree."


def test_tags_after_a_finished_text_start_a_new_list(db: TagDatabase) -> None:
    prepared = prepare(PresampleRequest(prompt="a cat sitting on a warm windowsill"), db)
    draft = _draft(prepared, general=["cat", "window"],
                   extended=prepared.nl + ". It sleeps")  # fmt: skip
    assert format_result(draft, prepared) == (
        "a cat sitting on a warm windowsill. It sleeps. cat, window"
    )


def test_escaping_and_the_reference_templates_still_apply(db: TagDatabase) -> None:
    prepared = prepare(PresampleRequest(prompt="1girl", target="a1111"), db)
    draft = _draft(prepared, general=["ganyu (genshin impact)"])
    assert format_result(draft, prepared) == "1girl, ganyu \\(genshin impact\\)"
    reference = prepare(PresampleRequest(prompt="1girl", template="both_tag_first"), db)
    assert format_result(_draft(reference, general=["tree"]), reference).startswith("1girl, \n")
    # Nothing typed (tags by category): the reference's layout.
    by_category = prepare(PresampleRequest(tags={"general": ["tree"]}), db)
    assert "tree" in format_result(_draft(by_category), by_category)


def test_a_new_tag_is_written_once_across_categories_and_spellings(db: TagDatabase) -> None:
    prepared = prepare(PresampleRequest(prompt="1girl, smile"), db)
    draft = _draft(prepared, general=["long hair", "Long_Hair", "hatsune miku", "Smile"],
                   artist=["hatsune miku"])  # fmt: skip
    assert format_result(draft, prepared) == "1girl, smile, hatsune miku, long hair"


def test_leading_spaces_do_not_move_the_insertion_point(db: TagDatabase) -> None:
    prepared = prepare(PresampleRequest(prompt="  1girl, smile, a girl sits on an old bench "), db)
    draft = _draft(prepared, general=["tree"])
    assert format_result(draft, prepared) == "1girl, smile, tree, a girl sits on an old bench"


def test_an_empty_prompt_gets_the_additions_alone(db: TagDatabase) -> None:
    # Not the reference's layout with its blank lines and a rating nobody chose.
    for typed in ("", "   "):
        prepared = prepare(PresampleRequest(prompt=typed), db)
        draft = _draft(prepared, general=["tree", "sky"], generated="A tree under the sky")
        assert format_result(draft, prepared) == "tree, sky, A tree under the sky."
        assert format_result(draft, prepared, user_only=True) == ""


def test_your_tags_are_written_as_every_tag_is_unless_you_keep_your_spelling(
    db: TagDatabase,
) -> None:
    typed = "1girl, long_hair, (smile:1.2), Blue_Eyes, boobs, ohwx_style, a girl in a field"
    prepared = prepare(PresampleRequest(prompt=typed), db)
    draft = _draft(prepared, general=["tree"])
    # Known tags in the target's style (an alias becomes its tag); a weighted tag,
    # text and a tag the database does not know (a LoRA trigger) stay as typed.
    assert format_result(draft, prepared) == (
        "1girl, long hair, (smile:1.2), blue eyes, breasts, ohwx_style, tree, a girl in a field"
    )
    kept = prepare(PresampleRequest(prompt=typed, tag_spelling="typed"), db)
    assert format_result(_draft(kept, general=["tree"]), kept) == typed.replace(
        "ohwx_style,", "ohwx_style, tree,"
    )
    # Escaped for the target, and the user's-only prompt is never rewritten.
    miku = prepare(PresampleRequest(prompt="Hatsune_Miku, ganyu_\\(genshin_impact\\)"), db)
    assert format_result(_draft(miku), miku) == "hatsune miku, ganyu \\(genshin impact\\)"
    mine = format_result(_draft(miku), miku, user_only=True)
    assert mine == "Hatsune_Miku, ganyu_\\(genshin_impact\\)"
