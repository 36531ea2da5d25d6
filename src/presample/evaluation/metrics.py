"""Evaluation metrics: pure functions of plain data (numpy only for the embedding ones).

Every function here takes what one run produced (tag lists, texts, vectors) and
returns a number; averaging over runs is :mod:`presample.evaluation.run`'s job.
Tags are compared by :func:`tag_key` (case, spaces and underscores folded), so
``Long_Hair`` and ``long hair`` are the same tag.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from ..contradictions import contradicts

if TYPE_CHECKING:
    import numpy as np

EXPLICIT_REQUEST_RATINGS = frozenset({"explicit", "nsfw", "questionable"})
"""Request ratings that allow explicit tags; every other rating (general, safe,
sensitive) must get none."""


def tag_key(tag: str) -> str:
    return " ".join(tag.replace("_", " ").lower().split())


def _keys(tags: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(k for t in tags if (k := tag_key(t))))


def new_tags(output: Sequence[str], given: Sequence[str]) -> list[str]:
    """The output tags that were not in the input, in output order."""
    have = set(_keys(given))
    seen: set[str] = set()
    result = []
    for tag in output:
        key = tag_key(tag)
        if key and key not in have and key not in seen:
            seen.add(key)
            result.append(tag)
    return result


def real_tag_count(tags: Sequence[str], is_known: Callable[[str], bool]) -> int:
    """How many of ``tags`` are real tags (``is_known``: the tag database's lookup)."""
    return sum(1 for tag in tags if is_known(tag))


def share(part: float, whole: float) -> float | None:
    """``part / whole``, or ``None`` when there is nothing to share."""
    return part / whole if whole else None


def repeats(tags: Sequence[str]) -> bool:
    """Whether a tag appears twice (in any spelling)."""
    keys = [tag_key(t) for t in tags]
    return len(keys) != len(set(keys))


def contradicting(new: Sequence[str], line: Sequence[str]) -> list[str]:
    """The keys of the ``new`` tags that contradict another tag of ``line``
    (``presample.contradictions``)."""
    keys = [tag_key(t) for t in line]
    return [k for k in map(tag_key, new) if contradicts(k, [o for o in keys if o != k])]


def continuation_recall(output: Sequence[str], held_out: Sequence[str]) -> float | None:
    """Share of the held-out continuation tags that the output contains."""
    wanted = _keys(held_out)
    if not wanted:
        return None
    got = set(_keys(output))
    return sum(1 for k in wanted if k in got) / len(wanted)


def continuation_precision(new: Sequence[str], held_out: Sequence[str]) -> float | None:
    """Share of the new tags that are among the held-out tags (``None`` when none are new
    or nothing was held out): recall rewards adding many tags, this does not."""
    added = _keys(new)
    wanted = set(_keys(held_out))
    if not added or not wanted:
        return None
    return sum(1 for k in added if k in wanted) / len(added)


def preserved(output: Sequence[str], given: Sequence[str]) -> tuple[int, int]:
    """``(kept, given)``: how many input tags are still in the output."""
    wanted = _keys(given)
    got = set(_keys(output))
    return sum(1 for k in wanted if k in got), len(wanted)


def rating_respected(
    tags: Sequence[str], requested: str, rate: Callable[[Iterable[str]], str]
) -> bool | None:
    """``None`` when the request allows explicit content; else whether no tag is explicit.

    ``rate`` is :func:`presample.rating.infer_rating`, which says
    ``explicit`` as soon as one tag is.
    """
    if requested.lower() in EXPLICIT_REQUEST_RATINGS:
        return None
    return rate(tags) != "explicit"


_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def jaccard_distance(a: Iterable[str], b: Iterable[str]) -> float:
    """``1 - |A ∩ B| / |A ∪ B|``; two empty sets are identical (0)."""
    sa, sb = set(a), set(b)
    union = sa | sb
    return 1.0 - len(sa & sb) / len(union) if union else 0.0


def mean_pairwise_jaccard(sets: Sequence[Iterable[str]]) -> float | None:
    """Mean Jaccard distance over all pairs; ``None`` for fewer than two outputs."""
    items = [set(s) for s in sets]
    pairs = list(itertools.combinations(items, 2))
    if not pairs:
        return None
    return sum(jaccard_distance(a, b) for a, b in pairs) / len(pairs)


def distinct_share(outputs: Sequence[object]) -> float | None:
    """Distinct outputs / outputs (1.0: every seed gave something different)."""
    if not outputs:
        return None
    return len(set(outputs)) / len(outputs)


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not ``None``; ``None`` if there are none."""
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return sum(kept) / len(kept) if kept else None


def cosine_similarities(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two ``(n, d)`` arrays."""
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.einsum("ij,ij->i", a, b)
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


def frechet_distance(x: np.ndarray, y: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two sets of vectors (as FID).

    ``|mu_x - mu_y|^2 + tr(Sx + Sy - 2 sqrt(Sx Sy))``. With fewer samples than
    dimensions the covariances are singular; ``eps`` on the diagonal keeps the
    square root finite, as the reference FID code does.
    """
    import numpy as np
    from scipy import linalg

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"need two (n, d) arrays of the same d, got {x.shape} and {y.shape}")
    if len(x) < 2 or len(y) < 2:
        raise ValueError("need at least two vectors on each side")
    mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
    cov_x = np.atleast_2d(np.cov(x, rowvar=False))
    cov_y = np.atleast_2d(np.cov(y, rowvar=False))
    covmean = linalg.sqrtm(cov_x @ cov_y)
    if not np.isfinite(covmean).all():
        offset = np.eye(cov_x.shape[0]) * eps
        covmean = linalg.sqrtm((cov_x + offset) @ (cov_y + offset))
    covmean = np.real(covmean)
    diff = mu_x - mu_y
    value = diff @ diff + np.trace(cov_x) + np.trace(cov_y) - 2.0 * np.trace(covmean)
    return float(max(value, 0.0))
