"""The metric functions on hand-made examples with exact expected values."""

from __future__ import annotations

import pytest

from presample import lengths
from presample.evaluation import metrics as m
from presample.rating import infer_rating


def test_tag_key_and_new_tags() -> None:
    assert m.tag_key(" Long_Hair ") == "long hair"
    output = ["1girl", "Long hair", "smile", "smile", "blue_eyes"]
    assert m.new_tags(output, ["1girl", "long_hair"]) == ["smile", "blue_eyes"]
    assert m.new_tags([], ["1girl"]) == []


def test_real_tag_count_and_share() -> None:
    assert m.real_tag_count(["a", "b", "junk"], lambda t: t != "junk") == 2
    assert m.share(3, 4) == 0.75
    assert m.share(1, 0) is None


def test_continuation_recall() -> None:
    assert m.continuation_recall(["a", "B", "c"], ["b", "d"]) == 0.5
    assert m.continuation_recall(["a"], ["a", "a"]) == 1.0  # duplicates count once
    assert m.continuation_recall(["a"], ["x", "y", "z", "w"]) == 0.0
    assert m.continuation_recall(["a"], []) is None


def test_preserved() -> None:
    assert m.preserved(["a", "b"], ["a", "c"]) == (1, 2)
    assert m.preserved(["A_b", "c"], ["a b", "c"]) == (2, 2)


@pytest.mark.parametrize(
    ("count", "length", "hit"),
    [(5, "very_short", False), (6, "very_short", True), (18, "very_short", True),
     (19, "very_short", False), (36, "short", True), (37, "short", False),
     (36, "long", True), (54, "very_long", True), (72, "very_long", True),
     (73, "very_long", False)],
)  # fmt: skip
def test_tag_length_hit(count: int, length: str, hit: bool) -> None:
    assert lengths.tag_length_hit(count, length) is hit


def test_nl_length_hit() -> None:
    assert lengths.sentence_count("One. Two. Three.") == 3
    # Counted as the training labels count (a decimal point ends nothing).
    from presample.training.samples import nl_length

    caption = "A 3.5 m tall statue stands there. It is old. Moss covers it. Birds sit on it."
    assert lengths.sentence_count(caption) == 4 and nl_length(caption).value == "long"
    assert lengths.nl_length_hit(caption, nl_length(caption))
    assert lengths.nl_length_hit("One. Two. Three.", "short")  # 2..4
    assert not lengths.nl_length_hit("One.", "short")
    assert lengths.nl_length_hit("One.", "very_short")  # 1..2
    assert not lengths.nl_length_hit("One. Two. Three.", "very_short")
    assert not lengths.nl_length_hit("", "very_short")
    assert lengths.nl_length_hit(". ".join(["Word"] * 20), "very_long")  # 8.., no maximum


def test_rating_respected() -> None:
    assert m.rating_respected(["1girl", "smile"], "general", infer_rating) is True
    assert m.rating_respected(["1girl", "nude"], "general", infer_rating) is False
    assert m.rating_respected(["1girl", "nude"], "safe", infer_rating) is False
    assert m.rating_respected(["1girl", "bikini"], "sensitive", infer_rating) is True
    assert m.rating_respected(["1girl", "nude"], "explicit", infer_rating) is None


def test_diversity() -> None:
    assert m.jaccard_distance({"a", "b"}, {"b", "c"}) == pytest.approx(2 / 3)
    assert m.jaccard_distance(set(), set()) == 0.0
    assert m.mean_pairwise_jaccard([{"a"}, {"a"}, {"b"}]) == pytest.approx(2 / 3)
    assert m.mean_pairwise_jaccard([{"a"}]) is None
    assert m.distinct_share(["x", "x", "y"]) == pytest.approx(2 / 3)
    assert m.distinct_share([]) is None
    assert m.words("A cat's hat, a CAT!") == {"a", "cat's", "hat", "cat"}


def test_mean_skips_missing_values() -> None:
    assert m.mean([1.0, None, 0.0]) == 0.5
    assert m.mean([None]) is None


def test_cosine_similarities() -> None:
    np = pytest.importorskip("numpy")
    sims = m.cosine_similarities(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]),
                                 np.array([[0.0, 1.0], [2.0, 2.0], [1.0, 0.0]]))  # fmt: skip
    assert sims.tolist() == pytest.approx([0.0, 1.0, 0.0])


def test_frechet_distance() -> None:
    np = pytest.importorskip("numpy")
    pytest.importorskip("scipy")
    # 1-D: means 1 and 4, variances 2 and 2: 3^2 + 2 + 2 - 2 * sqrt(2 * 2) = 9.
    x = np.array([[0.0], [2.0]])
    y = np.array([[3.0], [5.0]])
    assert m.frechet_distance(x, y) == pytest.approx(9.0)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 4))
    assert m.frechet_distance(z, z) == pytest.approx(0.0, abs=1e-6)
    # Shifting every vector by d adds |d|^2.
    assert m.frechet_distance(z, z + np.array([1.0, 2.0, 0.0, 0.0])) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        m.frechet_distance(x, np.zeros((2, 3)))


def test_precision_is_the_share_of_new_tags_that_were_held_out() -> None:
    from presample.evaluation.metrics import continuation_precision

    assert continuation_precision(["a", "b", "c", "d"], ["b", "d", "x"]) == 0.5
    assert continuation_precision([], ["b"]) is None
    assert continuation_precision(["a"], []) is None
