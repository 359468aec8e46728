"""Shared fixtures: an app with instant demo models and its test client."""
from __future__ import annotations

import os
import tempfile

import pytest

from proxy import create_app

KINDS = ("unit", "integration", "e2e")  # registered in pytest.ini


def pytest_collection_modifyitems(config, items):
    """Refuse a test module without its kind: a module-level
    `pytestmark = pytest.mark.unit` (or `integration`, `e2e`; see pytest.ini).
    Without it a new module would silently drop out of `make test-fast` or of
    a `-m` selection."""
    unmarked = sorted({
        str(module.path.relative_to(config.rootpath))
        for module in {item.getparent(pytest.Module) for item in items}
        if module is not None and not any(mark.name in KINDS for mark in module.own_markers)
    })
    if unmarked:
        raise pytest.UsageError(
            "test modules without a kind marker: " + ", ".join(unmarked)
            + "; add `pytestmark = pytest.mark.unit` (pure, no server), `pytest.mark.integration`"
            " (app, fake upstream or live server in-process) or `pytest.mark.e2e` (gunicorn, nginx,"
            " Node clients, several processes) at the top of each"
        )


def pytest_ignore_collect(collection_path, config):
    """`-m unit` (make test-fast) does not import modules that hold no unit
    test: their imports (the openai SDK, hypothesis, the live-server helpers)
    cost more than all unit tests together. A module holds unit tests only if
    its source says `mark.unit` (module-level or on a test)."""
    if (config.option.markexpr or "").strip() != "unit":
        return None
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    return None if "mark.unit" in collection_path.read_text(encoding="utf-8") else True


def pytest_configure(config):
    # Apps a test builds without its own database_path must not write into
    # the working tree's instance/ folder.
    if "SWITCHBOARD_DATABASE" not in os.environ:
        folder = tempfile.mkdtemp(prefix="switchboard-tests-")
        os.environ["SWITCHBOARD_DATABASE"] = os.path.join(folder, "switchboard.db")


@pytest.fixture
def app(tmp_path):
    # each test its own SQLite store (never the shared instance/ file)
    return create_app({"demo_delay": 0, "database_path": str(tmp_path / "switchboard.db")})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def fake_upstream():
    """A fake upstream LLM server (tests/fakes/upstream.py), closed after the test."""
    from tests.fakes.upstream import FakeUpstream

    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="session")
def gunicorn_server(tmp_path_factory):
    """`gunicorn -c gunicorn.conf.py wsgi:app` (one gevent worker), started once."""
    from .servers import start_gunicorn

    server = start_gunicorn(tmp_path_factory.mktemp("gunicorn"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def flask_server(tmp_path_factory):
    """`flask --app app run` (Werkzeug, threads), started once."""
    from .servers import start_flask_run

    server = start_flask_run(tmp_path_factory.mktemp("flask"))
    yield server
    server.stop()
