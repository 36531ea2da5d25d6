"""Reading A1111 / ComfyUI prompts: weights, escapes, BREAK, networks, sentences, bad input."""

from __future__ import annotations

import contextlib
import gzip
import json
import re
from collections.abc import Callable
from itertools import islice
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from presample.syntax import (
    ParsedPrompt,
    Piece,
    PromptSyntaxError,
    escape_tag,
    format_weighted,
    joined_text,
    looks_like_sentence,
    parse_prompt,
    render_pieces,
    unescape_tag,
)
from presample.tagdb import TagDatabase


def tags_of(prompt: str) -> list[tuple[str, float, str]]:
    """(text, weight, raw) of every tag, weights rounded to what a user can see."""
    parsed = parse_prompt(prompt)
    return [(p.text, round(p.weight, 4), p.raw) for p in parsed.pieces if p.kind == "tag"]


def kinds(prompt: str, is_known_tag: Callable[[str], bool] | None = None) -> list[tuple[str, str]]:
    parsed = parse_prompt(prompt, is_known_tag=is_known_tag)
    return [(p.kind, p.text) for p in parsed.pieces]


# ---------------------------------------------------------------------------- weights


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("masterpiece", [("masterpiece", 1.0, "masterpiece")]),
        ("(masterpiece)", [("masterpiece", 1.1, "(masterpiece)")]),
        ("((masterpiece))", [("masterpiece", 1.21, "((masterpiece))")]),
        ("(((masterpiece)))", [("masterpiece", 1.331, "(((masterpiece)))")]),
        ("[lowres]", [("lowres", 0.9091, "[lowres]")]),
        ("[[lowres]]", [("lowres", 0.8264, "[[lowres]]")]),
        ("(smile:1.2)", [("smile", 1.2, "(smile:1.2)")]),
        ("( smile : 1.5 )", [("smile", 1.5, "( smile : 1.5 )")]),
        ("((smile:1.2))", [("smile", 1.32, "((smile:1.2))")]),
        ("[(smile:1.2)]", [("smile", 1.0909, "[(smile:1.2)]")]),
        ("(smile:0.5)", [("smile", 0.5, "(smile:0.5)")]),
        ("(smile:.8)", [("smile", 0.8, "(smile:.8)")]),
        ("(smile:2.)", [("smile", 2.0, "(smile:2.)")]),
        ("(smile:-1)", [("smile", -1.0, "(smile:-1)")]),
        ("(long   hair:1.1)", [("long hair", 1.1, "(long   hair:1.1)")]),
        ("long_hair", [("long_hair", 1.0, "long_hair")]),
        (
            r"(ganyu \(genshin impact\):1.2)",
            [("ganyu (genshin impact)", 1.2, r"(ganyu \(genshin impact\):1.2)")],
        ),
        # Tags that share a group are written back one by one with the group's weight.
        (
            "(red hair, blue eyes:1.2)",
            [("red hair", 1.2, "(red hair:1.2)"), ("blue eyes", 1.2, "(blue eyes:1.2)")],
        ),
        (
            "(masterpiece, (best quality))",
            [
                ("masterpiece", 1.1, "(masterpiece:1.1)"),
                ("best quality", 1.21, "(best quality:1.21)"),
            ],
        ),
        (
            "[blurry, (lowres)]",
            # 1/1.1 * 1.1 is 1: written without brackets.
            [("blurry", 0.9091, "(blurry:0.91)"), ("lowres", 1.0, "lowres")],
        ),
        # Groups side by side without a comma are separate tags.
        (
            "(masterpiece)(best quality:1.2) 1girl",
            [
                ("masterpiece", 1.1, "(masterpiece)"),
                ("best quality", 1.2, "(best quality:1.2)"),
                ("1girl", 1.0, "1girl"),
            ],
        ),
    ],
)
def test_weights(prompt: str, expected: list[tuple[str, float, str]]) -> None:
    assert tags_of(prompt) == expected


def test_offsets_point_at_the_source() -> None:
    prompt = "masterpiece,  ((long hair)) , [blue eyes], (smile:1.2)"
    for piece in parse_prompt(prompt).pieces:
        assert prompt[piece.start : piece.end] == piece.raw


