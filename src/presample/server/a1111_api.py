"""The A1111 / Forge script's model work, for WebUIs that cannot import presample.

A1111 1.10 pins pydantic 1, fastapi 0.94 and torch 2.1, which presample cannot
share; its script then runs ``integrations.a1111_host`` (standard library only)
inside the WebUI and sends each generation's prompts here. The answer is the
prompts the in-process script would write, from the same functions
(``integrations.a1111``), through this server's queue like any request.
"""

from __future__ import annotations

import asyncio
from dataclasses import fields
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ..engine.backend import ModelError
from ..integrations.a1111 import ScriptOptions, options_sampling, request_for, written
from ..integrations.common import DEVICES, DTYPES, LENGTHS, SAMPLING_MODES, TEMPLATE_CHOICES
from ..request import MAX_PROMPT_CHARS, describe_validation_error
from .api import QUEUE_ERRORS, busy
from .engine import QueueFull
from .state import ServerState, get_state

router = APIRouter(tags=["a1111"])
State = Annotated[ServerState, Depends(get_state)]
OPTIONS = TypeAdapter(ScriptOptions)


class A1111Run(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompts: list[Annotated[str, Field(max_length=MAX_PROMPT_CHARS)]] = Field(
        min_length=1, description="Every image's prompt, as the WebUI has it."
    )
    seeds: list[int] = Field(description="Each image's presample seed.")
    options: dict[str, Any] = Field(description="The script's UI values (`ScriptOptions`).")
    width: int | None = Field(None, ge=1, le=16384)
    height: int | None = Field(None, ge=1, le=16384)


class A1111Answer(BaseModel):
    prompts: list[str]
    model_hash: str = Field(description="The weights' hash, for the image's infotext.")


class A1111Choices(BaseModel):
    models: list[str]
    lengths: list[str]
    templates: list[str]
    sampling_modes: list[str]
    devices: list[str]
    dtypes: list[str]
    options: list[str] = Field(description="The script's option names, in UI order.")


@router.get("/api/a1111/choices", response_model=A1111Choices, summary="The script's choices")
async def choices(state: State) -> A1111Choices:
    return A1111Choices(
        models=list(state.engines), lengths=LENGTHS, templates=TEMPLATE_CHOICES,
        sampling_modes=SAMPLING_MODES, devices=list(DEVICES), dtypes=list(DTYPES),
        options=[f.name for f in fields(ScriptOptions)],
    )  # fmt: skip


@router.post(
    "/api/a1111/run", response_model=A1111Answer, responses=QUEUE_ERRORS,
    summary="Presample a generation's prompts as the A1111 script does",
)  # fmt: skip
async def run(call: A1111Run, state: State) -> A1111Answer:
    if len(call.seeds) != len(call.prompts):
        raise HTTPException(422, "seeds: one per prompt")
    if len(call.prompts) > state.settings.limits.max_batch:
        raise HTTPException(422, f"prompts: at most {state.settings.limits.max_batch}")
    try:
        options = OPTIONS.validate_python(call.options)
    except ValidationError as exc:
        raise HTTPException(422, f"options: {describe_validation_error(exc)}") from None
    # The WebUI's model choice is a name this server loaded; "default" is its first.
    name = options.model if options.model in state.engines or options.model != "default" else None
    engine = state.engine(name)
    try:
        sampling = options_sampling(options)
        requests = [
            request_for(options, prompt, seed, call.width, call.height)
            for prompt, seed in zip(call.prompts, call.seeds, strict=True)
        ]
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    try:
        futures = engine.submit([(r, sampling) for r in requests])
    except QueueFull as exc:
        raise busy(exc) from None
    timeout = state.settings.limits.timeout_seconds
    try:
        results = await asyncio.wait_for(asyncio.gather(*futures), timeout)
    except TimeoutError:
        raise HTTPException(504, f"not answered within {timeout:g} seconds") from None
    except (ValueError, ModelError) as exc:
        raise HTTPException(422, f"the model could not run this request: {exc}") from None
    model_hash = await engine.call(lambda: engine.presampler.model_hash)
    return A1111Answer(
        prompts=[written(options, r, result) for r, result in zip(requests, results, strict=True)],
        model_hash=model_hash,
    )
