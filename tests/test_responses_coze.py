"""/v1/responses answered by Coze (chat mode, routed by the x-model-type header)
through the official `openai` SDK, the fake Coze on real sockets: the
stored chain of previous_response_id reaches Coze as its additional messages."""
from __future__ import annotations

import pytest
from openai import OpenAI

from tests.fakes import coze as fake_coze
from tests.fakes.coze import CozeUpstream, make_app
from tests.fakes.live import serve

from .responses_support import validate_stream

pytestmark = pytest.mark.integration
CHAT = {"extra_headers": {"x-model-type": "chat"}}


def test_coze_chat_answers_and_continues_a_stored_response(tmp_path):
    with CozeUpstream() as fake:
        app = make_app(fake, database_path=str(tmp_path / "switchboard.db"))
        with serve(app) as base_url:
            client = OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0, timeout=20)
            first = client.responses.create(model="gpt-4o-mini", input="Hi", **CHAT)
            assert first.output_text == fake_coze.answer_text("Hi", 1) and first.status == "completed"
            events = list(client.responses.create(model="gpt-4o-mini", input="What day is it?",
                                                  previous_response_id=first.id, stream=True, **CHAT))
    validate_stream([event.to_dict() for event in events])
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text == fake_coze.answer_text("What day is it?", 2)
    sent = fake.requests_to("/v3/chat")[-1].json["additional_messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "Hi"), ("assistant", fake_coze.answer_text("Hi", 1)), ("user", "What day is it?")]
