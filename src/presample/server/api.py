"""Presampling, the input preview, tag lookup, models and health."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import ValidationError

from .. import __version__
from ..categories import Category
from ..compose import Draft, format_result
from ..dtg import dtg_input
from ..engine.backend import ModelError
from ..engine.sampling import Sampling
from ..formatting import TEMPLATES, TYPED_TEMPLATE, Target
from ..prepare import Prepared, prepare
from ..request import (
    TOO_MANY_TAGS,
    PresampleRequest,
    PresampleResult,
    describe_validation_error,
)
from ..tipo import Length, Step
from .engine import Engine, QueueFull
from .schemas import (
    BatchAnswer,
    BatchCall,
    BatchItem,
    ErrorAnswer,
    FormatAnswer,
    FormatCall,
    Health,
    InputAnswer,
    InputCall,
    ModelInfo,
    ModelsAnswer,
    PlannedStep,
    PresampleCall,
    TagAnswer,
    TagEntry,
)
from .state import ServerState, get_state

ERRORS = {
    413: {"model": ErrorAnswer, "description": "Request body too large"},
    422: {"model": ErrorAnswer, "description": "Invalid request; `detail` names the field"},
}
QUEUE_ERRORS = {
    **ERRORS,
    503: {"model": ErrorAnswer, "description": "Queue full; retry after `Retry-After` seconds"},
    504: {"model": ErrorAnswer, "description": "Not answered within the server's timeout"},
}
RETRY_AFTER_SECONDS = 2

router = APIRouter()
State = Annotated[ServerState, Depends(get_state)]


class ClientGone(Exception):
    """The client disconnected while its request waited."""


def _checked(state: ServerState, call: PresampleCall, what: str = "request") -> tuple[
    Engine, PresampleRequest, Sampling | None
]:  # fmt: skip
    """Apply the server's limits; the engine, request and sampling to run."""
    limits = state.settings.limits
    engine = state.engine(call.model)
    if len(call.prompt) > limits.max_prompt_chars:
        raise HTTPException(
            422, f"{what}.prompt: at most {limits.max_prompt_chars} characters on this server"
        )
    request = call.request()
    try:
        prepared = prepare(request, state.db)
    except ValidationError as exc:  # the typed tags broke the schema's own ceiling
        if any(TOO_MANY_TAGS in str(e.get("msg", "")) for e in exc.errors()):
            raise HTTPException(
                422, f"{what}: more than {limits.max_tags} tags; at most {limits.max_tags} "
                "on this server",
            ) from None  # fmt: skip
        raise HTTPException(422, f"{what}.prompt: {describe_validation_error(exc)}") from None
    except ValueError as exc:  # prompt syntax
        raise HTTPException(422, f"{what}.prompt: {exc}") from None
    count = len(prepared.user_order)  # typed and given tags, deduplicated
    if count > limits.max_tags:
        raise HTTPException(422, f"{what}: {count} tags; at most {limits.max_tags} on this server")
    if request.caption_candidates > limits.max_caption_candidates:
        raise HTTPException(
            422,
            f"{what}.caption_candidates: at most {limits.max_caption_candidates} on this server",
        )
    sampling = None
    if call.sampling is not None:
        wanted = call.sampling.max_new_tokens
        if wanted is not None and wanted > limits.max_new_tokens:
            raise HTTPException(
                422,
                f"{what}.sampling.max_new_tokens: at most {limits.max_new_tokens} on this server",
            )
        try:
            sampling = call.sampling.applied_to(engine.presampler.sampling)
        except ValueError as exc:  # the engine's own range checks
            raise HTTPException(422, f"{what}.sampling: {exc}") from None
    return engine, request, sampling


