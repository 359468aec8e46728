"""The browser playground: one static page that talks to the other surfaces.

    GET / (Accept: text/html)   -> workbench.index -> page() -> playground.html
    GET /playground/<file>      -> proxy/static/playground/ (HTML, CSS, JS)
    GET /playground/vendor/<file> -> proxy/static/vendor/ (socket.io.min.js)

No build step and no CDN: the files are served from the package as they are,
so the page works offline and behind a firewall. The page learns where it is
mounted (a url_prefix) and whether API keys are required from two attributes
written into its <html> element; everything else it asks the server for
(/v1/models) like any other client.
"""
from __future__ import annotations

import html
import os

from flask import Blueprint, Response, request, send_from_directory

from .common import switchboard

STATIC = os.path.join(os.path.dirname(os.path.dirname(__file__)), "static")

blueprint = Blueprint("playground", __name__)

_page_cache: dict[str, str] = {}


def wants_page() -> bool:
    """A browser navigating here (it prefers text/html over JSON); curl's
    `*/*`, no Accept header and HEAD keep the JSON index."""
    if request.method != "GET":
        return False
    accept = request.accept_mimetypes
    if not accept.provided:
        return False
    return accept.quality("text/html") > accept.quality("application/json")


def _template() -> str:
    if "page" not in _page_cache:
        with open(os.path.join(STATIC, "playground", "index.html"), encoding="utf-8") as handle:
            _page_cache["page"] = handle.read()
    return _page_cache["page"]


def page() -> Response:
    # The prefix the app is mounted under ("" stand-alone, "/llm" inside a host app).
    base = request.script_root + switchboard().url_prefix
    keys = "true" if switchboard().settings.api_keys else "false"
    body = _template().replace("{{base}}", html.escape(base, quote=True)).replace("{{keys_required}}", keys)
    return Response(body, mimetype="text/html", headers={
        "Cache-Control": "no-cache",
        # The page's own files only: no inline script, no remote code; images may be
        # remote (model output) or data: URLs (uploads, generated images).
        "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                                   "img-src 'self' data: blob: http: https:; connect-src 'self' ws: wss:; "
                                   "object-src 'none'; base-uri 'none'; frame-ancestors 'self'",
        "Vary": "Accept",
    })


@blueprint.get("/playground/<path:filename>")
def asset(filename: str) -> Response:
    return send_from_directory(os.path.join(STATIC, "playground"), filename, max_age=300)


@blueprint.get("/playground/vendor/<path:filename>")
def vendor(filename: str) -> Response:
    return send_from_directory(os.path.join(STATIC, "vendor"), filename, max_age=86400)
