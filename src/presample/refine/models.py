"""The refine loop's plain data: options, candidates and a session's saved state.

All three are pydantic models, so the Python API, the command line and the
server validate the same JSON the same way (unknown keys are errors).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..engine.sampling import Sampling
from ..errors import InputError
from ..formatting import Target
from ..request import MAX_BAN_RULES, MAX_PROMPT_CHARS, MAX_SEED, BanRule

MAX_CANDIDATES = 8
MAX_STEP_TOKENS = 64
MAX_ONESHOT_TOKENS = 256
MAX_ROUNDS = 200
"""A session's history is bounded so a saved state stays small."""
SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")


class RefineError(InputError):
    """A refine action that cannot be done (nothing to undo, no such candidate ...)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RefineOptions(_Model):
    """How each round extends the prompt."""

    candidates: int = Field(3, ge=1, le=MAX_CANDIDATES, description="Candidates per round.")
    step_tokens: int = Field(
        6,
        ge=1,
        le=MAX_STEP_TOKENS,
        description="strategy 'step': each candidate adds about this many model tokens "
        "(whole tags or words; a single longer tag may exceed it).",
    )
    strategy: Literal["step", "oneshot"] = Field(
        "step",
        description="'step': small extensions, pick and repeat. 'oneshot': one extension of "
        "up to `oneshot_tokens` new tokens.",
    )
    oneshot_tokens: int = Field(
        20, ge=1, le=MAX_ONESHOT_TOKENS, description="strategy 'oneshot': at most this many."
    )
    step_by: Literal["tokens", "length"] = Field(
        "tokens",
        description="strategy 'step': extend by `step_tokens`, or by one TIPO length target "
        "(very_short -> short -> long -> very_long tags; sentences likewise).",
    )
    seed: int = Field(-1, ge=-1, le=MAX_SEED, description="-1 picks a random session seed.")
    target: Target = Field(Target.A1111, description="Escaping of added text: a1111, comfyui.")
    sfw: bool = Field(True, description="As in PresampleRequest: unrated prompts stay general.")
    ban: list[BanRule] = Field(default_factory=list, max_length=MAX_BAN_RULES)
    aspect_ratio: float | None = Field(None, gt=0.05, lt=20, description="width / height")
    temperature: float | None = Field(None, description="Sampling override (model default).")
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None

    @model_validator(mode="after")
    def _sampling(self) -> RefineOptions:
        self.sampling(Sampling())  # the same range checks every backend honours
        return self

    def sampling(self, base: Sampling) -> Sampling:
        """The model's sampling with this session's overrides."""
        overrides = {name: getattr(self, name) for name in SAMPLING_FIELDS}
        return base.with_(**{k: v for k, v in overrides.items() if v is not None})

    def token_limit(self) -> int:
        """How many new tokens a candidate may add in token steps."""
        return self.oneshot_tokens if self.strategy == "oneshot" else self.step_tokens

    def by_length(self) -> bool:
        return self.strategy == "step" and self.step_by == "length"


class Candidate(_Model):
    """One proposed extension of the current prompt."""

    index: int = Field(ge=0, lt=MAX_CANDIDATES, description="0-based, in the round's order.")
    prompt: str = Field(max_length=MAX_PROMPT_CHARS, description="The current prompt, extended.")
    added: list[str] = Field(
        default_factory=list, description="The new tags or words, in the order they appear."
    )
    seed: int = Field(ge=0, le=MAX_SEED, description="The seed this candidate was drawn with.")
    tokens: int = Field(0, ge=0, description="Model tokens the candidate adds to the prompt.")


class RefineState(_Model):
    """Everything needed to continue a session elsewhere (JSON)."""

    version: Literal[1] = 1
    start: str = Field(max_length=MAX_PROMPT_CHARS)
    options: RefineOptions = Field(default_factory=RefineOptions)
    seed: int = Field(ge=0, le=MAX_SEED, description="The resolved session seed.")
    picks: list[str] = Field(
        default_factory=list,
        max_length=MAX_ROUNDS,
        description="The prompt after each pick, oldest first.",
    )
    round: int = Field(0, ge=0, le=MAX_ROUNDS, description="= len(picks)")
    redraw: int = Field(0, ge=0, le=10_000, description="Re-draws asked for in this round.")
    candidates: list[Candidate] | None = Field(
        None, description="This round's candidates, if they were drawn already."
    )

    @model_validator(mode="after")
    def _consistent(self) -> RefineState:
        if self.round != len(self.picks):
            raise ValueError(f"round is {self.round} but {len(self.picks)} picks are recorded")
        if any(len(p) > MAX_PROMPT_CHARS for p in self.picks):
            raise ValueError(f"a picked prompt is longer than {MAX_PROMPT_CHARS} characters")
        return self
