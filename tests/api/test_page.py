"""The chat page and its files: served without a key, with a strict CSP and caching headers."""

from __future__ import annotations

import re

from agenthost.server.routes.page import STATIC_DIR

from .conftest import running_app

VENDOR = "/static/vendor/marked-18.2.1/marked.esm.js"


async def test_the_page_is_served_at_the_root_with_a_strict_csp() -> None:
    async with running_app() as (_, client):
        page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/js/app.js"></script>' in page.text
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in page.headers["content-security-policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-cache"
    assert page.headers["etag"]


async def test_unchanged_files_are_304_and_vendored_ones_cached_for_a_year() -> None:
    async with running_app() as (_, client):
        page = await client.get("/")
        again = await client.get("/", headers={"If-None-Match": page.headers["etag"]})
        script = await client.get("/static/js/app.js")
        vendored = await client.get(VENDOR)
        module = await client.get("/static/vendor/dompurify-3.4.18/purify.es.mjs")
        missing = await client.get("/static/nothing.js")
    assert again.status_code == 304
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["cache-control"] == "no-cache"
    assert vendored.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert vendored.headers["content-encoding"] == "gzip"
    assert module.headers["content-type"].startswith("text/javascript")
    assert missing.status_code == 404
    assert missing.json()["error"] == "Not found"


async def test_the_page_needs_no_key_when_the_api_does() -> None:
    async with running_app(auth="keys") as (_, client):
        page = await client.get("/")
        script = await client.get("/static/js/app.js")
        api = await client.get("/agents")
    assert page.status_code == script.status_code == 200
    assert api.status_code == 401


async def test_the_page_is_not_in_the_api_schema() -> None:
    async with running_app() as (_, client):
        schema = (await client.get("/openapi.json")).json()
    assert "/" not in schema["paths"]
    assert not any(path.startswith("/static") for path in schema["paths"])


def test_every_module_the_page_imports_exists() -> None:
    imports = re.compile(r"""(?:from|import)\s*\(?\s*["'](\.{1,2}/[^"']+)["']""")
    for module in (STATIC_DIR / "js").glob("*.js"):
        for target in imports.findall(module.read_text()):
            assert (module.parent / target).resolve().is_file(), f"{module.name} imports {target}"
    html = (STATIC_DIR / "index.html").read_text()
    for href in re.findall(r'(?:href|src)="/static/([^"]+)"', html):
        assert (STATIC_DIR / href).is_file(), href


def test_each_vendored_library_has_its_licence_and_is_recorded() -> None:
    vendor = STATIC_DIR / "vendor"
    readme = (vendor / "README.md").read_text()
    for library in (p for p in vendor.iterdir() if p.is_dir()):
        assert (library / "LICENSE").is_file(), library.name
        name, version = library.name.rsplit("-", 1)
        assert name in readme, library.name
        assert version in readme, library.name
