"""The JSON the server speaks, beyond the library's own request and result models.

A presample call is a ``PresampleRequest`` (the same JSON as the CLI and the
Python API) plus which model and, optionally, its sampling settings.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..canvas.parse import MAX_ANSWER_CHARS
from ..engine.sampling import MIN_TEMPERATURE, MIN_TOP_P, Sampling
from ..formatting import Target
from ..request import PresampleRequest, PresampleResult
from ..tipo import Length, Task
from .settings import SCHEMA_MAX_BATCH, SCHEMA_MAX_NEW_TOKENS


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def sampling_problem(temperature: float | None, top_p: float | None) -> str | None:
    """The engine's own lower bounds (near-zero values overflow the sampler), per field."""
    if temperature is not None and 0 < temperature < MIN_TEMPERATURE:
        return f"temperature: 0 (greedy) or at least {MIN_TEMPERATURE}"
    if top_p is not None and top_p < MIN_TOP_P:
        return f"top_p: at least {MIN_TOP_P}"
    return None


class SamplingOptions(_Model):
    """Overrides of the model's sampling; unset fields keep the model's defaults."""

    temperature: float | None = Field(
        None, ge=0, le=10, description=f"0 = greedy, else at least {MIN_TEMPERATURE}"
    )
    top_p: float | None = Field(None, ge=MIN_TOP_P, le=1)
    top_k: int | None = Field(None, ge=0, le=100_000, description="0 = off")
    min_p: float | None = Field(None, ge=0, lt=1, description="0 = off")
    repetition_penalty: float | None = Field(None, ge=0.5, le=3, description="1 = off")
    max_new_tokens: int | None = Field(None, ge=1, le=SCHEMA_MAX_NEW_TOKENS)

    @model_validator(mode="after")
    def _sane(self) -> SamplingOptions:
        problem = sampling_problem(self.temperature, self.top_p)
        if problem:
            raise ValueError(problem)
        return self

    def applied_to(self, base: Sampling) -> Sampling | None:
        """``base`` with these overrides, or ``None`` when there are none."""
        changes = self.model_dump(exclude_none=True)
        return base.with_(**changes) if changes else None


class PresampleCall(PresampleRequest):
    """A presample request, plus the model to run it on and its sampling."""

    model: str | None = Field(None, max_length=300, description="A name from /api/models.")
    sampling: SamplingOptions | None = None

    def request(self) -> PresampleRequest:
        data = self.model_dump(exclude={"model", "sampling"})
        return PresampleRequest.model_validate(data)


class BatchCall(_Model):
    requests: list[PresampleCall | Any] = Field(
        min_length=1,
        max_length=SCHEMA_MAX_BATCH,
        description="Presample requests (PresampleCall). An item that is not a valid one "
        "gets its own error in the answer; the others still run.",
    )


class BatchItem(_Model):
    result: PresampleResult | None = None
    error: str | None = Field(None, description="Why this request failed (the others still ran).")


class BatchAnswer(_Model):
    results: list[BatchItem]


class InputCall(_Model):
    """Show the exact model input for one planned step, without running a model."""

    request: PresampleRequest = Field(default_factory=PresampleRequest)
    format: Literal["auto", "tipo", "dtg"] = Field(
        "auto", description="auto: the layout of `model` (or the default model)"
    )
    model: str | None = Field(None, max_length=300)
    step: int = Field(1, ge=1, le=16, description="Which planned step (1-based).")
    task: Task | None = Field(None, description="Build this task directly instead of the plan's.")
    length: Length | None = None
    mode: Literal["expand", "generate"] | None = None
    gen_meta: bool | None = None


class PlannedStep(_Model):
    step: int
    task: Task
    length: Length
    mode: Literal["expand", "generate"]


class InputAnswer(_Model):
    format: Literal["tipo", "dtg"]
    plan: list[PlannedStep]
    task: Task | None = None
    length: Length
    mode: Literal["expand", "generate"] | None = None
    gen_meta: bool = False
    input: str


class FormatCall(_Model):
    """Write a result again for another UI (A1111 / ComfyUI escaping) or template."""

    request: PresampleRequest
    result: PresampleResult
    target: Target = Target.A1111
    template: str | None = Field(None, max_length=4000)


class FormatAnswer(_Model):
    prompt: str


class TagEntry(_Model):
    name: str
    category: str
    post_count: int
    alias: bool = False


class TagAnswer(_Model):
    query: str
    exact: TagEntry | None = Field(None, description="The tag this spelling or alias resolves to.")
    matches: list[TagEntry] = Field(description="Most popular tags starting with the query.")


class CanvasCall(_Model):
    answer: str = Field(
        min_length=1,
        max_length=MAX_ANSWER_CHARS,
        description="An Omost answer (Markdown with a ```python block); never executed.",
    )
    lenient: bool = Field(False, description="Salvage what is valid and report the rest.")


class CanvasImageCall(CanvasCall):
    width: int = Field(720, ge=16, le=8192)
    height: int = Field(720, ge=16, le=8192)
    labels: bool = Field(True, description="Outline and label each region.")


class CanvasMaskCall(CanvasCall):
    width: int = Field(1024, ge=8, le=8192)
    height: int = Field(1024, ge=8, le=8192)


class CanvasAnswer(_Model):
    canvas: dict[str, Any]
    layers: list[dict[str, Any]] = Field(
        description="Global first, then regions far to near; box = [top, bottom, left, right] "
        "on the 90-cell grid; rgb = the colour in the composition."
    )
    region_lines: list[int]
    repairs: list[dict[str, Any]]
    problems: list[dict[str, Any]]


class MaskLayer(_Model):
    layer: dict[str, Any]
    mask_png: str = Field(description="Base64 PNG, white inside the layer's box.")


class MaskAnswer(_Model):
    width: int
    height: int
    layers: list[MaskLayer]
    composition_png: str = Field(description="Base64 PNG of the colour composition.")


class ModelInfo(_Model):
    name: str
    default: bool
    layout: Literal["tipo", "dtg"]
    backend: str
    device: str
    dtype: str
    context_length: int
    sampling: dict[str, float | int]
    defaults: dict[str, str | float] = {}
    """Request fields the model's card sets when a request leaves them out."""


class ModelsAnswer(_Model):
    models: list[ModelInfo]
    templates: list[str]
    lengths: list[str]
    targets: list[str]
    limits: dict[str, float | int]


class Health(_Model):
    status: Literal["ok"]
    version: str
    models: dict[str, dict[str, float | int]] = Field(
        description="Per model: waiting requests and batcher counters."
    )
    refine_sessions: int


class ErrorAnswer(_Model):
    detail: str = Field(description="One line saying what is wrong.")
    errors: list[dict[str, Any]] | None = Field(
        None, description="Validation errors, one per field (422 from the schema)."
    )
    problems: list[dict[str, Any]] | None = Field(
        None, description="A canvas answer's problems, with their lines (canvas endpoints)."
    )