def test_bare_weight_outside_brackets_is_not_shown_to_the_model() -> None:
    # A1111 ignores "tag:1.2" without brackets, so the weight stays 1 and the
    # raw keeps what the user typed.
    assert tags_of("absurdres:1.2, 7:08, :3") == [
        ("absurdres", 1.0, "absurdres:1.2"),
        ("7:08", 1.0, "7:08"),
        (":3", 1.0, ":3"),
    ]


# ---------------------------------------------------------------------------- escapes


@pytest.mark.parametrize(
    ("prompt", "text"),
    [
        (r"ganyu \(genshin impact\)", "ganyu (genshin impact)"),
        (r"\[x\]", "[x]"),
        (r"\m/", r"\m/"),  # a Danbooru tag: a backslash before a letter is literal
        (r"back\\slash", "back\\slash"),
        (r"(\(:1.3)", "("),
    ],
)
def test_escapes_are_removed_from_the_text(prompt: str, text: str) -> None:
    parsed = parse_prompt(prompt)
    assert parsed.tags == (text,)
    assert parsed.pieces[0].raw == prompt


@pytest.mark.parametrize(
    ("tag", "escaped"),
    [
        ("ganyu (genshin impact)", r"ganyu \(genshin impact\)"),
        ("[x]", r"\[x\]"),
        (r"\m/", r"\m/"),
        ("a\\", "a\\\\"),
        ("\\(", "\\\\\\("),
        (":)", r":\)"),
        ("plain", "plain"),
    ],
)
def test_escape_and_unescape_round_trip(tag: str, escaped: str) -> None:
    assert escape_tag(tag) == escaped
    assert unescape_tag(escaped) == tag
    # Escaping what unescape produced does not escape twice.
    assert escape_tag(unescape_tag(escaped)) == escaped


@given(st.text())
def test_unescape_undoes_escape(tag: str) -> None:
    assert unescape_tag(escape_tag(tag)) == tag


@pytest.mark.parametrize(
    ("tag", "weight", "expected"),
    [
        ("smile", 1.2, "(smile:1.2)"),
        ("smile", 1.0, "smile"),
        ("smile", 1.001, "smile"),
        ("smile", 1.25, "(smile:1.25)"),
        ("smile", 1.3333, "(smile:1.33)"),
        ("smile", 0.5, "(smile:0.5)"),
        ("smile", 2, "(smile:2)"),
        ("smile", -0.5, "(smile:-0.5)"),
        ("smile", 0, "(smile:0)"),
        ("ganyu (genshin impact)", 1.2, r"(ganyu \(genshin impact\):1.2)"),
        ("ganyu (genshin impact)", 1, r"ganyu \(genshin impact\)"),
    ],
)
def test_format_weighted(tag: str, weight: float, expected: str) -> None:
    assert format_weighted(tag, weight) == expected
    # What we write is read back as the same tag and (rounded) weight.
    (piece,) = parse_prompt(expected).pieces
    assert piece.text == tag
    assert piece.weight == pytest.approx(round(weight, 2) if expected.startswith("(") else 1.0)


def test_format_weighted_rejects_nan() -> None:
    with pytest.raises(ValueError, match="finite"):
        format_weighted("x", float("nan"))


# -------------------------------------------------------------------------- emoticons


EMOTICONS = [
    ":d",
    ":3",
    ";)",
    ":)",
    ";(",
    ">:)",
    ">:(",
    ">_<",
    "^_^",
    ":o",
    ":p",
    ":<",
    "o_o",
    "d:",
]


@pytest.mark.parametrize("emoticon", EMOTICONS)
def test_emoticons_are_tags(emoticon: str) -> None:
    prompt = f"1girl, {emoticon}, smile"
    assert parse_prompt(prompt).tags == ("1girl", emoticon, "smile")
    assert parse_prompt(emoticon).tags == (emoticon,)


def test_emoticons_inside_weights() -> None:
    assert tags_of("(smile, ;))") == [("smile", 1.1, "(smile:1.1)"), (";)", 1.1, r"(;\):1.1)")]
    assert tags_of(r"(:\):1.2)") == [(":)", 1.2, r"(:\):1.2)")]
    # Not a whole chunk, so the bracket is a bracket: "(wink ;)" is a group.
    assert tags_of("(wink ;)") == [("wink ;", 1.1, "(wink ;)")]


# ----------------------------------------------------------------------------- BREAK


