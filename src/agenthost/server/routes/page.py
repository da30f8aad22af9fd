"""The chat page: ``/`` serves ``static/index.html``, ``/static`` the files it loads.

Neither needs a key: the page asks for one when the API answers 401. Every
response carries a strict Content-Security-Policy (scripts, styles and
connections from this origin only, no inline script, no plugins, no framing),
so even model output that got past the page's sanitiser could neither run
script nor load anything remote. Our own files are revalidated on every load
(``no-cache`` with an ETag, so an unchanged file is a 304); vendored libraries
sit in directories named with their version, so they are cached for a year.
Files under ``/static`` are gzipped for clients that accept it.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI, Request
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
REVALIDATE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
_VERSIONED = re.compile(r"^vendor/[^/]+-\d+\.\d+\.\d+/")


class PageFiles(StaticFiles):
    """Static files with the page's security headers and caching rules."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        versioned = _VERSIONED.match(path.replace("\\", "/"))
        response.headers["Cache-Control"] = IMMUTABLE if versioned else REVALIDATE
        return response


def install_page(app: FastAPI) -> None:
    """Serve the page at ``/`` and its files under ``/static`` (outside the API schema)."""
    files = PageFiles(directory=STATIC_DIR)

    async def index(request: Request) -> Response:
        return await files.get_response("index.html", request.scope)

    app.add_route("/", index, methods=["GET"], include_in_schema=False)
    app.mount("/static", GZipMiddleware(files, minimum_size=1024), name="static")
