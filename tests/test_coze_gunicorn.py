"""The Coze modes under gunicorn's gevent worker (the deployment): the
provider's locks, cancel threads and busy waits are cooperative there.
Configured from the environment, as an operator would."""
from __future__ import annotations

import threading
import time

import pytest
import requests
from openai import OpenAI

from tests.fakes import coze as fake_coze
from tests.fakes.coze import CozeUpstream
from tests.store_support import Gunicorn

pytestmark = pytest.mark.e2e


def test_coze_modes_under_gunicorn(tmp_path):
    with CozeUpstream() as fake:
        server = Gunicorn(tmp_path, {"COZE_API_KEY": fake.key, "COZE_BASE_URL": fake.url,
                                     "COZE_BOT_ID": fake_coze.SLOW_BOT, "COZE_WORKFLOW_ID": fake_coze.INTERRUPT_WORKFLOW,
                                     "SWITCHBOARD_DATABASE": str(tmp_path / "s.db")})
        try:
            client = OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0, timeout=30)
            first = client.chat.completions.with_raw_response.create(
                model="gpt-4o", messages=[{"role": "user", "content": "start"}],
                extra_headers={"x-model-type": "conversation"})
            conversation_id = first.headers["x-conversation-id"]
            headers = {"x-model-type": "conversation", "x-conversation-id": conversation_id}
            answers: list[str] = []

            def turn(n: int) -> None:
                stream = client.chat.completions.create(model="gpt-4o", stream=True, extra_headers=headers,
                                                        messages=[{"role": "user", "content": f"q{n}"}])
                answers.append("".join(c.choices[0].delta.content or "" for c in stream if c.choices))

            threads = [threading.Thread(target=turn, args=(n,)) for n in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert sorted(a.split(" (turn ")[1] for a in answers) == ["2)", "3)"]  # one after the other

            # a client that leaves mid-answer cancels its Coze chat
            with requests.post(f"{server.url}/v1/chat/completions", stream=True, timeout=10, headers=headers,
                               json={"model": "gpt-4o", "stream": True,
                                     "messages": [{"role": "user", "content": "long"}]}) as response:
                for line in response.iter_lines():
                    if b'"content"' in line:
                        break
            deadline = time.monotonic() + 10
            while not fake.cancelled and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(fake.cancelled) == 1

            question = client.chat.completions.with_raw_response.create(
                model="gpt-4o", messages=[{"role": "user", "content": "weather"}],
                extra_headers={"x-model-type": "workflow"})
            session_id = question.headers["x-workflow-session-id"]
            assert question.parse().choices[0].message.content == fake_coze.INTERRUPT_QUESTION
            answer = client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "Paris"}],
                extra_headers={"x-model-type": "workflow", "x-workflow-session-id": session_id})
            assert answer.choices[0].message.content == fake_coze.workflow_text("weather / Paris")
        except BaseException:
            print(server.log_text())
            raise
        finally:
            server.close()