def test_break_splits_segments() -> None:
    parsed = parse_prompt("1girl, solo BREAK long hair,\nBREAK\nblue eyes")
    assert parsed.has_break
    assert parsed.segments == 3
    assert [(p.kind, p.text, p.segment) for p in parsed.pieces] == [
        ("tag", "1girl", 0),
        ("tag", "solo", 0),
        ("break", "BREAK", 0),
        ("tag", "long hair", 1),
        ("break", "BREAK", 1),
        ("tag", "blue eyes", 2),
    ]
    assert parsed.tags == ("1girl", "solo", "long hair", "blue eyes")
    assert parsed.render() == "1girl, solo\nBREAK\nlong hair\nBREAK\nblue eyes"


@pytest.mark.parametrize("prompt", ["break", "Break", "BREAKING", "BREAK_DANCE", "xBREAK"])
def test_break_is_only_the_whole_uppercase_word(prompt: str) -> None:
    parsed = parse_prompt(prompt)
    assert not parsed.has_break
    assert parsed.tags == (prompt,)
    assert parsed.segments == 1


def test_break_inside_a_weight_group() -> None:
    parsed = parse_prompt("(a BREAK b:1.2)")
    assert [(p.kind, p.text, p.weight, p.segment) for p in parsed.pieces] == [
        ("tag", "a", 1.2, 0),
        ("break", "BREAK", 1.0, 0),
        ("tag", "b", 1.2, 1),
    ]
    assert parse_prompt(parsed.render()).tags == ("a", "b")


def test_breaks_without_tags() -> None:
    parsed = parse_prompt("BREAK BREAK")
    assert parsed.tags == ()
    assert parsed.segments == 3
    assert parsed.render() == "BREAK\n\nBREAK"


# -------------------------------------------------------------------------- networks


@pytest.mark.parametrize(
    ("prompt", "networks", "tags"),
    [
        ("<lora:detail:0.6>", ("<lora:detail:0.6>",), ()),
        ("<hypernet:anime:1>, 1girl", ("<hypernet:anime:1>",), ("1girl",)),
        ("<lyco:style:0.5>", ("<lyco:style:0.5>",), ()),
        ("<anything_else:a:b:c>", ("<anything_else:a:b:c>",), ()),
        ("1girl <lora:x:1>", ("<lora:x:1>",), ("1girl",)),
        ("<lora:x:1>1girl", ("<lora:x:1>",), ("1girl",)),
        ("1girl <lora:x:1> solo", ("<lora:x:1>",), ("1girl", "solo")),
        # A1111 takes networks out first: brackets in their names do not count.
        ("<lora:style (v2):0.7>, smile", ("<lora:style (v2):0.7>",), ("smile",)),
        ("(<lora:x:1>:1.2)", ("<lora:x:1>",), ()),
        ("(smile, <lora:x:0.5>:1.2)", ("<lora:x:0.5>",), ("smile",)),
        ("embedding:EasyNegative, lowres", ("embedding:EasyNegative",), ("lowres",)),
        ("(embedding:bad_hands:1.2)", ("(embedding:bad_hands:1.2)",), ()),
        ("(embedding:bad_hands, x:1.2)", ("(embedding:bad_hands:1.2)",), ("x",)),
        ("xembedding:foo", (), ("xembedding:foo",)),
        (">_<, <3, <not a network>", (), (">_<", "<3", "<not a network>")),
    ],
)
def test_networks_anywhere(prompt: str, networks: tuple[str, ...], tags: tuple[str, ...]) -> None:
    parsed = parse_prompt(prompt)
    assert parsed.networks == networks
    assert parsed.tags == tags
    # Networks never reach the model: no tag or text contains one.
    assert not any(n in t for n in networks for t in parsed.tags + parsed.texts)
    again = parse_prompt(parsed.render())
    assert again.networks == networks
    assert again.tags == tags


def test_network_piece_content() -> None:
    (piece,) = parse_prompt("  <lora:add_detail:0.6>  ").pieces
    assert piece == Piece("network", "lora:add_detail:0.6", "<lora:add_detail:0.6>", 1.0, 0, 2, 23)


def test_network_inside_a_sentence() -> None:
    parsed = parse_prompt("a girl <lora:x:1> standing in a field")
    assert parsed.texts == ("a girl standing in a field",)
    assert parsed.networks == ("<lora:x:1>",)
    assert parsed.render() == "a girl standing in a field, <lora:x:1>"


