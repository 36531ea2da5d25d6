"""The NumPy sampler (llama.cpp backend) filters exactly like the torch one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from presample.engine.backend import boost_additions  # noqa: E402
from presample.engine.choose import candidates, choose, top_k  # noqa: E402
from presample.engine.sampling import Sampling  # noqa: E402
from presample.engine.torch_backend import filtered  # noqa: E402

SETTINGS = [
    Sampling(),
    Sampling(temperature=1.0, top_p=1.0, top_k=0, min_p=0.0, repetition_penalty=1.0),
    Sampling(temperature=0.7, top_p=0.5, top_k=5, min_p=0.0, repetition_penalty=1.3),
    Sampling(temperature=1.5, top_p=0.9, top_k=0, min_p=0.2, repetition_penalty=0.8),
    Sampling(temperature=0, top_k=3),
]


@pytest.mark.parametrize("seed", range(5))
def test_numpy_and_torch_keep_the_same_candidates_with_the_same_probabilities(seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(len(SETTINGS), 500)).astype(np.float32)
    history = [list(rng.integers(0, 500, size=20)) for _ in SETTINGS]
    ids_t, probs_t, _ = filtered(torch.from_numpy(logits.copy()), SETTINGS, history)
    for row, sampling in enumerate(SETTINGS):
        ids_n, probs_n, _ = candidates(logits[row], sampling, history[row])
        keep_t = probs_t[row] > 0
        keep_n = probs_n > 0
        assert ids_t[row][keep_t].tolist() == ids_n[keep_n].tolist()
        np.testing.assert_allclose(
            probs_t[row][keep_t].numpy(), probs_n[keep_n], rtol=1e-4, atol=1e-6
        )


@pytest.mark.parametrize("seed", range(20))
def test_top_k_is_the_exact_best_k_with_ties_to_the_lower_id(seed: int) -> None:
    rng = np.random.default_rng(seed)
    vocab = int(rng.integers(1, 3000))
    # Rounded scores make ties, -inf ones masked tokens; both must not change the answer.
    scores = np.round(rng.normal(0, 3, size=vocab), int(rng.integers(0, 3))).astype(np.float32)
    scores[rng.random(vocab) < rng.random() * 0.9] = -np.inf
    for k in (1, 3, 60, 64, vocab // 2 + 1, vocab, vocab + 5):
        expected = np.lexsort((np.arange(vocab), -scores))[:k]
        assert top_k(scores, k).tolist() == expected.tolist(), (vocab, k)


def test_greedy_takes_the_best_and_a_seed_reproduces() -> None:
    logits = np.array([0.1, 2.0, 1.9, -1.0], dtype=np.float32)
    assert choose(logits, Sampling(temperature=0), [], np.random.default_rng(0), eos_id=3) == 1
    warm = Sampling(temperature=2.0, top_p=1.0, top_k=0, min_p=0.0, repetition_penalty=1.0)
    draws = [choose(logits, warm, [], np.random.default_rng(7), eos_id=3) for _ in range(3)]
    assert len(set(draws)) == 1
    many = {choose(logits, warm, [], np.random.default_rng(s), eos_id=3) for s in range(50)}
    assert many == {0, 1, 2, 3}  # every token can be drawn at a high temperature


class BanEverythingBut:
    def __init__(self, allowed: str) -> None:
        self.allowed_text = allowed

    def allowed(self, text: str, pieces: list[str | None]) -> list[bool]:
        return [p == self.allowed_text for p in pieces]


def test_constraint_steers_to_the_best_allowed_token() -> None:
    logits = np.array([5.0, 4.0, 3.0, -9.0], dtype=np.float32)
    names = ["a", "b", "c", None]
    pick = choose(
        logits,
        Sampling(temperature=0.5, top_k=2, min_p=0.0, repetition_penalty=1.0),
        [],
        np.random.default_rng(0),
        eos_id=3,
        constraint=BanEverythingBut("c"),
        piece=lambda t: names[t],
    )
    # "c" is outside top-k: every sampled candidate is banned, so the fallback finds it.
    assert pick == 2


class RefuseNames:
    def __init__(self, *refused: str) -> None:
        self.refused = refused

    def allowed(self, text: str, pieces: list[str | None]) -> list[bool]:
        return [p not in self.refused for p in pieces]


def test_the_fallback_never_takes_a_token_that_writes_nothing() -> None:
    # Token 1 is an id past the tokenizer (empty text): every rule lets it pass,
    # but taking it would write nothing, again and again.
    logits = np.array([5.0, 4.0, 3.0, -9.0], dtype=np.float32)
    names = ["a", "", "c", None]
    pick = choose(
        logits,
        Sampling(temperature=0.5, top_k=1, min_p=0.0, repetition_penalty=1.0),
        [],
        np.random.default_rng(0),
        eos_id=3,
        constraint=RefuseNames("a"),
        piece=lambda t: names[t],
    )
    assert pick == 2


@pytest.mark.parametrize("seed", range(10))
def test_the_fallback_takes_the_best_allowed_token_of_the_whole_vocabulary(seed: int) -> None:
    from presample.engine.choose import _fallback

    rng = np.random.default_rng(seed)
    vocab = 5000
    scores = np.round(rng.normal(0, 3, size=vocab), 1).astype(np.float32)  # with ties
    allowed_ids = set(rng.choice(vocab, size=int(rng.integers(0, 4)), replace=False).tolist())

    class Only:
        def allowed(self, text: str, candidates: list) -> list[bool]:
            return [c is not None and int(c) in allowed_ids for c in candidates]

    order = np.lexsort((np.arange(vocab), -scores))  # best first, ties to the lower id
    expected = next((int(t) for t in order if int(t) in allowed_ids), 2)
    assert _fallback(Only(), "", scores, lambda t: str(t), eos_id=2) == expected


class Lean:
    """A ``Boost`` that scores tokens by their text: ``+`` tokens up, ``-`` down, ``.`` out."""

    def boosts(self, text: str, candidates: Sequence[str | None]) -> list[float | None]:
        marks = {"+": 3.0, "-": -2.0, "=": 0.0}
        return [None if c is None or c == "." else marks[c[0]] for c in candidates]


PIECES = ["+a", "-b", "=c", ".", "+d", "=e"] * 100


def piece(token: int) -> str | None:
    return None if token == len(PIECES) - 1 else PIECES[token]


@pytest.mark.parametrize("seed", range(3))
def test_numpy_and_torch_boost_alike(seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(len(SETTINGS), len(PIECES))).astype(np.float32)
    history = [list(rng.integers(0, len(PIECES), size=20)) for _ in SETTINGS]

    def lean(ids: Sequence[int]) -> list[float | None]:
        return Lean().boosts("", [piece(i) for i in ids])

    ids_t, probs_t, _ = filtered(
        torch.from_numpy(logits.copy()), SETTINGS, history, [lean] * len(SETTINGS)
    )
    plain_t, _, _ = filtered(torch.from_numpy(logits.copy()), SETTINGS, history)
    changed = False
    for row, sampling in enumerate(SETTINGS):
        ids_n, probs_n, _ = candidates(logits[row], sampling, history[row], lean)
        keep_t, keep_n = probs_t[row] > 0, probs_n > 0
        assert ids_t[row][keep_t].tolist() == ids_n[keep_n].tolist()
        np.testing.assert_allclose(probs_t[row][keep_t].numpy(), probs_n[keep_n], rtol=1e-4)
        changed |= ids_t[row].tolist() != plain_t[row].tolist()
    assert changed


def test_a_boost_moves_probability_only_among_the_tokens_it_scores() -> None:
    scaled = [2.0, 1.5, 1.0, 0.5, 0.0]
    scores: list[float | None] = [0.0, 3.0, None, -1.0, 0.0]
    adds = boost_additions(scaled, scores)
    before = np.exp(np.array(scaled))
    after = np.exp(np.array(scaled) + np.array(adds))
    before, after = before / before.sum(), after / after.sum()
    assert adds[2] == 0.0
    assert after[2] == pytest.approx(before[2])  # the token it left out keeps its share
    group = [0, 1, 3, 4]
    assert after[group].sum() == pytest.approx(before[group].sum())
    assert after[1] > before[1] and after[3] < before[3]
    assert boost_additions(scaled, [None] * 5) == [0.0] * 5


def test_greedy_follows_the_boost_and_the_constraint_still_has_the_last_word() -> None:
    logits = np.array([2.0, 1.8, 1.7, 0.0], dtype=np.float32)
    texts = ["=x", "+y", "+z", "=w"]
    greedy = Sampling(temperature=0)
    rng = np.random.default_rng(0)
    kwargs = {"eos_id": 3, "piece": lambda t: texts[t]}
    assert choose(logits, greedy, [], rng, **kwargs) == 0
    assert choose(logits, greedy, [], rng, boost=Lean(), **kwargs) == 1

    class NoY:
        def allowed(self, text: str, candidates: Sequence[str | None]) -> list[bool]:
            return [c != "+y" for c in candidates]

    assert choose(logits, greedy, [], rng, boost=Lean(), constraint=NoY(), **kwargs) == 2
