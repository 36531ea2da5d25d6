"""The caption field's sentence floor (``presample/caption_floor.py``)."""

from __future__ import annotations

from presample.caption_floor import CaptionFloor, complete_sentences

PROMPT = "tag: 1girl, scenery\ntarget: <|short|> <|tag_to_long|>\nlong:"


def test_complete_sentences_ignore_a_trailing_fragment() -> None:
    assert complete_sentences("") == 0
    assert complete_sentences(" a photo of a woman") == 0
    assert complete_sentences(" a photo of a woman. She") == 1
    assert complete_sentences(" A woman. A hill.") == 2
    assert complete_sentences(" A woman.. ") == 1  # empty pieces are no sentences


def test_the_caption_may_not_end_before_the_minimum() -> None:
    floor = CaptionFloor(frozenset({"long"}), 2)
    one = PROMPT + " a photo of a beautiful woman."
    # End of sequence, a newline, or a newline after more words that close no sentence.
    assert floor.allowed(one, [None, "\n", " She\n", " She", " She stands."]) == [
        False, False, False, True, True,
    ]  # fmt: skip
    # A piece that closes the second sentence may end the field with it.
    assert floor.allowed(one + " She stands", [".\n", "\n"]) == [True, False]
    two = one + " She stands on a hill."
    assert floor.allowed(two, [None, "\n"]) == [True, True]


def test_other_fields_and_lines_are_not_touched() -> None:
    floor = CaptionFloor(frozenset({"long"}), 4)
    tag_line = "target: <|tag_to_long|>\ntag: 1girl, scenery"
    assert floor.allowed(tag_line, [None, "\n"]) == [True, True]
    short = "short: a cat"
    assert floor.allowed(short, [None]) == [True]
    # A value that holds a colon is still the caption.
    assert floor.allowed(PROMPT + " Note: a cat.", [None]) == [False]


def test_a_field_the_step_continues_is_floored_too() -> None:
    floor = CaptionFloor(frozenset({"short", "long"}), 2)
    assert floor.allowed("short: a cat on a windowsill", [None, "."]) == [False, True]
    assert floor.allowed("long: a cat. It sleeps.", [None]) == [True]


def test_a_caption_that_restates_the_users_text_reaches_the_length() -> None:
    from presample.compose import Draft, reached_minimum
    from presample.tipo import Length, Task

    # The model wrote "<user's two sentences>. <one new sentence>."; the draft keeps
    # only the new one, but the field holds three: "short" (2 to 4) is reached.
    draft = Draft(tags={}, extended="A salt lake. Clouds above", generated="The water mirrors them")
    written = " A salt lake. Clouds above. The water mirrors them."
    task = Task.SHORT_TO_TAG_TO_LONG
    assert reached_minimum(draft, task, Length.SHORT, Length.SHORT, written=written)
    assert not reached_minimum(draft, task, Length.SHORT, Length.SHORT)
    assert not reached_minimum(draft, task, Length.SHORT, Length.LONG, written=written)
