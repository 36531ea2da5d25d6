"""CLIP token counts, the greedy bag merge, 77-token chunks, the prefix tree and flat prompts."""

from __future__ import annotations

import json

import pytest

from presample.canvas import (
    Canvas,
    GlobalDescription,
    Region,
    bag_canvas,
    bag_condition,
    check_lengths,
    chunk77,
    clip_encode,
    conditions,
    count_tokens,
    flat_prompt,
    greedy_bags,
    parse_canvas,
    prompt_tree,
)
from presample.canvas.layout import FULL, Condition
from presample.canvas.tokens import BOS, EOS, PAD

from .answers import FIXTURES, SEED_ANSWERS, seed_answer

REFERENCE = json.loads((FIXTURES / "reference.json").read_text(encoding="utf-8"))
needs_clip = pytest.mark.skipif(
    pytest.importorskip("importlib.util").find_spec("instant_clip_tokenizer") is None,
    reason="instant-clip-tokenizer not installed (presample[canvas], Python < 3.13)",
)


def words(text: str) -> list[int]:
    """A stand-in encoder: one token per word, so sizes are easy to read."""
    return [len(w) for w in text.split()]


def test_greedy_bags_seed_example() -> None:
    # The README's example: A..F of 25, 35, 5, 60, 15, 25 tokens make {A, B, C} = 65,
    # {D} = 60, {E, F} = 40, "each bag less than 75 tokens": a capacity of 74.
    sizes = [25, 35, 5, 60, 15, 25]
    bags = greedy_bags(sizes, 74)
    assert bags == [[0, 1, 2], [3], [4, 5]]
    assert [sum(sizes[i] for i in bag) for bag in bags] == [65, 60, 40]


def test_greedy_bags_fill_to_exactly_the_capacity_as_omosts_code() -> None:
    # Omost's greedy_partition opens a new bag only when the sum would *exceed* the
    # capacity (75 - prefix tokens), so a bag may hold exactly 75 tokens: bos + 75 + eos
    # is one full CLIP pass. With capacity 75 the README's sizes therefore pack as
    # {D, E} = 75 and {F}; the seed fixtures (computed with Omost's code) agree.
    sizes = [25, 35, 5, 60, 15, 25]
    assert greedy_bags(sizes, 75) == [[0, 1, 2], [3, 4], [5]]


def test_greedy_bags_edges() -> None:
    assert greedy_bags([], 75) == []
    assert greedy_bags([75], 75) == [[0]]
    assert greedy_bags([80, 1], 75) == [[0], [1]]  # oversized item still gets a bag
    assert greedy_bags([10, 80, 10], 75) == [[0], [1], [2]]
    assert greedy_bags([5, 5, 5], 0) == [[0], [1], [2]]
    assert greedy_bags([5, 5], -10) == [[0], [1]]  # prefixes alone over 75
    assert greedy_bags([0, 0, 75, 0], 75) == [[0, 1, 2, 3]]


def test_chunk77() -> None:
    assert chunk77([1, 2, 3]) == [BOS, 1, 2, 3, EOS] + [PAD] * 72
    assert len(chunk77(list(range(200)))) == 77
    assert chunk77(list(range(200)))[-2:] == [74, EOS]
    assert chunk77([], pad=0) == [BOS, EOS] + [0] * 75


def test_bags_with_a_stand_in_encoder() -> None:
    cond = Condition(
        kind="region", region=0, box=FULL, prefixes=("A b.", "C."),
        suffixes=tuple(" ".join(["w"] * n) for n in (25, 35, 5, 60, 15, 25)),
    )  # fmt: skip
    encoded = bag_condition(cond, encode=lambda t: [1] * len(t.split()))
    assert encoded.prefix_tokens == 3 and encoded.capacity == 72
    assert [b.suffixes for b in encoded.bags] == [(0, 1, 2), (3,), (4, 5)]
    assert [b.length for b in encoded.bags] == [68, 63, 43]
    assert encoded.bags[1].text.startswith("A b. C. w w")
    assert len(encoded.ids()) == 3 * 77


def test_condition_without_suffixes_gets_one_prefix_bag() -> None:
    cond = Condition(kind="global", region=None, box=FULL, prefixes=("A b.",), suffixes=())
    encoded = bag_condition(cond, encode=words)
    assert len(encoded.bags) == 1 and encoded.bags[0].suffixes == ()


def test_prompt_tree_paths() -> None:
    canvas = Canvas(
        global_description=GlobalDescription(
            description="A cat and a dog", detailed_descriptions=["Indoors"], color="white"
        ),
        regions=[
            Region(location="left", offset="no offset", area="small square", distance_to_viewer=1,
                   description="The cat on sofa", detailed_descriptions=["Orange fur.", "Asleep"],
                   color="orange"),
            Region(location="right", offset="no offset", area="small square", distance_to_viewer=2,
                   description="The dog", color="brown"),
        ],
    )  # fmt: skip
    tree = prompt_tree(canvas)
    assert tree.text == "A cat and a dog."
    assert tree.paths() == [
        "A cat and a dog. Indoors.",
        "A cat and a dog. The cat on sofa. Orange fur.",
        "A cat and a dog. The cat on sofa. Asleep.",
        "A cat and a dog. The dog.",
    ]