# ---------------------------------------------------------- prompt editing, choices


@pytest.mark.parametrize(
    ("prompt", "text", "weight"),
    [
        ("[cat:dog:0.5]", "dog", 1.0),
        ("[dog:10]", "dog", 1.0),
        ("[cat::0.5]", "cat", 1.0),
        ("[cat|dog|bird]", "cat", 1.0),
        ("([cat:dog:0.5]:1.3)", "dog", 1.3),
        ("{red|blue} hair", "red hair", 1.0),
        ("[concept: ethereal]", "concept: ethereal", 0.9091),  # no number: a plain [ ] group
    ],
)
def test_prompt_editing_is_kept_whole(prompt: str, text: str, weight: float) -> None:
    (piece,) = parse_prompt(prompt).pieces
    assert (piece.kind, piece.text, round(piece.weight, 4), piece.raw) == (
        "tag",
        text,
        weight,
        prompt,
    )


def test_prompt_editing_with_commas_comes_back_intact() -> None:
    prompt = "1girl, [large hat, red scarf:0.2], smile"
    parsed = parse_prompt(prompt)
    assert parsed.tags == ("1girl", "large hat, red scarf", "smile")
    assert parsed.render() == prompt


# -------------------------------------------------------------- natural language


def test_mixed_tags_and_sentence() -> None:
    prompt = (
        "masterpiece, 1girl, a girl reading a book under a tree, (smile:1.1), <lora:detail:0.6>"
    )
    parsed = parse_prompt(prompt)
    assert [(p.kind, p.text, p.raw) for p in parsed.pieces] == [
        ("tag", "masterpiece", "masterpiece"),
        ("tag", "1girl", "1girl"),
        ("text", "a girl reading a book under a tree", "a girl reading a book under a tree"),
        ("tag", "smile", "(smile:1.1)"),
        ("network", "lora:detail:0.6", "<lora:detail:0.6>"),
    ]
    assert parsed.render() == prompt


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        # Comma-separated parts of one sentence are one text.
        (
            "a girl standing in a field, looking at the sky, at sunset.",
            [("text", "a girl standing in a field, looking at the sky, at sunset.")],
        ),
        ("A cat. It sleeps.", [("text", "A cat. It sleeps.")]),
        (
            "1girl, solo, A girl in a red dress walks through the rain., smile",
            [
                ("tag", "1girl"),
                ("tag", "solo"),
                ("text", "A girl in a red dress walks through the rain."),
                ("tag", "smile"),
            ],
        ),
        (
            "photo of a cat sitting on a windowsill, with sunlight on its fur, 4k",
            [
                ("text", "photo of a cat sitting on a windowsill, with sunlight on its fur"),
                ("tag", "4k"),
            ],
        ),
        # A line that ends a sentence ends the text; a wrapped line does not.
        (
            "A girl stands in a field.\nmasterpiece, best quality",
            [
                ("text", "A girl stands in a field."),
                ("tag", "masterpiece"),
                ("tag", "best quality"),
            ],
        ),
        (
            "a girl standing in\na field under the stars",
            [("text", "a girl standing in a field under the stars")],
        ),
        (
            "a girl standing in a field\nlooking at the sky with a smile",
            [("text", "a girl standing in a field looking at the sky with a smile")],
        ),
        (
            "(a girl sitting on a bench:1.2), smile",
            [("text", "a girl sitting on a bench"), ("tag", "smile")],
        ),
        (
            "score_9, st. louis \\(azur lane\\), 1.5 ratio",
            [("tag", "score_9"), ("tag", "st. louis (azur lane)"), ("tag", "1.5 ratio")],
        ),
        ("solo.", [("tag", "solo")]),
    ],
)
def test_sentences(prompt: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(prompt) == expected


def test_weighted_sentence_keeps_its_weight() -> None:
    (text,) = parse_prompt("(a girl sitting on a bench:1.2)").pieces
    assert (text.kind, text.weight, text.raw) == ("text", 1.2, "(a girl sitting on a bench:1.2)")
    (mixed,) = parse_prompt("a girl (sitting:1.3) on a bench").pieces
    assert (mixed.text, mixed.weight, mixed.raw) == (
        "a girl sitting on a bench",
        1.0,
        "a girl (sitting:1.3) on a bench",
    )
    shared = parse_prompt("(a girl sitting on a bench, blue eyes:1.2)").pieces
    assert [(p.kind, p.raw) for p in shared] == [
        ("text", "(a girl sitting on a bench:1.2)"),
        ("tag", "(blue eyes:1.2)"),
    ]


@pytest.mark.parametrize(
    "chunk",
    [
        "a girl reading a book under a tree",
        "the cat is sleeping",
        "She looks at the sky.",
        "A cat. It sleeps",
        "two girls holding hands",
        "girl with a sword in her hand",
        "a beautiful woman",
        "cat sitting on a windowsill in the sun",
        "A dog",
        "The monastery",
        "one two three four five six seven",
        "一个女孩在花园里。",
    ],
)
def test_sentence_chunks(chunk: str) -> None:
    assert looks_like_sentence(chunk)


@pytest.mark.parametrize(
    "chunk",
    [
        "1girl",
        "long hair",
        "looking at viewer",
        "hair over one eye",
        "hand on own chest",
        "two side up",
        "holding a sword",
        "very long hair",
        "extremely detailed CG unity 8k wallpaper",
        "a girl",
        "solo.",
        "best quality.",
        "k-on!",
        "st. louis",
        "1.5",
        "a_girl_standing_in_a_field_under_the_sky",
        ":d",
        ";)",
        "...",
        "!?",
        "",
    ],
)
def test_tag_chunks(chunk: str) -> None:
    assert not looks_like_sentence(chunk)


def test_known_tags_stay_tags() -> None:
    known = {"the legend of zelda", "short hair with long locks", "zelda: breath of the wild"}
    asked: list[str] = []

    def is_known(tag: str) -> bool:
        asked.append(tag)
        return tag in known

    prompt = "1girl, the legend of zelda, short hair with long locks, zelda: breath of the wild"
    # Without a tag database these read as one sentence...
    assert kinds(prompt) == [
        ("tag", "1girl"),
        ("text", "the legend of zelda, short hair with long locks, zelda: breath of the wild"),
    ]
    # ...with one they are the tags they are.
    assert kinds(prompt, is_known_tag=is_known) == [
        ("tag", "1girl"),
        ("tag", "the legend of zelda"),
        ("tag", "short hair with long locks"),
        ("tag", "zelda: breath of the wild"),
    ]
    # The lookup is only asked about chunks that look like sentences.
    assert set(asked) == known
    # A trailing full stop does not hide a known tag.
    assert kinds("the legend of zelda.", is_known_tag=is_known) == [("tag", "the legend of zelda")]


def test_known_tags_from_the_tag_database(db: TagDatabase) -> None:
    prompt = "looking at the viewer, short hair with long locks, the legend of zelda, solo"
    parsed = parse_prompt(prompt, is_known_tag=db.is_known)
    assert parsed.tags == ("short hair with long locks", "the legend of zelda", "solo")
    assert parsed.texts == ("looking at the viewer",)
    without = parse_prompt(prompt)
    assert without.tags == ("solo",)


# ----------------------------------------------------------------- messy real input


@pytest.mark.parametrize(
    ("prompt", "tags"),
    [
        ("masterpiece,,best quality, ,  1girl ,", ("masterpiece", "best quality", "1girl")),
        ("1girl，solo，long hair", ("1girl", "solo", "long hair")),
        ("1girl\r\nsolo\rlong hair\n\n\n", ("1girl", "solo", "long hair")),
        ("  1girl\t,\tsolo  ", ("1girl", "solo")),
        ("(1girl), , ,((solo)),", ("1girl", "solo")),
        ("", ()),
        (" , ,\n", ()),
        ("()", ()),
    ],
)
def test_messy_separators(prompt: str, tags: tuple[str, ...]) -> None:
    assert parse_prompt(prompt).tags == tags


def test_realistic_prompt() -> None:
    prompt = (
        "(masterpiece:1.2), best quality,  absurdres,\n"
        "1girl, solo, ganyu \\(genshin impact\\), (((long hair))), [blurry],\n"
        "a girl standing on a cliff, looking at the sea , at dusk.\n"
        "<lora:ganyu_v2:0.7> <lyco:lighting:0.4>\n"
        "BREAK\n"
        "ocean, (sunset:1.3), clouds,, embedding:EasyNegative,"
    )
    parsed = parse_prompt(prompt)
    assert parsed.tags == (
        "masterpiece",
        "best quality",
        "absurdres",
        "1girl",
        "solo",
        "ganyu (genshin impact)",
        "long hair",
        "blurry",
        "ocean",
        "sunset",
        "clouds",
    )
    assert parsed.texts == ("a girl standing on a cliff, looking at the sea, at dusk.",)
    assert parsed.networks == (
        "<lora:ganyu_v2:0.7>",
        "<lyco:lighting:0.4>",
        "embedding:EasyNegative",
    )
    assert parsed.segments == 2
    weights = {p.text: round(p.weight, 4) for p in parsed.pieces if p.kind == "tag"}
    assert weights["masterpiece"] == 1.2
    assert weights["long hair"] == 1.331
    assert weights["blurry"] == 0.9091
    assert weights["sunset"] == 1.3
    again = parse_prompt(parsed.render())
    assert again.tags == parsed.tags
    assert again.texts == parsed.texts
    assert again.networks == parsed.networks
    assert again.segments == 2


def test_render_pieces_accepts_strings() -> None:
    parsed = parse_prompt("1girl, <lora:x:0.5>")
    generated = [format_weighted("long hair", 1.2), "blue eyes"]
    assert render_pieces([*parsed.pieces, *generated]) == (
        "1girl, <lora:x:0.5>, (long hair:1.2), blue eyes"
    )
    assert ParsedPrompt().render() == ""


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("prompt", "message", "column"),
    [
        ("masterpiece, (1girl", "unbalanced '(' at column 14", 14),
        ("1girl)", "unbalanced ')' at column 6", 6),
        ("[1girl", "unbalanced '[' at column 1", 1),
        ("1girl]", "unbalanced ']' at column 6", 6),
        ("((1girl)", "unbalanced '(' at column 1", 1),
        ("(smile:1.2))", "unbalanced ')' at column 12", 12),
        ("(1girl]", "unbalanced ']' at column 7: expected ')' to close the '(' at column 1", 7),
        (
            "[1girl:1.2)",
            "unbalanced ')' at column 11: expected ']' to close the '[' at column 1",
            11,
        ),
        ("a,\nb, (c", "unbalanced '(' at line 2, column 4", 4),
        ("1girl\x00", "control character U+0000 not allowed at column 6", 6),
        ("1gi\x07rl", "control character U+0007 not allowed at column 4", 4),
        ("\x1b[31m", "control character U+001B not allowed at column 1", 1),
        ("x\x7f", "control character U+007F not allowed at column 2", 2),
    ],
)
def test_errors_say_what_and_where(prompt: str, message: str, column: int) -> None:
    with pytest.raises(PromptSyntaxError) as info:
        parse_prompt(prompt)
    assert str(info.value) == message
    assert info.value.column == column
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_tab_and_newline_are_allowed() -> None:
    assert parse_prompt("1girl,\tsolo\nsmile").tags == ("1girl", "solo", "smile")


