"""The narrow interface between a run (presample/runs.py) and whatever runs the model.

A backend takes a batch of prompts, each with its own sampling settings, seed
and optional constraint, and returns their continuations. Everything above
this line (layouts, retries, bans, formatting) is backend-agnostic.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from ..errors import RunError
from .sampling import Sampling


class Constraint(Protocol):
    """Steers generation away from text it must not produce.

    ``allowed`` sees the text so far (prompt plus generated) and the text each
    candidate token would append (``None`` for end of sequence) and says which
    candidates may be drawn. Candidates come best first (the model's most likely
    token leads), which a rule may rely on: the tag floor tells from it that the
    model wanted the line to end.
    """

    def allowed(self, text: str, candidates: Sequence[str | None]) -> list[bool]: ...


class Boost(Protocol):
    """Leans generation towards text a prior expects, without changing how likely
    the tokens it leaves out are.

    ``boosts`` sees the text so far and the text each of the model's best
    candidate tokens would append (``None`` for end of sequence) and returns a
    score for each, or ``None`` to leave a token out. The scores move
    probability among the scored tokens only (``boost_additions``): a prior over
    tags can then reorder the tags without making the line longer.
    """

    def boosts(self, text: str, candidates: Sequence[str | None]) -> list[float | None]: ...


# How many of a row's best tokens a ``Boost`` sees.
BOOST_CANDIDATES = 64


def boost_additions(scaled: Sequence[float], scores: Sequence[float | None]) -> list[float]:
    """What to add to each candidate's scaled logit for a ``Boost``'s ``scores``.

    Each scored token gets its score plus one shift shared by all of them, chosen
    so that their total probability stays what the model gave it; tokens scored
    ``None`` get nothing. Plain Python: it runs on 64 numbers for every backend.
    """
    group = [(x, s) for x, s in zip(scaled, scores, strict=True) if s is not None]
    if not group:
        return [0.0] * len(scores)
    top = max(x for x, _ in group)
    before = sum(math.exp(x - top) for x, _ in group)
    after = sum(math.exp(x - top + s) for x, s in group)
    shift = math.log(before) - math.log(after)
    return [0.0 if s is None else s + shift for s in scores]


@dataclass(frozen=True, slots=True)
class GenerationJob:
    prompt: str
    sampling: Sampling
    seed: int
    constraint: Constraint | None = None
    boost: Boost | None = None
    samples: int = 1
    """Draws of the same prompt, seeds ``seed``, ``seed + 1`` ... (``generate_samples``)."""

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"a generation job draws at least one sample, not {self.samples}")

    @property
    def reads_text(self) -> bool:
        """Whether a rule looks at the text, so the engine must keep it as it grows."""
        return self.constraint is not None or self.boost is not None


@dataclass(frozen=True, slots=True)
class Generation:
    text: str
    """The continuation only, special tokens removed."""
    prompt_tokens: int
    new_tokens: int
    finish: Literal["eos", "length"]
    alternatives: tuple[Generation, ...] = ()
    """The job's other draws when it asked for several samples."""

    def samples(self) -> tuple[Generation, ...]:
        return (self, *self.alternatives)


@dataclass(slots=True)
class BackendInfo:
    name: str
    """Which engine: "transformers" or "llama.cpp"."""
    model: str
    device: str = "cpu"
    dtype: str = "float32"
    context_length: int = 1024
    supports: frozenset[str] = field(
        default_factory=lambda: frozenset(
            {"temperature", "top_p", "top_k", "min_p", "repetition_penalty", "constraints", "batch"}
        )
    )


ProgressCallback = Callable[[int], None]
"""Called with the number of jobs that just finished."""


class Backend(Protocol):
    info: BackendInfo

    def generate(
        self, jobs: Sequence[GenerationJob], progress: ProgressCallback | None = None
    ) -> list[Generation]: ...

    def count_tokens(self, text: str) -> int: ...

    def single_tokens(self, texts: Sequence[str]) -> list[bool]:
        """Whether each text is one token of the vocabulary (the layout's special tokens)."""
        ...


def generate_samples(backend: Backend, jobs: Sequence[GenerationJob]) -> list[Generation]:
    """``backend.generate`` for jobs that may ask for several samples.

    Each draw is a job of its own in one batch, so the backends stay unaware of
    samples; a job's first draw comes back with the others as its ``alternatives``.
    """
    if all(job.samples <= 1 for job in jobs):
        return list(backend.generate(jobs))
    flat = [replace(job, seed=job.seed + i, samples=1) for job in jobs for i in range(job.samples)]
    drawn = iter(backend.generate(flat))
    out = []
    for job in jobs:
        first, *rest = [next(drawn) for _ in range(job.samples)]
        out.append(replace(first, alternatives=tuple(rest)))
    return out


class ModelError(RunError):
    """A model could not be found, loaded or run; the message says which and why."""


class ContextFull(ModelError):
    """A model input as long as the model's context: nothing is left to write."""

    def __init__(self, tokens: int, context: int) -> None:
        super().__init__(
            f"the model input is {tokens} tokens, longer than the model's "
            f"context of {context}; shorten the prompt"
        )
        self.tokens = tokens
        self.context = context


def check_context(tokens: int, context: int) -> None:
    """``ContextFull`` when an input of ``tokens`` leaves the model no room to write.

    A run whose own earlier output filled the context ends with what it has
    (``runs.tipo_run``); an input that is too long from the start is the user's.
    """
    if tokens >= context:
        raise ContextFull(tokens, context)


# Passed to every transformers ``from_pretrained``: a model folder or repo whose
# config names its own Python code (``auto_map``) is refused, never run, and
# never makes transformers ask "Do you wish to run the custom code? [y/N]" on
# standard input, which would hang a server, a batch job or a plug-in.
NO_REMOTE_CODE = {"trust_remote_code": False}


def load_error(where: str, exc: BaseException) -> ModelError:
    """A one-line ``ModelError`` for a transformers loading failure."""
    text = str(exc)
    if "custom code" in text or "trust_remote_code" in text:
        return ModelError(
            f"cannot load model from {where}: it needs its own Python code (auto_map in its "
            "config), which presample never runs"
        )
    return ModelError(f"cannot load model from {where}: {first_line(exc)}")


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity), for an engine's threads;
    fewer when ``OMP_NUM_THREADS`` says so (the usual way to share a machine between
    processes, and what Ray sets for an actor given ``num_cpus``)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    asked = os.environ.get("OMP_NUM_THREADS", "").strip()
    if asked.isdigit() and int(asked) > 0:
        return min(cores, int(asked))
    return cores


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (library errors can run to pages)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
