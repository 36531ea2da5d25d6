"""The presample HTTP server: JSON API, refine sessions and the web page.

    from presample.server import ServerSettings, create_app
    app = create_app(ServerSettings(models=("default",)))   # serve with uvicorn

Needs the ``server`` extra (FastAPI, uvicorn); ``presample serve`` runs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import Limits, ServerSettings

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["Limits", "ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    # FastAPI is imported only when the app is asked for: the CLI reads the
    # settings to build `presample serve --help` on installs without the extra.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