async def _wait(request: Request, futures: Sequence[asyncio.Future], timeout: float) -> None:
    """Wait for every future; give up (dropping unstarted work) on disconnect or timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = set(futures)
    try:
        while pending:
            left = deadline - loop.time()
            if left <= 0:
                raise HTTPException(504, f"not answered within {timeout:g} seconds")
            _, pending = await asyncio.wait(pending, timeout=min(0.25, left))
            if pending and await request.is_disconnected():
                raise ClientGone
    except asyncio.CancelledError:
        # The server stops (SIGTERM) and its grace period ran out: the client
        # gets a clear, retryable answer instead of a bare 500. Caught around the
        # whole loop: the cancellation may land in either await (CI once met it
        # in the disconnect check, and the client got a 500).
        raise HTTPException(
            503,
            "the server is shutting down; retry in a moment",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from None
    finally:
        for future in pending:
            future.cancel()


def _submit(engine: Engine, work: list[tuple[PresampleRequest, Sampling | None]]):
    try:
        return engine.submit(work)
    except QueueFull as exc:
        raise busy(exc) from None


def busy(exc: QueueFull) -> HTTPException:
    """A full queue: a clear, retryable answer."""
    return HTTPException(
        503, f"busy: {exc}; retry in a moment", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ModelError):
        return f"the model could not run this request: {exc}"
    return str(exc) or type(exc).__name__


@router.post(
    "/api/presample",
    response_model=PresampleResult,
    responses=QUEUE_ERRORS,
    summary="Presample one prompt",
    tags=["presample"],
)
async def presample_one(call: PresampleCall, request: Request, state: State) -> PresampleResult:
    engine, req, sampling = _checked(state, call)
    (future,) = _submit(engine, [(req, sampling)])
    try:
        await _wait(request, [future], state.settings.limits.timeout_seconds)
    except ClientGone:
        return Response(status_code=499)  # type: ignore[return-value]  # nobody reads it
    exc = future.exception()
    if exc is not None:
        if isinstance(exc, (ValueError, ModelError)):
            raise HTTPException(422, _error_text(exc))
        raise exc
    return future.result()


@router.post(
    "/api/presample/batch",
    response_model=BatchAnswer,
    responses=QUEUE_ERRORS,
    summary="Presample many prompts in shared batches",
    tags=["presample"],
)
async def presample_batch(call: BatchCall, request: Request, state: State) -> BatchAnswer:
    limit = state.settings.limits.max_batch
    if len(call.requests) > limit:
        raise HTTPException(422, f"requests: at most {limit} per batch on this server")
    # Each item is checked on its own: a bad one gets its error, the others run.
    by_engine: dict[str, list[tuple[int, PresampleRequest, Sampling | None]]] = {}
    refused: dict[int, str] = {}
    for index, item in enumerate(call.requests):
        what = f"requests.{index}"
        try:
            checked = item if isinstance(item, PresampleCall) else _validated(item, what)
            engine, req, sampling = _checked(state, checked, what)
        except HTTPException as exc:
            refused[index] = str(exc.detail)
            continue
        by_engine.setdefault(engine.name, []).append((index, req, sampling))
    futures: dict[int, asyncio.Future] = {}
    for name, work in by_engine.items():
        submitted = _submit(state.engines[name], [(r, s) for _, r, s in work])
        for (index, _, _), future in zip(work, submitted, strict=True):
            futures[index] = future
    try:
        await _wait(request, list(futures.values()), state.settings.limits.timeout_seconds)
    except ClientGone:
        return Response(status_code=499)  # type: ignore[return-value]
    items = []
    for index in range(len(call.requests)):
        if index in refused:
            items.append(BatchItem(error=refused[index]))
            continue
        future = futures[index]
        exc = future.exception()
        if exc is None:
            items.append(BatchItem(result=future.result()))
        elif isinstance(exc, (ValueError, ModelError)):
            items.append(BatchItem(error=_error_text(exc)))
        else:
            raise exc
    return BatchAnswer(results=items)


def _validated(item: object, what: str) -> PresampleCall:
    """An item the schema did not take as a request: the one-line reason, as a 422 would say."""
    if not isinstance(item, dict):
        raise HTTPException(422, f"{what}: expected a request object, got {type(item).__name__}")
    try:
        return PresampleCall.model_validate(item)
    except ValidationError as exc:
        problems = "; ".join(
            f"{what}.{'.'.join(str(p) for p in e.get('loc', ()))}: "
            f"{str(e.get('msg', 'invalid')).removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False)
        )
        raise HTTPException(422, problems or f"{what}: invalid request") from None


@router.post(
    "/api/format",
    response_model=FormatAnswer,
    responses=ERRORS,
    summary="Write a result again for another target (a1111, comfyui, plain) or template",
    tags=["presample"],
)
async def format_again(call: FormatCall, state: State) -> FormatAnswer:
    changes: dict[str, object] = {"target": call.target}
    if call.template is not None:
        changes["template"] = call.template
    try:
        request = PresampleRequest.model_validate({**call.request.model_dump(), **changes})
        prepared = prepare(request, state.db)
    except ValueError as exc:  # a bad template or prompt
        raise HTTPException(422, f"request: {exc}") from None
    result = call.result
    draft = Draft(
        tags={c: list(result.tags.get(c)) for c in Category},
        extended=result.extended,
        generated=result.generated,
    )
    return FormatAnswer(prompt=format_result(draft, prepared))


def _mode(step: Step) -> str:
    return "expand" if step.expand else "generate"


@router.post(
    "/api/input",
    response_model=InputAnswer,
    responses=ERRORS,
    summary="The exact model input for one step (no model call)",
    tags=["presample"],
)
async def show_input(call: InputCall, state: State) -> InputAnswer:
    engine = state.engine(call.model)
    fmt = engine.presampler.source.layout if call.format == "auto" else call.format
    request = call.request
    try:
        prepared: Prepared = prepare(request, state.db)
    except ValueError as exc:
        raise HTTPException(422, f"request.prompt: {exc}") from None
    steps = prepared.steps()
    plan = [
        PlannedStep(step=i, task=s.task, length=s.length, mode=_mode(s))  # type: ignore[arg-type]
        for i, s in enumerate(steps, start=1)
    ]
    if fmt == "dtg":
        length = call.length or request.tag_length
        text = dtg_input(
            prepared.tags.as_dict(),
            length,
            request.effective_aspect_ratio() or 1.0,
            quality=engine.presampler.source.quality,
        )
        return InputAnswer(format="dtg", plan=plan, length=length, input=text)
    if call.task is not None:
        length = request.tag_length if call.task.output == "tag" else request.nl_length
        step, is_last = Step(call.task, length, True), True
    else:
        if not steps:
            raise HTTPException(422, "request: its options leave nothing for the model to do")
        if call.step > len(steps):
            raise HTTPException(422, f"step: must be between 1 and {len(steps)} for this request")
        step, is_last = steps[call.step - 1], call.step == len(steps)
    if call.length is not None:
        step = Step(step.task, Length(call.length), step.expand)
    if call.mode is not None:
        step = Step(step.task, step.length, call.mode == "expand")
    gen_meta = call.gen_meta if call.gen_meta is not None else request.gen_meta and is_last
    text = prepared.model_input(step, gen_meta=gen_meta)
    return InputAnswer(
        format="tipo",
        plan=plan,
        task=step.task,
        length=step.length,
        mode=_mode(step),  # type: ignore[arg-type]
        gen_meta=gen_meta,
        input=text,
    )


@router.get(
    "/api/tags",
    response_model=TagAnswer,
    responses=ERRORS,
    summary="Look a tag up (any spelling or alias) and list tags starting with it",
    tags=["tags"],
)
async def tags(
    state: State,
    q: Annotated[str, Query(min_length=1, max_length=200, description="A tag or its start")],
    limit: Annotated[int, Query(ge=0, le=1000)] = 20,
) -> TagAnswer:
    if "\x00" in q:
        raise HTTPException(422, "q: contains a NUL character")
    limit = min(limit, state.settings.limits.tag_search_limit)
    exact = state.db.lookup(q)
    matches = state.db.search_prefix(q, limit) if limit else []
    return TagAnswer(
        query=q,
        exact=TagEntry(**exact.to_dict()) if exact else None,  # type: ignore[arg-type]
        matches=[TagEntry(**m.to_dict()) for m in matches],  # type: ignore[arg-type]
    )


@router.get("/api/models", response_model=ModelsAnswer, summary="Loaded models", tags=["server"])
async def models(state: State) -> ModelsAnswer:
    infos = []
    for name, engine in state.engines.items():
        info = engine.presampler.backend.info
        infos.append(
            ModelInfo(
                name=name,
                default=name == state.default_model,
                layout=engine.presampler.source.layout,
                backend=info.name,
                device=info.device,
                dtype=info.dtype,
                context_length=info.context_length,
                sampling=engine.presampler.sampling.to_dict(),
                defaults=dict(engine.presampler.source.defaults),
            )
        )
    limits = state.settings.limits
    return ModelsAnswer(
        models=infos,
        templates=[TYPED_TEMPLATE, *TEMPLATES],
        lengths=[x.value for x in Length],
        targets=[t.value for t in Target],
        limits={
            "max_prompt_chars": limits.max_prompt_chars,
            "max_tags": limits.max_tags,
            "max_new_tokens": limits.max_new_tokens,
            "max_batch": limits.max_batch,
            "max_caption_candidates": limits.max_caption_candidates,
            "max_body_bytes": limits.max_body_bytes,
            "timeout_seconds": limits.timeout_seconds,
        },
    )


@router.get(
    "/health", response_model=Health, summary="Liveness and queue counters", tags=["server"]
)
async def health(state: State) -> Health:
    return Health(
        status="ok",
        version=__version__,
        models={
            name: {"waiting": engine.waiting, **engine.stats.to_dict()}
            for name, engine in state.engines.items()
        },
        refine_sessions=len(state.sessions) if state.sessions is not None else 0,
    )
