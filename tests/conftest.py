"""Shared fixtures: an app with instant demo models and its test client."""
from __future__ import annotations

import os
import tempfile

import pytest

from proxy import create_app


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
