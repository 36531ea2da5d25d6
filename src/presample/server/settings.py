"""What a server instance is configured with: models, limits and access.

Plain frozen data, built by ``presample serve`` (or a test) and handed to
``create_app``; nothing here loads a model or reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..request import MAX_CAPTION_CANDIDATES

if TYPE_CHECKING:  # the presampler imports the engines; settings stay light
    from ..presampler import LoadSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7878
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Host headers a loopback server answers: a web page the user visits could
# otherwise reach it through DNS rebinding (its own name resolving to 127.0.0.1).
LOCAL_HOST_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")

# Hard ceilings of the request schemas; a server may be configured lower, not higher.
SCHEMA_MAX_BATCH = 64
SCHEMA_MAX_NEW_TOKENS = 4096


@dataclass(frozen=True)
class Limits:
    """How much one client may ask for, and how much work the server takes on."""

    max_body_bytes: int = 1_000_000
    """Larger request bodies are refused with 413 before they are read in full."""
    max_prompt_chars: int = 8_000
    max_tags: int = 256
    """Tags given in ``tags`` plus those typed in ``prompt``."""
    max_new_tokens: int = 512
    """Ceiling of a request's ``sampling.max_new_tokens``."""
    max_batch: int = 32
    """Requests in one ``/api/presample/batch`` call."""
    max_caption_candidates: int = 3
    """Ceiling of a request's ``caption_candidates``: each is one more row of model work,
    and the batcher counts requests, not rows."""
    queue_size: int = 128
    """Requests waiting for the engine; beyond this the server answers 503."""
    batch_window_seconds: float = 0.02
    """How long the batcher waits for company after the first request of a batch."""
    max_merged: int = 32
    """Requests run together in one engine batch."""
    timeout_seconds: float = 300.0
    """A request not answered by then gets 504 (its work is dropped if not started)."""
    max_image_side: int = 2048
    max_mask_side: int = 1024
    refine_sessions: int = 256
    refine_ttl_seconds: float = 3600.0
    tag_search_limit: int = 100

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_batch", "queue_size", "max_merged", "refine_sessions"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_batch > SCHEMA_MAX_BATCH:
            raise ValueError(f"max_batch must be at most {SCHEMA_MAX_BATCH}")
        if not 1 <= self.max_caption_candidates <= MAX_CAPTION_CANDIDATES:
            raise ValueError(
                f"max_caption_candidates must be between 1 and {MAX_CAPTION_CANDIDATES}"
            )
        if not 1 <= self.max_new_tokens <= SCHEMA_MAX_NEW_TOKENS:
            raise ValueError(f"max_new_tokens must be between 1 and {SCHEMA_MAX_NEW_TOKENS}")
        if self.timeout_seconds <= 0 or self.batch_window_seconds < 0:
            raise ValueError("timeout_seconds must be > 0 and batch_window_seconds >= 0")


@dataclass(frozen=True)
class ServerSettings:
    models: tuple[str, ...] = ("default",)
    """Model specs loaded at startup (the first is the default); see ``presample --model``."""
    models_dirs: tuple[Path, ...] = ()
    backend: str = "auto"
    device: str = "auto"
    dtype: str = "auto"
    sampling: dict[str, float | int] = field(default_factory=dict)
    """Overrides of every model's default sampling (``--temperature`` ...)."""
    api_key: str | None = None
    """When set, every ``/api`` call needs ``X-API-Key: <key>`` (or ``Authorization: Bearer``)."""
    limits: Limits = field(default_factory=Limits)
    serve_page: bool = True
    allowed_hosts: tuple[str, ...] = LOCAL_HOST_NAMES
    """Host header values answered (``*.example.org`` patterns; ``*`` for any);
    others get 400."""

    def load_settings(self, model: str) -> LoadSettings:
        """How to load one of ``models`` (the settings every front end shares)."""
        from ..presampler import LoadSettings

        return LoadSettings(
            model=model,
            backend=self.backend,
            device=self.device,
            dtype=self.dtype,
            models_dirs=tuple(self.models_dirs),
            sampling=dict(self.sampling),
        )

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("at least one model is needed")
        if not self.allowed_hosts:
            raise ValueError("at least one allowed host is needed")
        if self.api_key is not None and len(self.api_key) < 8:
            raise ValueError("an API key must be at least 8 characters")
