"""A host Flask app of its own (a blueprint, a 404 handler, its JSON error
style and JSON settings) with Switchboard mounted under /llm: what teams with
a Flask stack do. Served by the mount tests in-process, by `flask run` and
by gunicorn's gevent worker (`gunicorn -c gunicorn.conf.py tests.host_app:app`).
"""
from __future__ import annotations

from flask import Blueprint, Flask, jsonify

from proxy import Switchboard

shop = Blueprint("shop", __name__)


@shop.get("/items")
def items():
    return jsonify({"zebra": 1, "apple": 2})  # the host keeps key order (sort_keys off)


@shop.post("/items")
def add_item():
    return jsonify({"added": True}), 201


@shop.get("/boom")
def boom():
    raise RuntimeError("host failure")


def host_not_found(error):
    return jsonify({"ok": False, "problem": "no such page here"}), 404


def host_failure(error):
    return jsonify({"ok": False, "problem": "the host failed"}), 500


def create_host_app(extension: Switchboard | None = None, **config) -> Flask:
    app = Flask("host")
    app.json.sort_keys = False
    app.json.compact = False
    app.config["SWITCHBOARD_DEFAULT_MODEL"] = "mock"
    app.config.update(config)
    app.register_blueprint(shop)
    app.register_error_handler(404, host_not_found)
    app.register_error_handler(RuntimeError, host_failure)
    if extension is None:
        Switchboard(app, url_prefix="/llm")
    else:
        extension.init_app(app, url_prefix="/llm")
    return app


app = create_host_app()
