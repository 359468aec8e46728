"""GET /openapi.json: valid OpenAPI 3.1, and exactly the app's routes."""
from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from proxy.surfaces.api_docs import routes



def test_the_document_validates(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_is_documented_and_every_documented_path_is_a_route(app, client):
    document = client.get("/openapi.json").get_json()
    documented = set(document["paths"])
    registered = routes(app)
    assert "/api/chat" in registered and "/v1/chat/completions" in registered
    assert registered - documented == set(), "routes missing from proxy/openapi/<surface>.yaml"
    assert documented - registered == set(), "paths in the document that are no route"


def test_every_operation_documents_its_methods(app, client):
    """Each route's methods (GET, POST, DELETE) are operations of its path."""
    document = client.get("/openapi.json").get_json()
    from proxy.surfaces.api_docs import openapi_path
    for rule in app.url_map.iter_rules():
        path = openapi_path(rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in document["paths"][path], f"{method} {path} is not documented"


def test_json_bodies_have_schemas(client):
    document = client.get("/openapi.json").get_json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            body = operation.get("requestBody")
            if body:
                assert body["content"]["application/json"]["schema"], f"{method} {path}"
            for status, response in operation["responses"].items():
                for media, value in response.get("content", {}).items():
                    assert "schema" in value, f"{method} {path} {status} {media}"


def test_docs_page_is_served(client):
    page = client.get("/docs")
    assert page.status_code == 200 and b"/openapi.json" in page.data
    with client.get("/docs/docs.js") as script:
        assert script.status_code == 200