def test_one_megabyte_prompt_fails_clearly() -> None:
    prompt = "masterpiece, " * 80_000 + "("
    with pytest.raises(PromptSyntaxError, match=r"prompt too long: 1040001 characters"):
        parse_prompt(prompt)


def test_ten_thousand_tags_fail_clearly() -> None:
    prompt = ", ".join(f"tag{i}" for i in range(10_000))
    with pytest.raises(PromptSyntaxError, match=r"too many pieces \(limit 5000") as info:
        parse_prompt(prompt)
    assert info.value.column == prompt.index("tag5000") + 1
    assert len(parse_prompt(prompt, max_pieces=10_000).tags) == 10_000


def test_limits_are_parameters() -> None:
    with pytest.raises(PromptSyntaxError, match="limit 10"):
        parse_prompt("x" * 11, max_chars=10)
    with pytest.raises(PromptSyntaxError, match="limit 2"):
        parse_prompt("a, b, c", max_pieces=2)


def test_absurd_weights_are_errors_not_crashes() -> None:
    with pytest.raises(PromptSyntaxError, match="weight too large at column 1"):
        parse_prompt("(x:" + "9" * 400 + ")")
    with pytest.raises(PromptSyntaxError, match="weight too large"):
        parse_prompt("(" * 9000 + "x" + ")" * 9000)


