"""Judging whether a caption written from tags talks about them."""

from __future__ import annotations

from presample.caption_fit import caption_conflicts, caption_fit, names_people, tag_words

SCENERY = tag_words(["1girl", "scenery", "blue sky", "mountains", "long_hair", "standing"])


def test_on_topic_caption_beats_a_stock_caption() -> None:
    on = "A woman with long hair stands on a mountain under a blue sky."
    off = "A detailed close-up captures a vibrant red wine glass on a gray table."
    assert caption_fit(on, SCENERY) > caption_fit(off, SCENERY)
    assert caption_fit(off, SCENERY) == 0.0


def test_count_tags_mean_people_and_plurals_meet() -> None:
    assert {"girl", "woman"} <= tag_words(["1girl"])
    assert {"boy", "man"} <= tag_words(["2boys"])
    assert "mountain" in SCENERY and "cat" in tag_words(["cats"])
    # Qualifiers in brackets are names, not words a caption uses.
    assert tag_words([r"cat girl \(andaerz\)"]) == {"cat", "girl"}


def test_longer_is_not_better_by_itself() -> None:
    short = "A girl under a blue sky."
    padded = short + " The wine glass and the clock and the lamp are on the old wooden table."
    assert caption_fit(short, SCENERY) > caption_fit(padded, SCENERY)


def test_empty_inputs_score_zero() -> None:
    assert caption_fit("", SCENERY) == 0.0
    assert caption_fit("A girl.", set()) == 0.0


def test_names_people_wants_a_person_word_when_tags_count_people() -> None:
    assert names_people("A woman stands on a hill.", ["1girl", "scenery"]) is True
    assert names_people("A vibrant red wine glass.", ["1girl", "red nails"]) is False
    assert names_people("Two men talk.", ["2boys"]) is True
    assert names_people("A girl waves.", ["1boy"]) is False
    assert names_people("A cat sleeps.", ["cat", "sofa"]) is None


def test_a_caption_conflicts_only_where_it_and_the_tags_both_say_something() -> None:
    tags = ["1girl", "long hair", "blonde hair", "blue eyes"]
    assert caption_conflicts("A woman with short brown hair and green eyes.", tags) == 3
    assert caption_conflicts("A woman with long, flowing blond hair and blue eyes.", tags) == 0
    assert caption_conflicts("A woman with blonde hair and green eyes.", tags) == 1
    assert caption_conflicts("A woman on a beach.", tags) == 0  # says nothing of them
    assert caption_conflicts("A man with short black hair.", ["1boy", "smile"]) == 0
    # Two-tone hair: either colour agrees.
    assert caption_conflicts("Her pink hair.", ["black hair", "pink hair"]) == 0
    assert caption_conflicts("Her shoulder-length hair.", ["very long hair"]) == 1
