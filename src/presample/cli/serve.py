"""``presample serve``: the HTTP API and the web page, on one loaded model."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from pathlib import Path

from ..errors import install_hint
from .common import UserError
from .model_options import add_model_options, sampling_overrides

DESCRIPTION = """\
Serve presample over HTTP: a JSON API (presample one or many prompts in shared
batches, the model input preview, tag lookup, Omost canvases, refine sessions)
and a web page, from one process that loads the model once.

By default it listens on 127.0.0.1 only. Listening on another interface needs
--expose and an API key (--api-key or $PRESAMPLE_API_KEY), or an explicit
--no-auth when something else (a reverse proxy, a private network) guards it.
"""

EPILOG = """\
examples:
  presample serve                                   # http://127.0.0.1:7878/
  presample serve --model KBlueLeaf/TIPO-200M-ft2 --port 8000
  presample serve --host 0.0.0.0 --expose --api-key "$(openssl rand -hex 16)"
see docs/server.md for the endpoints and limits.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..server.settings import DEFAULT_HOST, DEFAULT_PORT, Limits

    limits = Limits()  # the flags' defaults are the server's own

    p = sub.add_parser(
        "serve",
        help="serve the JSON API and the web page (http://127.0.0.1:7878/)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    n = p.add_argument_group("network")
    n.add_argument("--host", default=DEFAULT_HOST, help=f"interface (default {DEFAULT_HOST})")
    n.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    n.add_argument(
        "--expose",
        action="store_true",
        help="allow a --host other than localhost (others on the network can reach it)",
    )
    n.add_argument(
        "--api-key",
        default=None,
        help="require this key in the X-API-Key header of every /api call "
        "(default: $PRESAMPLE_API_KEY if set)",
    )
    n.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="with --expose: a Host header the server answers, e.g. presample.lan or "
        "*.example.org (repeatable; default: the --host address, or any host when it is "
        "0.0.0.0 / ::). Loopback names are always answered; other Host headers get 400",
    )
    n.add_argument(
        "--no-auth",
        action="store_true",
        help="with --expose: serve without an API key (only behind your own access control)",
    )
    lim = p.add_argument_group("limits")
    lim.add_argument(
        "--max-batch",
        type=int,
        default=limits.max_batch,
        help="requests per batch call (%(default)s)",
    )
    lim.add_argument(
        "--max-caption-candidates",
        type=int,
        default=limits.max_caption_candidates,
        help="most captions a request may have drawn per caption written from tags (%(default)s)",
    )
    lim.add_argument(
        "--queue-size",
        type=int,
        default=limits.queue_size,
        help="waiting requests (%(default)s)",
    )
    lim.add_argument(
        "--timeout",
        type=float,
        default=limits.timeout_seconds,
        help="seconds per request (%(default)s)",
    )
    lim.add_argument(
        "--shutdown-grace",
        type=float,
        default=SHUTDOWN_GRACE_SECONDS,
        help="on Ctrl+C / SIGTERM, seconds requests in flight may still finish; after that "
        "they are answered 503 (%(default)s)",
    )
    lim.add_argument(
        "--batch-window-ms",
        type=float,
        default=limits.batch_window_seconds * 1000,
        help="when the model is idle, how long the first request waits for others (%(default)s)",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    add_model_options(p)
    p.add_argument(
        "--also-model",
        action="append",
        default=[],
        metavar="MODEL",
        help="load this model too (repeatable); the page and the API's `model` field pick one",
    )
    p.set_defaults(handler=run)


SHUTDOWN_GRACE_SECONDS = 5.0


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def settings_from(args: argparse.Namespace):  # -> ServerSettings (imported lazily)
    from ..server.settings import LOCAL_HOST_NAMES, LOCAL_HOSTS, Limits, ServerSettings

    key = args.api_key or os.environ.get("PRESAMPLE_API_KEY") or None
    if args.host not in LOCAL_HOSTS:
        if not args.expose:
            raise UserError(
                f"--host {args.host} makes the server reachable from other machines; "
                "add --expose (and --api-key KEY) if that is what you want"
            )
        if key is None and not args.no_auth:
            raise UserError(
                "--expose needs an API key (--api-key KEY or $PRESAMPLE_API_KEY), "
                "or --no-auth to serve without one"
            )
    if args.allowed_host and not args.expose:
        raise UserError("--allowed-host is for --expose; a loopback server answers loopback names")
    allowed = LOCAL_HOST_NAMES
    if args.expose:
        named = tuple(args.allowed_host) or (
            ("*",) if args.host in ("0.0.0.0", "::") else (args.host,)
        )
        allowed = (*LOCAL_HOST_NAMES, *named)
    if not 0 <= args.shutdown_grace <= 3600:
        raise UserError("--shutdown-grace must be between 0 and 3600 seconds")
    if not 0 < args.port < 65536:
        raise UserError("--port must be between 1 and 65535")
    try:
        limits = Limits(
            max_batch=args.max_batch,
            max_caption_candidates=args.max_caption_candidates,
            queue_size=args.queue_size,
            timeout_seconds=args.timeout,
            batch_window_seconds=args.batch_window_ms / 1000,
        )
        return ServerSettings(
            models=(args.model or "default", *args.also_model),
            models_dirs=tuple(Path(d) for d in args.models_dir),
            backend=args.backend,
            device=args.device,
            dtype=args.dtype,
            sampling=sampling_overrides(args),
            api_key=key,
            allowed_hosts=allowed,
        ), limits
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _check_port(host: str, port: int) -> None:
    """A ``UserError`` now when the address cannot be listened on (a port in use):
    uvicorn would find out only after the models load, and say so in a log line
    after this command had already printed "serving on"."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As asyncio's server does on Unix: a port a closed server left in
        # TIME_WAIT is free to use.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UserError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                "choose another --port (or stop what uses it)"
            ) from None


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..server import create_app
        from ..server.logs import configure
    except ImportError as exc:
        raise UserError(
            f"presample serve needs the server extra: {install_hint('server')} ({exc.name})"
        ) from None
    from dataclasses import replace

    from ..registry import resolve
    from .common import EXIT_FAILURE

    settings, limits = settings_from(args)
    settings = replace(settings, limits=limits)
    # Name problems (no such model) as one line before anything listens; the
    # weights themselves load once, in the app's startup.
    for spec in settings.models:
        resolve(spec, search=settings.models_dirs)
    _check_port(args.host, args.port)
    configure(args.log_level)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"presample: serving on http://{host}:{args.port}/ (Ctrl+C to stop)", file=sys.stderr)
    # uvicorn drains requests on SIGTERM, then raises the signal again for the
    # handler that was there before it: this one makes that a clean exit 0
    # (the default handler would end the process as killed by the signal).
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        uvicorn.run(
            create_app(settings),
            host=args.host,
            port=args.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=args.shutdown_grace,
        )
    except SystemExit as exc:  # uvicorn exits this way when startup (model loading) fails
        return EXIT_FAILURE if exc.code else 0
    return 0