@pytest.mark.parametrize(
    "prompt",
    [
        "(" * 150_000,
        "<a:" * 60_000,
        ":" * 190_000,
        "\\" * 190_000,
        "{a|" * 60_000,
        "[" + "a|" * 90_000 + "]",
        "word " * 38_000,
        "(" + "a, " * 60_000 + "b)",
        "a girl in a field, " * 10_000,
        ";)," * 60_000,
    ],
    ids=lambda p: repr(p[:12]),
)
def test_pathological_prompts_finish(prompt: str) -> None:
    # How the time grows with the size is measured by benchmarks/bench_syntax.py.
    with contextlib.suppress(PromptSyntaxError):
        parse_prompt(prompt, max_pieces=1_000_000)


def test_not_a_string() -> None:
    with pytest.raises(TypeError):
        parse_prompt(b"1girl")  # type: ignore[arg-type]


# ------------------------------------------------------------------------- properties

PROMPT_ALPHABET = st.sampled_from(
    [
        *"ab ,，\n\t\r()[]{}<>:;|\\._^-!?.0123456789é",
        *("BREAK", "<lora:x:0.5>", "embedding:e", "\x00", "1.2", ":1.2)", "a girl in the field"),
    ]
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PROMPT_ALPHABET, max_size=40).map("".join) | st.text(max_size=80))
def test_random_text_raises_only_prompt_syntax_error(prompt: str) -> None:
    try:
        parsed = parse_prompt(prompt)
    except PromptSyntaxError as error:
        assert "\n" not in str(error)
        return
    starts = [p.start for p in parsed.pieces]
    assert starts == sorted(starts)
    for piece in parsed.pieces:
        assert 0 <= piece.start <= piece.end <= len(prompt)
        assert piece.text == piece.text.strip()
        assert piece.raw
    # Whatever we write back is a valid prompt with the same networks.
    again = parse_prompt(parsed.render())
    assert again.networks == parsed.networks
    assert again.segments == parsed.segments


