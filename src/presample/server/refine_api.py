"""Refine sessions over HTTP: start, draw candidates, pick, undo, re-draw, save.

Sessions live in the app's ``SessionStore`` (bounded, expiring). Every action
that may call the model runs its own steps on the model's worker thread and
queues its candidates' runs with the model's other requests (they share
model calls), one action per session at a time, so a double click cannot pick
twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field

from ..engine.backend import ModelError
from ..refine import Candidate, RefineError, RefineOptions, RefineSession, RefineState
from ..request import MAX_PROMPT_CHARS
from .api import ERRORS, busy
from .engine import Engine, QueueFull
from .schemas import ErrorAnswer, sampling_problem
from .sessions import Entry
from .state import ServerState, get_state

router = APIRouter(tags=["refine"])
State = Annotated[ServerState, Depends(get_state)]
T = TypeVar("T")

SESSION_ERRORS = {
    **ERRORS,
    404: {"model": ErrorAnswer, "description": "No such session (expired or never made)"},
    409: {"model": ErrorAnswer, "description": "Not possible now (nothing to undo ...)"},
    503: {"model": ErrorAnswer, "description": "Queue full; retry after `Retry-After` seconds"},
    504: {"model": ErrorAnswer, "description": "Not answered within the server's timeout"},
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RefineStart(_Model):
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="A coarse prompt.")
    options: RefineOptions = Field(default_factory=RefineOptions)
    model: str | None = Field(None, max_length=300, description="A name from /api/models.")
    propose: bool = Field(True, description="Draw the first round's candidates right away.")


class RefineRestore(_Model):
    state: RefineState
    model: str | None = Field(None, max_length=300)


class PickCall(_Model):
    index: int = Field(ge=0, description="The candidate's `index` (0-based).")
    propose: bool = Field(True, description="Draw the next round's candidates right away.")


class UndoCall(_Model):
    propose: bool = Field(True, description="Bring back the previous round's candidates.")


class RefineView(_Model):
    id: str
    model: str
    prompt: str = Field(description="The current prompt.")
    history: list[str] = Field(description="The start first, the current prompt last.")
    round: int
    seed: int = Field(description="The session seed (reproduces the same candidates).")
    can_undo: bool
    candidates: list[Candidate] | None = Field(
        None, description="This round's candidates, when drawn."
    )
    options: RefineOptions


def _view(key: str, entry: Entry) -> RefineView:
    session: RefineSession = entry.session
    state = session.state()
    return RefineView(
        id=key,
        model=entry.model,
        prompt=session.prompt,
        history=session.history,
        round=session.round,
        seed=session.seed,
        can_undo=session.round > 0,
        candidates=state.candidates,
        options=session.options,
    )


async def _on_engine(
    state: ServerState, model: str, work: Callable[[Engine], Awaitable[T]], conflict: int
) -> T:
    """Model work for a session, with the server's timeout: its own steps on the
    model's thread, its candidates' runs in the model's queue beside other requests."""
    engine = state.engines[model]
    timeout = state.settings.limits.timeout_seconds
    try:
        return await asyncio.wait_for(work(engine), timeout)
    except TimeoutError:
        raise HTTPException(504, f"not answered within {timeout:g} seconds") from None
    except QueueFull as exc:
        raise busy(exc) from None
    except RefineError as exc:
        raise HTTPException(conflict, str(exc)) from None
    except (ValueError, ModelError) as exc:
        raise HTTPException(422, str(exc)) from None


async def _drawn(engine: Engine, session: RefineSession) -> None:
    """This round's candidates, drawn now unless they were already."""
    await engine.drive(session.proposing())


def _check_options(state: ServerState, options: RefineOptions) -> None:
    problem = sampling_problem(options.temperature, options.top_p)
    if problem:
        raise HTTPException(422, f"options.{problem}")
    limit = state.settings.limits.max_new_tokens
    if options.token_limit() > limit:
        field = "oneshot_tokens" if options.strategy == "oneshot" else "step_tokens"
        raise HTTPException(422, f"options.{field}: at most {limit} on this server")