# --- with the real CLIP vocabulary ---------------------------------------------------------


@needs_clip
def test_clip_encode_matches_hugging_face_on_the_seed_texts() -> None:
    # ids from transformers 4.41.1 CLIPTokenizer (no ftfy, as Omost ran it)
    expected = json.loads((FIXTURES / "hf_clip_token_ids.json").read_text(encoding="utf-8"))
    assert len(expected) == 71
    for text, ids in expected.items():
        assert clip_encode(text) == ids, text


@needs_clip
def test_clip_encode_matches_hugging_face_on_edge_cases() -> None:
    rows = json.loads((FIXTURES / "hf_clip_edge_cases.json").read_text(encoding="utf-8"))
    for text, ids in rows:
        assert clip_encode(text) == ids, repr(text)


@needs_clip
def test_count_tokens() -> None:
    assert clip_encode("A person riding a motorcycle") == [320, 2533, 6765, 320, 10297]
    assert count_tokens("A person riding a motorcycle") == 5
    assert count_tokens("") == 0
    # The curly apostrophe is a byte-level token pair; the straight one merges into 's.
    assert count_tokens("The dragon’s body") == 6
    assert count_tokens("The dragon's body") == 4


@needs_clip
@pytest.mark.parametrize("name", SEED_ANSWERS)
def test_seed_bags_match_omost(name: str) -> None:
    ref = REFERENCE["answers"][name]["conditions"]
    encoded = bag_canvas(parse_canvas(seed_answer(name)))
    assert len(encoded) == len(ref)
    for got, want in zip(encoded, ref, strict=True):
        assert got.prefix_tokens == want["prefix_tokens"]
        assert list(got.suffix_tokens) == want["suffix_tokens"]
        assert [list(b.suffixes) for b in got.bags] == [b["suffixes"] for b in want["bags"]]
        assert [b.length for b in got.bags] == [b["tokens"] for b in want["bags"]]
        assert [b.chunk() for b in got.bags] == [b["ids77"] for b in want["bags"]]
        assert all(b.length <= 75 for b in got.bags)
        # Joining the texts with spaces tokenises to the concatenated ids.
        assert [tuple(clip_encode(b.text)) for b in got.bags] == [b.ids for b in got.bags]


@needs_clip
def test_seed_bag_sizes_first_answer() -> None:
    encoded = bag_canvas(parse_canvas(seed_answer(SEED_ANSWERS[0])))
    assert [[b.length for b in e.bags] for e in encoded] == [
        [67, 74, 57, 68],
        [60, 59, 45, 66, 50],
        [72, 58, 35, 69, 37],
        [66, 57, 38, 65, 36],
        [71, 67, 73, 35],
    ]


@needs_clip
def test_check_lengths_warns_over_75() -> None:
    canvas = parse_canvas(seed_answer(SEED_ANSWERS[0]))
    layers = conditions(canvas)
    assert check_lengths(layers) == []
    long = Condition(kind="global", region=None, box=FULL, prefixes=("Short.",),
                     suffixes=("ok.", "word " * 80))  # fmt: skip
    warnings = check_lengths([long])
    assert len(warnings) == 1
    w = warnings[0]
    assert (w.layer, w.part, w.index, w.tokens) == (0, "suffix", 1, 80)
    assert str(w).startswith("layer 0 suffix 1: 80 CLIP tokens (over 75): 'word word")
    # Omost cuts such a suffix to 75 tokens and gives it a bag of its own.
    encoded = bag_condition(long)
    assert encoded.suffix_tokens == (2, 75)
    assert [b.suffixes for b in encoded.bags] == [(0,), (1,)]
    assert encoded.bags[1].chunk()[-1] == EOS and encoded.bags[1].length == 77


@needs_clip
def test_flat_prompts() -> None:
    canvas = parse_canvas(seed_answer(SEED_ANSWERS[0]))
    bags = [b for e in bag_canvas(canvas) for b in e.bags]
    a1111 = flat_prompt(canvas, "a1111")
    assert a1111.split("\nBREAK\n") == [b.text for b in bags]
    assert len(bags) == 23
    plain = flat_prompt(canvas, "plain", regions=False)
    assert plain.split("\n\n") == [b.text for b in bag_canvas(canvas)[0].bags]
    assert plain.startswith("A fierce battle between warriors and a dragon. In this intense scene")
    comfy = flat_prompt(canvas, "comfyui")
    assert comfy.split("\n\n") == [b.text for b in bags]


def test_flat_prompt_escapes_brackets() -> None:
    canvas = Canvas(
        global_description=GlobalDescription(
            description="A (red) cat [big]", tags="cat (animal)", color="red"
        )
    )
    a1111 = flat_prompt(canvas, "a1111", encode=words)
    assert a1111 == r"A \(red\) cat \[big\]. cat \(animal\)."
    assert flat_prompt(canvas, "comfyui", encode=words) == r"A \(red\) cat [big]. cat \(animal\)."
    assert flat_prompt(canvas, "plain", encode=words) == "A (red) cat [big]. cat (animal)."
    with pytest.raises(ValueError):
        flat_prompt(canvas, "photoshop", encode=words)
