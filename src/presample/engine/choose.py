"""Drawing one token from one row of logits with NumPy.

The llama.cpp backend hands us raw logits and we draw the token ourselves
rather than through llama.cpp's sampler chain, because only then are the
settings honoured the same way as on the transformers backend (the Hugging
Face order: repetition penalty, temperature, top-k, top-p, min-p) and can a ban
constraint look at candidate tokens as text before one is drawn. The
transformers backend does the same steps batched in torch
(``TorchBackend._sample``); the two are checked against each other in the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .backend import BOOST_CANDIDATES, Boost, Constraint, boost_additions
from .sampling import Sampling

# A greedy row keeps this many of its best candidates for the constraint.
GREEDY_CANDIDATES = 64
# One score in this many samples a row for top_k's bound.
STRIDE = 8
# How many tokens, best first, a constrained row checks at a time when every
# candidate of the filtered distribution is refused.
FALLBACK_CANDIDATES = 256


def candidates(
    logits: np.ndarray,
    sampling: Sampling,
    history: Sequence[int],
    boost: Callable[[Sequence[int]], Sequence[float | None]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The filtered distribution: (token ids best first, their probabilities, scaled logits).

    Tokens filtered out keep probability 0 so the best token is always first.
    ``boost`` maps the row's ``BOOST_CANDIDATES`` best token ids to a ``Boost``'s
    scores for them (bound to the row's text); see ``boost_additions``.
    """
    scores = logits.astype(np.float32, copy=True)
    if sampling.repetition_penalty != 1.0 and len(history):
        seen = np.unique(np.asarray(history, dtype=np.int64))
        seen = seen[seen < scores.shape[0]]
        values = scores[seen]
        scores[seen] = np.where(
            values < 0, values * sampling.repetition_penalty, values / sampling.repetition_penalty
        )
    scaled = scores / (sampling.temperature if sampling.temperature > 0 else 1.0)
    vocab = scaled.shape[0]
    if boost is not None:
        best = top_k(scaled, min(BOOST_CANDIDATES, vocab))
        adds = boost_additions(scaled[best].tolist(), boost(best.tolist()))
        scaled[best] += np.asarray(adds, dtype=scaled.dtype)
    k = sampling.top_k if 0 < sampling.top_k < vocab else vocab
    if sampling.greedy:
        k = min(k, GREEDY_CANDIDATES)
    ids = top_k(scaled, k)
    values = scaled[ids].astype(np.float64)
    probs = np.exp(values - values[0])
    probs /= probs.sum()
    if sampling.greedy:
        probs = np.zeros_like(probs)
        probs[0] = 1.0
        return ids, probs, scaled
    # Keep the smallest prefix whose mass reaches top_p (always the best token).
    if sampling.top_p < 1.0:
        probs[(np.cumsum(probs) - probs) >= sampling.top_p] = 0.0
    probs[probs < sampling.min_p * probs[0]] = 0.0
    return ids, probs, scaled


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The ids of the ``k`` best scores, best first, ties to the lower id (as
    ``torch.topk`` on the CPU).

    By hand because NumPy's ``argpartition`` over a 49k vocabulary took 0.5 ms
    of each token's 1.9 ms of drawing (benchmarks/bench_default_path.py). Every
    ``STRIDE``-th score is a sample of the row whose ``k``-th best is a lower
    bound of the row's ``k``-th best (the sample's ``k`` best are scores of the
    row), so the exact top ``k`` lies among the scores at or above it: usually
    a few hundred, sorted whole.
    """
    vocab = scores.shape[0]
    if k >= vocab:
        pool = np.arange(vocab)
    else:
        sample = scores[::STRIDE]
        if k < sample.shape[0]:
            bound = np.partition(sample, sample.shape[0] - k)[sample.shape[0] - k]
            pool = np.flatnonzero(scores >= bound)
        else:
            pool = np.arange(vocab)
    return pool[np.lexsort((pool, -scores[pool]))][:k]


def choose(
    logits: np.ndarray,
    sampling: Sampling,
    history: Sequence[int],
    rng: np.random.Generator,
    *,
    eos_id: int,
    constraint: Constraint | None = None,
    text: str = "",
    piece: Callable[[int], str | None] = lambda _: None,
    boost: Boost | None = None,
) -> int:
    """One token for one row; ``piece`` gives a token's text (``None`` for eos)."""
    lean = None
    if boost is not None:
        lean = lambda ids: boost.boosts(text, [piece(i) for i in ids])  # noqa: E731
    ids, probs, scaled = candidates(logits, sampling, history, lean)
    if constraint is not None:
        live = np.flatnonzero(probs > 0)
        allowed = constraint.allowed(text, [piece(int(ids[i])) for i in live])
        if not all(allowed):
            probs = probs.copy()
            probs[live[~np.asarray(allowed, dtype=bool)]] = 0.0
            if probs.sum() <= 0:
                return _fallback(constraint, text, scaled, piece, eos_id)
    if sampling.greedy:
        return int(ids[int(np.argmax(probs))])
    probs = probs / probs.sum()
    return int(ids[int(rng.choice(len(ids), p=probs))])


def _fallback(
    constraint: Constraint,
    text: str,
    scaled: np.ndarray,
    piece: Callable[[int], str | None],
    eos_id: int,
) -> int:
    """Every sampled candidate was refused: take the best allowed token overall.

    The vocabulary is searched best first, a block at a time: usually the first
    block has one, but a tag the line may only finish with a rare token (the
    real-tags rule, ``presample/tag_floor.py``) needs the search to go on. The
    blocks come from ``top_k`` of growing width rather than one sort of the
    whole vocabulary, which cost 3 ms of a token on the tag line.
    """
    vocab = scaled.shape[0]
    done = 0
    width = FALLBACK_CANDIDATES
    while done < vocab:
        order = top_k(scaled, min(width, vocab))
        for start in range(done, len(order), FALLBACK_CANDIDATES):
            block = order[start : start + FALLBACK_CANDIDATES]
            pieces = [piece(int(t)) for t in block]
            allowed = constraint.allowed(text, pieces)
            for token, written, ok in zip(block, pieces, allowed, strict=True):
                # An empty piece (an id past the tokenizer's vocabulary) passes every
                # rule but writes nothing: taking it would loop until the budget ends.
                if ok and written != "":
                    return int(token)
        done = len(order)
        width *= 8
    return eos_id
