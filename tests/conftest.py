"""Shared fixtures: an app with instant demo models and its test client."""
from __future__ import annotations

import pytest

from proxy import create_app


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
