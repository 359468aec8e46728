"""The OpenAPI document of every HTTP endpoint, and a page that renders it.

    proxy/openapi/base.yaml + proxy/openapi/<blueprint name>.yaml (one per surface)
        -> document(app) -> GET /openapi.json  -> GET /docs (docs.html + docs.js)

Each surface keeps its paths and schemas in the YAML file named after its
blueprint, so a new surface adds its own file; tests/test_openapi.py fails
when a route has no path in the document or a path has no route. A path item
`{x-same-as: /other}` repeats another path (trailing-slash aliases).
`servers` carries the prefix Switchboard is mounted under.
"""
from __future__ import annotations

import copy
import html
import os
import re
from typing import Any

import yaml
from flask import Blueprint, Flask, Response, current_app, request, send_from_directory

from .common import json_response, switchboard

FOLDER = os.path.join(os.path.dirname(os.path.dirname(__file__)), "openapi")
STATIC = os.path.join(os.path.dirname(os.path.dirname(__file__)), "static", "docs")

blueprint = Blueprint("api_docs", __name__)


def _load(name: str) -> dict[str, Any]:
    path = os.path.join(FOLDER, f"{name}.yaml")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def build(blueprint_names: list[str], server_url: str = "/") -> dict[str, Any]:
    """The document for these surfaces (blueprint names), served under server_url."""
    document = _load("base")
    paths: dict[str, Any] = {}
    components = document.setdefault("components", {})
    for name in blueprint_names:
        fragment = _load(name)
        for path, item in (fragment.get("paths") or {}).items():
            if path in paths:
                raise ValueError(f"openapi/{name}.yaml: {path} is already described by another surface")
            paths[path] = item
        for section, entries in (fragment.get("components") or {}).items():
            target = components.setdefault(section, {})
            for key, value in entries.items():
                if key in target:
                    raise ValueError(f"openapi/{name}.yaml: components.{section}.{key} is defined twice")
                target[key] = value
    for path, item in list(paths.items()):
        alias = item.get("x-same-as") if isinstance(item, dict) else None
        if alias:
            twin = copy.deepcopy(paths[alias])
            for operation in twin.values():
                if isinstance(operation, dict) and "operationId" in operation:
                    operation["operationId"] += "TrailingSlash"
            paths[path] = {**twin, "description": f"The same as {alias}."}
    document["paths"] = dict(sorted(paths.items()))
    document["servers"] = [{"url": server_url or "/", "description": "this server"}]
    return document


def openapi_path(rule: str, prefix: str = "") -> str:
    """A werkzeug rule (`/v1/models/<path:model_id>`) as an OpenAPI path."""
    if prefix and rule.startswith(prefix):
        rule = rule[len(prefix):] or "/"
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def routes(app: Flask) -> set[str]:
    """Switchboard's own HTTP routes of the app, as OpenAPI paths (prefix removed)."""
    board = app.extensions["switchboard"]
    # inside Switchboard's blueprint ("switchboard.<name>"), or added on the app later ("<name>")
    owners = {f"switchboard.{name}" for name in board.blueprint_names} | set(board.blueprint_names)
    return {openapi_path(rule.rule, board.url_prefix) for rule in app.url_map.iter_rules()
            if rule.endpoint.rpartition(".")[0] in owners and not rule.endpoint.endswith(".static")}


def document(app: Flask) -> dict[str, Any]:
    board = app.extensions["switchboard"]
    cached = board.extras.get("openapi")
    if cached is None:
        cached = build(board.blueprint_names, board.url_prefix or "/")
        board.extras["openapi"] = cached
    return cached


@blueprint.get("/openapi.json")
def openapi_json() -> Response:
    return json_response(document(current_app._get_current_object()))


@blueprint.get("/docs")
def docs() -> Response:
    base = request.script_root + switchboard().url_prefix
    with open(os.path.join(STATIC, "index.html"), encoding="utf-8") as handle:
        page = handle.read()
    return Response(page.replace("{{base}}", html.escape(base, quote=True)), mimetype="text/html", headers={
        "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                   "object-src 'none'; base-uri 'none'",
    })


@blueprint.get("/docs/<path:filename>")
def docs_asset(filename: str) -> Response:
    return send_from_directory(STATIC, filename, max_age=300)