def _entry(state: ServerState, key: str) -> Entry:
    assert state.sessions is not None
    entry = state.sessions.get(key)
    if entry is None:
        raise HTTPException(404, f"no refine session {key!r} (expired or never made)")
    return entry


async def _act(
    state: ServerState, key: str, work: Callable[[Engine, RefineSession], Awaitable[Any]]
) -> RefineView:
    entry = _entry(state, key)
    async with entry.lock:
        await _on_engine(state, entry.model, lambda e: work(e, entry.session), conflict=409)
        return _view(key, entry)


@router.post(
    "/api/refine", response_model=RefineView, responses=SESSION_ERRORS, summary="Start a session"
)
async def start(call: RefineStart, state: State) -> RefineView:
    engine = state.engine(call.model)
    _check_options(state, call.options)

    async def make(engine: Engine) -> RefineSession:
        session = await engine.call(RefineSession, engine.presampler, call.prompt, call.options)
        if call.propose:
            await _drawn(engine, session)
        return session

    session = await _on_engine(state, engine.name, make, conflict=422)
    assert state.sessions is not None
    key = state.sessions.add(session, engine.name)
    return _view(key, _entry(state, key))


@router.post(
    "/api/refine/restore",
    response_model=RefineView,
    responses=SESSION_ERRORS,
    summary="Continue a saved session (from GET /api/refine/{id}/state)",
)
async def restore(call: RefineRestore, state: State) -> RefineView:
    engine = state.engine(call.model)
    _check_options(state, call.state.options)
    session = await _on_engine(
        state,
        engine.name,
        lambda e: e.call(RefineSession.from_state, e.presampler, call.state),
        conflict=422,
    )
    assert state.sessions is not None
    key = state.sessions.add(session, engine.name)
    return _view(key, _entry(state, key))


@router.get("/api/refine/{key}", response_model=RefineView, responses=SESSION_ERRORS)
async def show(key: str, state: State) -> RefineView:
    return _view(key, _entry(state, key))


@router.get(
    "/api/refine/{key}/state",
    response_model=RefineState,
    responses=SESSION_ERRORS,
    summary="The session as JSON, to save and restore later",
)
async def saved(key: str, state: State) -> RefineState:
    return _entry(state, key).session.state()


@router.post(
    "/api/refine/{key}/propose",
    response_model=RefineView,
    responses=SESSION_ERRORS,
    summary="This round's candidates (drawn once, then the same)",
)
async def propose(key: str, state: State) -> RefineView:
    return await _act(state, key, _drawn)


@router.post(
    "/api/refine/{key}/redraw",
    response_model=RefineView,
    responses=SESSION_ERRORS,
    summary="New candidates for the same prompt",
)
async def redraw(key: str, state: State) -> RefineView:
    async def work(engine: Engine, session: RefineSession) -> None:
        await engine.call(session.next_draw)
        await _drawn(engine, session)

    return await _act(state, key, work)


@router.post(
    "/api/refine/{key}/pick",
    response_model=RefineView,
    responses=SESSION_ERRORS,
    summary="Accept a candidate; it becomes the current prompt",
)
async def pick(key: str, call: PickCall, state: State) -> RefineView:
    async def work(engine: Engine, session: RefineSession) -> None:
        await _drawn(engine, session)  # what is picked from
        await engine.call(session.pick, call.index)
        if call.propose:
            await _drawn(engine, session)

    return await _act(state, key, work)


@router.post(
    "/api/refine/{key}/undo",
    response_model=RefineView,
    responses=SESSION_ERRORS,
    summary="Go back one pick",
)
async def undo(key: str, state: State, call: UndoCall | None = None) -> RefineView:
    again = call.propose if call is not None else True

    async def work(engine: Engine, session: RefineSession) -> None:
        await engine.call(session.undo)
        if again:
            await _drawn(engine, session)

    return await _act(state, key, work)


@router.delete(
    "/api/refine/{key}", status_code=204, responses=SESSION_ERRORS, summary="End a session"
)
async def end(key: str, state: State) -> Response:
    assert state.sessions is not None
    if not state.sessions.remove(key):
        raise HTTPException(404, f"no refine session {key!r} (expired or never made)")
    return Response(status_code=204)
