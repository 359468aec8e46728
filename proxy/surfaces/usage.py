"""GET /v1/usage: what each key and model used, for admin keys.

    GET /v1/usage?from=&to=&group_by=key|model|provider|surface|status|day (comma-separated)
        -> gate.usage.aggregate() -> {object: "usage", from, to, group_by, data: [...], totals}

`from` / `to` are unix seconds or ISO 8601 dates (UTC); the default is the
last 30 days. Each group carries requests, errors (every status but ok),
input / output / reasoning / cached tokens and cost (USD, 0 without prices).
With keys configured only a key with `admin: true` may read it (401 without
a key, 403 for other keys); without keys it is open, like every endpoint.
Errors are OpenAI error objects, as on /v1/models.
"""
from __future__ import annotations

import time

from flask import Blueprint, Response, request

from ..errors import BadRequest, ProxyError
from ..usage import SUMS, new_group, parse_group_by, parse_time
from .common import error_response, json_response, switchboard
from .openai_chat_codec import error_body as openai_error_body
from .operations import require_admin

blueprint = Blueprint("usage", __name__)
blueprint.before_request(require_admin)

DEFAULT_SPAN = 30 * 86400


@blueprint.errorhandler(ProxyError)
def handle_error(error: ProxyError) -> Response:
    return error_response(error, openai_error_body)


@blueprint.get("/v1/usage")
def usage() -> Response:
    now = time.time()
    try:
        end = parse_time(request.args.get("to"), "to", now)
        start = parse_time(request.args.get("from"), "from", end - DEFAULT_SPAN)
        group_by = parse_group_by(request.args.get("group_by"))
    except ValueError as error:
        raise BadRequest(str(error), param="group_by" if "group_by" in str(error) else None) from None
    if start >= end:
        raise BadRequest("from must be earlier than to", param="from")
    log = switchboard().gate.usage
    data = log.aggregate(start, end, group_by) if log is not None else []
    totals = new_group()
    for group in data:
        for name in ("requests", "errors", *SUMS):
            totals[name] += group[name]
    return json_response({"object": "usage", "from": start, "to": end, "group_by": list(group_by),
                          "data": data, "totals": totals})
