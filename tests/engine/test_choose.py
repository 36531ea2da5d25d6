"""The NumPy sampler (llama.cpp backend) filters exactly like the torch one."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

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
