"""The presample HTTP server: JSON API, refine sessions and the web page.

    from presample.server import ServerSettings, create_app
    app = create_app(ServerSettings(models=("default",)))   # serve with uvicorn

Needs the ``server`` extra (FastAPI, uvicorn); ``presample serve`` runs it.
"""

from __future__ import annotations

from .app import create_app
from .settings import Limits, ServerSettings

__all__ = ["Limits", "ServerSettings", "create_app"]
