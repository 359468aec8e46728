"""`x-model-type: conversation` on providers other than Coze: Switchboard
keeps the history in its store, so the client sends only the new turn.
Through the official `openai` Python SDK, on the demo provider and on the
OpenAI provider over its fake upstream (which shows what went upstream)."""
from __future__ import annotations

import pytest
import requests
from openai import OpenAI

from proxy import create_app
from proxy.config import ProviderSettings
from tests.fakes import openai as openai_fake
from tests.fakes import scripted
from tests.fakes.live import serve
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.integration

KEYS = ["sk-team-a-0123456789", "sk-team-b-0123456789"]
HEADERS = {"x-model-type": "conversation"}


def sdk(url, key=KEYS[0]):
    return OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=20)


def ask(client, model, messages, headers, stream):
    if stream:
        with client.chat.completions.with_streaming_response.create(model=model, messages=messages, stream=True,
                                                                   extra_headers=headers) as response:
            return "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices), response.headers
    response = client.chat.completions.with_raw_response.create(model=model, messages=messages, extra_headers=headers)
    return response.parse().choices[0].message.content, response.headers


def get(url, path, key=KEYS[0]):
    return requests.get(f"{url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=10)


@pytest.mark.parametrize("stream", [True, False])
def test_demo_provider_keeps_the_history_in_the_store(tmp_path, stream):
    app = create_app({"demo_delay": 0, "database_path": str(tmp_path / "s.db"), "api_keys": KEYS})
    with serve(app) as url:
        client = sdk(url)
        first, headers = ask(client, "mock", [{"role": "user", "content": "one"}], HEADERS, stream)
        conversation_id = headers["x-conversation-id"]
        assert first == scripted.mock_text("one")
        second, headers = ask(client, "mock", [{"role": "user", "content": "two"}],
                              {**HEADERS, "x-conversation-id": conversation_id}, stream)
        assert second == scripted.mock_text("two") and headers["x-conversation-id"] == conversation_id
        listed = get(url, "/v1/conversations").json()["data"]
        assert [c["id"] for c in listed] == [conversation_id] and listed[0]["message_count"] == 4
        history = get(url, f"/v1/conversations/{conversation_id}/history").json()["data"]
        assert [(m["role"], m["content"]) for m in history] == [
            ("user", "one"), ("assistant", first), ("user", "two"), ("assistant", second)]
        assert get(url, "/v1/conversations", KEYS[1]).json()["data"] == []
        assert get(url, f"/v1/conversations/{conversation_id}/history", KEYS[1]).status_code == 404
        deleted = requests.delete(f"{url}/v1/conversations/{conversation_id}",
                                  headers={"Authorization": f"Bearer {KEYS[0]}"}, timeout=10)
        assert deleted.json() == {"id": conversation_id, "object": "conversation.deleted", "deleted": True}
        assert get(url, f"/v1/conversations/{conversation_id}/history").status_code == 404


def test_openai_upstream_receives_the_stored_history_plus_the_new_turn(tmp_path):
    with FakeUpstream(default=scripted.openai_responder) as fake:
        providers = {"openai": ProviderSettings(api_key=openai_fake.KEY, base_url=fake.url + "/v1",
                                                key_variable="OPENAI_API_KEY")}
        app = create_app({"demo_delay": 0, "max_retries": 0, "database_path": str(tmp_path / "s.db"),
                          "providers": providers})
        with serve(app) as url:
            client = sdk(url, "any")
            model = "openai/chat"  # the scripted fake answers like the demo model
            first, headers = ask(client, model, [{"role": "system", "content": "Be kind."},
                                                 {"role": "user", "content": "earlier"},
                                                 {"role": "assistant", "content": "earlier answer"},
                                                 {"role": "user", "content": "one"}], HEADERS, True)
            conversation_id = headers["x-conversation-id"]
            second, _ = ask(client, model, [{"role": "system", "content": "Be kind."},
                                            {"role": "user", "content": "two"}],
                            {**HEADERS, "x-conversation-id": conversation_id}, False)
        sent = fake.received[-1].json["messages"]
        assert [(m["role"], m["content"]) for m in sent] == [
            ("system", "Be kind."), ("user", "earlier"), ("assistant", "earlier answer"), ("user", "one"),
            ("assistant", first), ("user", "two")]
        assert second == scripted.mock_text("two")
