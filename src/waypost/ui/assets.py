"""The dashboard's files, read once from the package and answered from memory.

`/ui/` and any path under it that names no file answer `index.html`: the
pages route by the URL's fragment (`#/services`), so a bookmark of a page
loads the same document. The files are package data (`static/`), so a wheel
carries them and nothing is fetched from anywhere else: the Content-Security
-Policy says so to the browser too.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from waypost.http.messages import Request, Response, text_response

_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".ico": b"image/x-icon",
}

#: Everything from the agent itself; no inline script; styles as files (the
#: SVG drawings set colours through attributes, not inline style blocks).
CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    b" connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _load() -> dict[str, Response]:
    files: dict[str, Response] = {}
    root = resources.files("waypost.ui").joinpath("static")
    for entry in root.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        kind = _TYPES.get(suffix)
        if kind is None or not entry.is_file():
            continue
        body = entry.read_bytes()
        etag = b'"' + hashlib.sha256(body).hexdigest()[:16].encode() + b'"'
        files[entry.name] = Response(
            200,
            body,
            [
                (b"content-type", kind),
                # Revalidate every load: a new waypost serves new files at
                # the same names, and an unchanged file is a 304.
                (b"cache-control", b"no-cache"),
                (b"etag", etag),
                (b"x-content-type-options", b"nosniff"),
                (b"content-security-policy", CSP),
                (b"referrer-policy", b"no-referrer"),
            ],
        )
    return files


_FILES = _load()
_NOT_MODIFIED: dict[str, Response] = {
    name: Response(304, b"", [h for h in found.headers if h[0] == b"etag"])
    for name, found in _FILES.items()
}


async def static(registry: object, request: Request) -> Response:
    """`/ui/<file>`: a file of the dashboard; anything else is the page."""
    name = request.tail or "index.html"
    if name not in _FILES:
        if "." in name.rpartition("/")[2]:
            return text_response(f"no such file: /ui/{name}\n", 404)
        name = "index.html"
    found = _FILES[name]
    for header, value in request.headers:
        if header.lower() == b"if-none-match" and value == found.headers[2][1]:
            return _NOT_MODIFIED[name]
    return found


async def redirect(registry: object, request: Request) -> Response:
    """`/ui` → `/ui/` (the pages' relative URLs need the slash)."""
    return Response(301, b"", [(b"location", b"/ui/")])
