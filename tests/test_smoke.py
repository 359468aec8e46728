"""The quickest end-to-end check: the demo model answers over /api/chat."""

import pytest

pytestmark = pytest.mark.integration


def test_mock_model_streams_and_ends(client):
    response = client.post("/api/chat", json={"messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body == (
        'data: {"content":"This is a response from the mock model. I received your message: "}\n\n'
        'data: {"content":"hi"}\n\n'
        "data: [DONE]\n\n"
    )