TAG_WORDS = st.sampled_from(
    [
        "1girl",
        "long hair",
        "blue_eyes",
        "ganyu (genshin impact)",
        ":d",
        ";)",
        "^_^",
        ">_<",
        "looking at viewer",
        "[x]",
        "a\\b",
        "score_9",
    ]
)
WEIGHT_STYLES = st.sampled_from(["plain", "paren", "double", "square", "explicit", "nested"])
WEIGHTS = st.sampled_from([0.5, 0.8, 1.15, 1.2, 1.5, 2.0])


@st.composite
def tag_prompts(draw: st.DrawFn) -> tuple[str, list[tuple[str, float]], list[str], int]:
    """A prompt written the way people write tags, with what it should parse to."""
    parts: list[str] = []
    expected: list[tuple[str, float]] = []
    networks: list[str] = []
    segments = 1
    for _ in range(draw(st.integers(1, 12))):
        choice = draw(st.integers(0, 9))
        if choice == 0:
            network = f"<lora:net{len(networks)}:{draw(WEIGHTS)}>"
            networks.append(network)
            parts.append(network)
            continue
        if choice == 1:
            parts.append("BREAK")
            segments += 1
            continue
        tag = draw(TAG_WORDS)
        escaped = escape_tag(tag)
        style = draw(WEIGHT_STYLES)
        weight = draw(WEIGHTS)
        written, value = {
            "plain": (escaped, 1.0),
            "paren": (f"({escaped})", 1.1),
            "double": (f"(({escaped}))", 1.21),
            "square": (f"[{escaped}]", 1 / 1.1),
            "explicit": (f"({escaped}:{weight})", weight),
            "nested": (f"(({escaped}:{weight}))", weight * 1.1),
        }[style]
        parts.append(written)
        expected.append((tag, value))
    separators = [draw(st.sampled_from([", ", ",", " , ", "\n", "，", ",\n"])) for _ in parts]
    prompt = "".join(p + s for p, s in zip(parts, separators, strict=True))
    return prompt, expected, networks, segments


