"""Host-independent presampling steps the UI plug-ins call.

A UI gives strings and numbers; these functions turn them into a request, run
it on a cached model, and write the result back in the forms UIs show (the
formatted prompt, the user's own prompt formatted the same way, and the
reference extension's "unformatted" text). A single explicit task (the
reference's "single operation") runs through the same pipeline as the
automatic plan, with one planned step.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..categories import Category
from ..compose import Draft, format_result
from ..engine.backend import ModelError
from ..engine.sampling import Sampling
from ..formatting import REFERENCE_TEMPLATE_NAMES, Target, escape
from ..prepare import Prepared, prepare
from ..request import PresampleRequest, PresampleResult, describe_validation_error
from ..tagdb import TagDatabase
from ..tipo import Length, Step, Task
from .common import MODEL_DEFAULT, ModelCache, model_spec, parse_bans, split_list, using_sampling


@dataclass(frozen=True)
class Outcome:
    """A request and its result: what downstream format nodes need to rewrite it."""

    request: PresampleRequest
    result: PresampleResult
    model_hash: str = ""
    """The hash of the model's weights (``Presampler.model_hash``), for the image's record."""


@dataclass(frozen=True)
class Texts:
    prompt: str
    user_prompt: str
    unformatted_prompt: str
    unformatted_user_prompt: str


def template_value(template: str, custom: str = "") -> str:
    """A template from a drop-down (ours or the reference's names) or the custom text."""
    if template == "custom":
        if not custom.strip():
            raise ValueError("template is 'custom' but the custom template is empty")
        return custom
    return REFERENCE_TEMPLATE_NAMES.get(template, template)


def sampling_value(
    mode: str,
    *,
    temperature: float,
    top_p: float,
    top_k: int,
    min_p: float,
    repetition_penalty: float,
    max_new_tokens: int = 512,
) -> Sampling | None:
    """``None`` for the model family's defaults (what the CLI uses), else the given values."""
    if mode in ("model default", "default", ""):
        return None
    if mode != "custom":
        raise ValueError(f"sampling must be 'model default' or 'custom', not {mode!r}")
    return Sampling(
        temperature=float(temperature),
        top_p=float(top_p),
        top_k=int(top_k),
        min_p=float(min_p),
        repetition_penalty=float(repetition_penalty),
        max_new_tokens=int(max_new_tokens),
    )


def build_request(
    *,
    prompt: str,
    nl_prompt: str = "",
    tag_length: str = MODEL_DEFAULT,
    nl_length: str = MODEL_DEFAULT,
    template: str = "both_tag_first",
    ban: str = "",
    ignored: str = "",
    seed: int = -1,
    width: int | None = None,
    height: int | None = None,
    target: str = "a1111",
    **extra: Any,
) -> PresampleRequest:
    """A validated request from UI values; any problem is one ``ValueError`` line."""
    try:
        data: dict[str, Any] = {
            "prompt": prompt or "",
            "nl_prompt": nl_prompt or "",
            "template": template,
            "ban": parse_bans(ban),
            "ignored": split_list(ignored),
            "seed": int(seed),
            "target": target,
            **extra,
        }
        # Left out, a length comes from the model card (``Presampler.with_model_defaults``).
        for key, value in (("tag_length", tag_length), ("nl_length", nl_length)):
            if value and value != MODEL_DEFAULT:
                data[key] = value.replace(" ", "_")
        if width and height:
            data["aspect_ratio"] = int(width) / int(height)
        return PresampleRequest.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"invalid settings: {describe_validation_error(exc)}") from None


def presample(
    cache: ModelCache,
    request: PresampleRequest,
    *,
    model: str,
    models_dirs: Sequence[Path] = (),
    device: str = "auto",
    dtype: str = "auto",
    sampling: Sampling | None = None,
    task: Task | None = None,
    expand: bool = True,
) -> Outcome:
    """Run ``request`` on the cached model (the automatic plan, or one ``task``)."""
    with cache.lock:
        presampler = cache.get(
            model_spec(model, models_dirs), device=device, dtype=dtype, models_dirs=models_dirs
        )
        with using_sampling(presampler, sampling):
            if task is None:
                result = presampler.presample(request)
            else:
                result = _single_task(presampler, request, task, expand)
        model_hash = presampler.model_hash
    return Outcome(request, result, model_hash)


@dataclass(frozen=True)
class _OneStep(Prepared):
    """A prepared request whose plan is one chosen step."""

    step: Step | None = None

    def steps(self) -> list[Step]:
        assert self.step is not None
        return [self.step]


def _single_task(
    presampler: Any, request: PresampleRequest, task: Task, expand: bool
) -> PresampleResult:
    if presampler.source.layout != "tipo":
        raise ModelError(
            f"{presampler.source.name} is a DanTagGen model: it has one task; "
            "use the presample node"
        )
    request = presampler.with_model_defaults(request)
    length = request.tag_length if task.output == "tag" else request.nl_length
    prepared = presampler.prepare(request)
    one = _OneStep(
        **{f.name: getattr(prepared, f.name) for f in fields(Prepared)},
        step=Step(task, Length(length), expand),
    )
    seed = request.seed if request.seed >= 0 else secrets.randbelow(2**32)
    (result,) = presampler.run_many([presampler.run_prepared(one, seed=seed)])
    if isinstance(result, Exception):
        raise result
    assert isinstance(result, PresampleResult)
    return result


def texts(outcome: Outcome, *, template: str | None = None, target: str | None = None) -> Texts:
    """The outcome written out, optionally in another template or target syntax.

    Re-preparing the request gives back what never went to the model (weights,
    BREAK, networks, ignored tags), so any template formats losslessly.
    """
    updates: dict[str, Any] = {}
    if template is not None:
        updates["template"] = template
    if target is not None:
        updates["target"] = target
    try:
        request = PresampleRequest.model_validate({**outcome.request.model_dump(), **updates})
    except ValidationError as exc:
        raise ValueError(f"invalid settings: {describe_validation_error(exc)}") from None
    result = outcome.result
    with TagDatabase() as db:
        prepared = prepare(request, db)
    draft = Draft(
        tags={c: list(result.tags.get(c)) for c in Category},
        extended=result.extended,
        generated=result.generated,
    )
    prompt = format_result(draft, prepared)
    user_prompt = format_result(Draft.start(prepared), prepared, user_only=True)
    target_enum = request.target
    added = [escape(t, target_enum) for t in result.added]
    typed = ", ".join(part for part in (request.prompt,) if part)
    tag_part = ", ".join(part for part in (typed, ", ".join(added)) if part)
    text = "\n".join(escape(t, target_enum) for t in (result.extended, result.generated) if t)
    unformatted = "\n".join(part for part in (tag_part, text) if part)
    unformatted_user = "\n".join(part for part in (request.prompt, request.nl_prompt) if part)
    return Texts(prompt, user_prompt, unformatted, unformatted_user)


def target_of(value: str) -> Target:
    try:
        return Target(value)
    except ValueError:
        valid = ", ".join(t.value for t in Target)
        raise ValueError(f"unknown target {value!r}; valid: {valid}") from None
