"""``agenthost serve``: run the app under uvicorn (uvloop, httptools), one or more workers.

Command-line options become ``AGENTHOST_*`` variables of this process, so every
worker process, which builds its own app from the environment, sees the same
settings.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import sys

import uvicorn

from agenthost.llm.registry import check_model_id
from agenthost.observability.logging import configure_logging
from agenthost.observability.metrics import multiprocess_directory
from agenthost.settings import Settings

APP_FACTORY = "agenthost.server.app:create_app_from_environment"
logger = logging.getLogger(__name__)


def run_server(
    settings: Settings,
    overrides: dict[str, str | int | None],
    *,
    reload: bool = False,
    insecure: bool = False,
) -> int:
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"AGENTHOST_{name.upper()}"] = str(value)
    settings = Settings()
    check_model_id(settings.resolved_model_id())  # a clear error now, not a startup traceback
    configure_logging(settings)  # uvicorn's loggers included (log_config=None below)
    if settings.auth == "none" and not _loopback(settings.host):
        if not insecure:
            print(
                f"agenthost: refusing to listen on {settings.host} with authentication off: "
                "anyone who can reach it could use the model. Set AGENTHOST_AUTH=keys "
                "(see docs/security.md), or pass --insecure if something in front of it "
                "authenticates.",
                file=sys.stderr,
            )
            return 2
        logger.warning(
            "INSECURE: serving on %s with authentication off (--insecure); every client "
            "that can reach this address can use the API",
            settings.host,
        )
    # uvicorn re-raises the stop signal once it has shut down, so that the default
    # handler ends the process; a stop we asked for is a clean exit, so catch it.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _stopped)
    scheme = "https" if settings.ssl_certfile else "http"
    base = f"{scheme}://{_display_host(settings.host)}:{settings.port}"
    print(f"agenthost: serving on {base}  (API docs: {base}/docs, chat page: {base}/)", flush=True)
    workers = 1 if reload else settings.workers
    with multiprocess_directory(settings.metrics_dir, processes=workers):
        _run_uvicorn(settings, reload=reload)
    return 0


def _run_uvicorn(settings: Settings, *, reload: bool) -> None:
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=None if reload else settings.workers,
        reload=reload,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 5,
        log_config=None,
        log_level=settings.log_level.lower(),
        access_log=False,
        ssl_certfile=settings.ssl_certfile,
        ssl_keyfile=settings.ssl_keyfile,
    )


def _stopped(signum: int, frame: object) -> None:
    """The stop signal, re-raised by uvicorn after a graceful shutdown: nothing left to do."""


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _display_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