@settings(max_examples=300)
@given(tag_prompts())
def test_tag_prompts_parse_and_round_trip(
    case: tuple[str, list[tuple[str, float]], list[str], int],
) -> None:
    prompt, expected, networks, segments = case
    parsed = parse_prompt(prompt)
    got = [(p.text, p.weight) for p in parsed.pieces if p.kind == "tag"]
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert [w for _, w in got] == pytest.approx([w for _, w in expected])
    assert list(parsed.networks) == networks
    assert parsed.segments == segments
    assert parsed.texts == ()
    again = parse_prompt(parsed.render())
    assert again.tags == parsed.tags
    assert again.networks == parsed.networks
    assert again.segments == parsed.segments
    assert [p.weight for p in again.pieces if p.kind == "tag"] == pytest.approx(
        [w for _, w in got], abs=0.006
    )


# ------------------------------------------------------------------ real user prompts


def _civitai_prompts(shared_data: Path, limit: int) -> list[str]:
    path = shared_data / "prompts" / "civitai_prompts.jsonl.gz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = (json.loads(line) for line in fh if line.strip())
        return [row["prompt"] for row in islice(rows, limit) if isinstance(row.get("prompt"), str)]


def test_real_prompts_parse(shared_data: Path) -> None:
    prompts = _civitai_prompts(shared_data, 2_000)
    errors = 0
    with_text = 0
    for prompt in prompts:
        try:
            parsed = parse_prompt(prompt)
        except PromptSyntaxError as error:
            assert "\n" not in str(error)
            errors += 1
            continue
        with_text += bool(parsed.texts)
        # Every LoRA is kept, and what we write back is readable again.
        loras = [n for n in parsed.networks if n.startswith("<lora:")]
        assert loras == re.findall(r"<lora:[^<>]+>", prompt)
        again = parse_prompt(parsed.render())
        assert again.networks == parsed.networks
        assert len(again.tags) >= len(parsed.tags) - 2
    # About 2% of real prompts have unbalanced brackets; nearly all the rest parse.
    assert errors < len(prompts) * 0.05
    assert with_text > 0


@pytest.mark.parametrize("prompt", ["a dog", "A modern kitchen", "a dog <lora:x:1>"])
def test_a_lone_article_phrase_is_text(prompt: str) -> None:
    kinds = [p.kind for p in parse_prompt(prompt).pieces if p.kind != "network"]
    assert kinds == ["text"]


@pytest.mark.parametrize("prompt", ["(a dog:1.2)", "[a dog:a cat:0.5]", "{a dog|a cat}"])
def test_a_lone_phrase_with_syntax_stays_a_tag_and_keeps_it(prompt: str) -> None:
    (piece,) = parse_prompt(prompt).pieces
    assert piece.kind == "tag" and piece.raw == prompt


def test_an_article_phrase_among_tags_or_a_known_tag_stays_a_tag() -> None:
    among = parse_prompt("masterpiece, a girl, long hair").pieces
    assert [p.kind for p in among] == ["tag", "tag", "tag"]
    (known,) = parse_prompt("the end", is_known_tag=lambda t: t == "the end").pieces
    assert known.kind == "tag"


def test_cjk_commas_separate_tags_and_stay_inside_text() -> None:
    assert kinds("猫、犬、花") == [("tag", "猫"), ("tag", "犬"), ("tag", "花")]
    assert kinds("1girl，solo，smile") == [
        ("tag", "1girl"), ("tag", "solo"), ("tag", "smile"),
    ]  # fmt: skip
    # A phrase comes back with the comma it was typed with.
    chinese = "一个女孩站在花田里，风吹着她的头发"
    assert kinds(chinese) == [("text", chinese)]
    clause = "少女が、花畑に立っている。"
    assert kinds(f"1girl, {clause}, smile")[1] == ("text", clause)


def test_texts_split_by_weights_and_networks_join_with_the_typed_comma() -> None:
    source = ("1girl, a girl standing in a field, wind blowing her hair, (masterpiece:1.2), "
              "<lora:detail:0.6>, looking over her shoulder, a small farmhouse")  # fmt: skip
    assert joined_text(parse_prompt(source), source) == (
        "a girl standing in a field, wind blowing her hair, looking over her shoulder, "
        "a small farmhouse"
    )
    parsed = parse_prompt("A cat sleeps on the sofa. <lora:x:1> It dreams of fish.")
    assert joined_text(parsed, "A cat sleeps on the sofa. <lora:x:1> It dreams of fish.") == (
        "A cat sleeps on the sofa. It dreams of fish."
    )
