"""Inputs the model cannot ground: what it should do with them, measured.

The held-out records are prompts the training data resembles. Users also type
an empty box, Japanese or Chinese, a photographer's sentence, or a very long
list. For each the expected behaviour is the same few rules, checked per run:

- the user's words come back (every piece of the input between commas, ASCII,
  full-width or Japanese, is in the prompt), however little the model
  understood of them;
- no name is invented (none of these inputs names an artist, a character or a
  copyright, so none may be added);
- no new tag contradicts another tag of the result (``contradictions.py``);
- no tag appears twice;
- the run answers (no error) and adds something, unless the input is long
  enough already or the model cannot read it at all (Chinese or Japanese only:
  the prompt comes back as typed, with a note saying why, rather than a random
  picture).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..request import PresampleRequest, PresampleResult
from ..syntax import COMMAS
from . import metrics as m

NAMES = ("artist", "characters", "copyrights")
# New tags may go between the user's tags, after any comma the prompt syntax reads.
_SEPARATORS = "|".join(map(re.escape, COMMAS))
LINE = ("special", "general")


@dataclass(frozen=True)
class HardInput:
    name: str
    prompt: str


LONG_TAGS = (
    "1girl, solo, long hair, looking at viewer, smile, blush, open mouth, bangs, blue eyes, "
    "brown hair, shirt, hair ornament, long sleeves, dress, holding, jewelry, sitting, "
    "closed mouth, standing, flower, outdoors, day, sky, cloud, tree, blue sky, petals, "
    "cherry blossoms, wind, grass, hair flower, white dress, floating hair, field, "
    "depth of field, light particles, sunlight, hand up, smile, scenery"
)
HARD_INPUTS: tuple[HardInput, ...] = (
    HardInput("empty", ""),
    HardInput("one tag", "1girl"),
    HardInput("scenery tag", "scenery"),
    HardInput("Japanese sentence", "夕焼けの海辺に立つ少女、長い黒髪、白いワンピース"),
    HardInput("Chinese sentence", "一只猫坐在窗台上, 窗外下着雪"),
    HardInput("Japanese and tags", "1girl, 夕焼け, beach, smile"),
    HardInput("photo sentence", "a red vintage car parked on a rainy street at night"),
    HardInput("photographer's prompt", "portrait photo of an old fisherman, 85mm, natural light"),
    HardInput("long tag list", LONG_TAGS),
    HardInput(
        "long paragraph",
        "A quiet mountain village at dawn, mist rolling down the slopes between old wooden "
        "houses. Smoke rises from a few chimneys and a narrow stone path leads past a small "
        "shrine towards the river, where an old bridge crosses the water. In the distance "
        "snowy peaks catch the first light of the sun.",
    ),
)


def hard_requests(seeds: Sequence[int]) -> list[PresampleRequest]:
    """One request per input and seed, in ``HARD_INPUTS`` order; the model card's
    lengths (none is set here)."""
    return [PresampleRequest(prompt=h.prompt, seed=s) for h in HARD_INPUTS for s in seeds]


def hard_input_metrics(
    results: Sequence[PresampleResult | Exception], seeds: Sequence[int]
) -> tuple[dict[str, float | int | None], list[dict[str, Any]]]:
    """The rules above over ``results`` (``hard_requests(seeds)`` answered in order)."""
    samples: list[dict[str, Any]] = []
    checks: dict[str, list[float]] = {
        "kept": [], "no_names": [], "consistent": [], "no_repeats": [], "answered": [],
    }  # fmt: skip
    flat = iter(results)
    for hard in HARD_INPUTS:
        pieces = [p.strip() for p in re.split(_SEPARATORS, hard.prompt) if p.strip()]
        for seed in seeds:
            result = next(flat)
            if isinstance(result, Exception):
                for values in checks.values():
                    values.append(0.0)
                samples.append({"kind": "hard", "input": hard.name, "seed": seed,
                                "error": str(result)})  # fmt: skip
                continue
            line = [t for c in LINE for t in result.tags.get(c)]
            names = [t for c in NAMES for t in result.tags.get(c)]
            new = m.new_tags(line, pieces)
            clashes = m.contradicting(new, line)
            kept = all(p in result.prompt for p in pieces)
            added = bool(new or result.generated)
            checks["kept"].append(float(kept))
            checks["no_names"].append(float(not names))
            checks["consistent"].append(float(not clashes))
            checks["no_repeats"].append(float(not m.repeats(line + names)))
            explained = bool(result.notes) and result.prompt.strip() == hard.prompt.strip()
            checks["answered"].append(float(added or explained or hard.name.startswith("long")))
            samples.append({
                "kind": "hard", "input": hard.name, "seed": seed, "prompt": result.prompt,
                "names": names, "contradicting": clashes, "kept": kept,
            })  # fmt: skip
    numbers: dict[str, float | int | None] = {
        f"hard_{key}": m.mean(values) for key, values in checks.items()
    }
    numbers["hard_runs"] = len(results)
    return numbers, samples

