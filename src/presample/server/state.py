"""What one running app holds: its settings, loaded engines and tag database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request

from ..tagdb import TagDatabase
from .engine import Engine
from .settings import ServerSettings

if TYPE_CHECKING:
    from .sessions import SessionStore


@dataclass
class ServerState:
    settings: ServerSettings
    db: TagDatabase
    """For the event loop's own lookups; each engine has its own for its thread."""
    engines: dict[str, Engine] = field(default_factory=dict)
    default_model: str = ""
    sessions: SessionStore | None = None

    def engine(self, name: str | None) -> Engine:
        if not name:
            return self.engines[self.default_model]
        found = self.engines.get(name)
        if found is None:
            names = ", ".join(self.engines)
            raise HTTPException(422, f"model: no model {name!r} on this server; loaded: {names}")
        return found


def get_state(request: Request) -> ServerState:
    return request.app.state.presample
