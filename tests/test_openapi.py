"""GET /openapi.json: valid OpenAPI 3.1, and exactly the app's routes."""
from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from proxy.surfaces.api_docs import routes

pytestmark = pytest.mark.integration  # the Flask test client; the fragment check alone is pure



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


def _schema(document: dict, path: str, method: str, status: str, media: str = "application/json") -> dict:
    response = document["paths"][path][method]["responses"][status]
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    # the components at the root, so "#/components/..." references resolve
    return {**response["content"][media]["schema"], "components": document["components"]}


def test_answers_match_their_documented_schemas(client):
    """The document is true of the server: real answers validate against it."""
    from openapi_schema_validator import OAS31Validator

    document = client.get("/openapi.json").get_json()

    def check(path: str, method: str, response, status: int = 200) -> dict:
        assert response.status_code == status, response.get_data(as_text=True)
        body = response.get_json()
        OAS31Validator(_schema(document, path, method, str(status))).validate(body)
        return body

    check("/", "get", client.get("/"))
    check("/health", "get", client.get("/health?format=json"))
    check("/v1/models", "get", client.get("/v1/models"))
    check("/v1/models/{model_id}", "get", client.get("/v1/models/agent-demo"))
    check("/v1/models/{model_id}", "get", client.get("/v1/models/nope"), 404)
    check("/v1/chat/completions", "post", client.post("/v1/chat/completions", json={
        "model": "reflection-and-thinking", "messages": [{"role": "user", "content": "owls"}]}))
    check("/v1/chat/completions", "post", client.post("/v1/chat/completions", json={"model": "x"}), 400)
    check("/api/chat", "post", client.post("/api/chat", json={"model": "nope", "messages": [
        {"role": "user", "content": "hi"}]}), 404)
    created = check("/api/conversations", "post", client.post("/api/conversations", json={"title": "t"}), 201)
    client.post("/api/chat", json={"model": "mock", "conversation_id": created["id"],
                                   "messages": [{"role": "user", "content": "hi"}]}).get_data()
    check("/api/conversations", "get", client.get("/api/conversations"))
    check("/api/conversations/{conversation_id}", "get", client.get(f"/api/conversations/{created['id']}"))
    check("/api/conversations/{conversation_id}", "delete", client.delete(f"/api/conversations/{created['id']}"))
    check("/api/conversations/{conversation_id}", "get", client.get(f"/api/conversations/{created['id']}"), 404)


@pytest.mark.unit
def test_every_fragment_merges_into_a_valid_document():
    """All of proxy/openapi/*.yaml at once (also fragments of surfaces this
    app does not register): no path or schema described twice, valid 3.1."""
    import pathlib

    from proxy.surfaces.api_docs import FOLDER, build

    names = sorted(p.stem for p in pathlib.Path(FOLDER).glob("*.yaml") if p.stem != "base")
    assert {"workbench", "models", "openai_chat", "conversations", "playground", "api_docs"} <= set(names)
    validate(build(names, "/llm"))
