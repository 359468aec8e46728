"""Property-based fuzzing (hypothesis) of the /v1/responses endpoints, with
the app, strategies and checks of tests/test_fuzz.py: for any body no 5xx,
no traceback in the log, every error in the Responses error shape; streamed
answers end in exactly one terminal event."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .test_fuzz import BAD_SCHEMAS, BAD_URLS, FUZZ, MODELS, ROLES, anything, check, errors_logged, fuzz_app  # noqa: F401

pytestmark = pytest.mark.integration

part = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["input_text", "output_text", "text", 5]),
                           "text": st.one_of(st.text(max_size=30), anything)}),
    st.fixed_dictionaries({"type": st.just("input_image"),
                           "image_url": st.one_of(st.sampled_from(BAD_URLS), anything)}),
    st.fixed_dictionaries({"type": st.just("input_file")}, optional={
        "file_data": st.one_of(st.sampled_from(["data:application/pdf;base64,JVBE", "data:text/plain;base64,@@",
                                                "data:", "x"]), anything),
        "filename": anything, "file_url": st.one_of(st.sampled_from(BAD_URLS), anything), "file_id": anything}),
    anything,
)
item = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(ROLES)}, optional={
        "type": st.sampled_from(["message", "mystery", None]), "phase": anything,
        "content": st.one_of(st.text(max_size=30), st.lists(part, max_size=3), anything)}),
    st.fixed_dictionaries({"type": st.just("function_call")}, optional={
        "call_id": st.one_of(st.just("call_1"), anything), "name": anything, "arguments": anything}),
    st.fixed_dictionaries({"type": st.just("function_call_output")}, optional={
        "call_id": st.one_of(st.just("call_1"), anything), "output": anything}),
    st.fixed_dictionaries({"type": st.just("reasoning")}, optional={
        "summary": anything, "content": anything,
        "encrypted_content": st.one_of(st.sampled_from(["sbm1.", "sbm1.@@@", "sbm1.e30", "gAAAA"]), anything)}),
    st.fixed_dictionaries({"type": st.sampled_from(["item_reference", "compaction"])}, optional={
        "id": anything, "encrypted_content": anything}),
    anything,
)
tool = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["function", "web_search"]),
                           "name": st.sampled_from(["get_weather", "", "bad name!"])},
                          optional={"parameters": st.one_of(st.sampled_from(BAD_SCHEMAS), anything),
                                    "strict": anything}),
    anything,
)
body = st.fixed_dictionaries({}, optional={
    "model": st.one_of(st.sampled_from(MODELS), anything),
    "input": st.one_of(st.text(max_size=30), st.lists(item, min_size=1, max_size=4), anything),
    "instructions": anything, "stream": st.one_of(st.booleans(), anything),
    "tools": st.one_of(st.lists(tool, max_size=2), anything),
    "tool_choice": st.one_of(st.sampled_from(["auto", "none", "required"]), anything,
                             st.fixed_dictionaries({"type": st.sampled_from(["function", "allowed_tools"])},
                                                   optional={"name": anything, "tools": anything, "mode": anything})),
    "text": st.one_of(st.builds(lambda s: {"format": {"type": "json_schema", "name": "x", "schema": s}},
                                st.sampled_from(BAD_SCHEMAS)), anything),
    "reasoning": anything, "max_output_tokens": anything, "temperature": anything, "top_p": anything,
    "metadata": anything, "truncation": anything, "store": anything, "previous_response_id": anything,
    "parallel_tool_calls": anything, "background": anything,
})


def terminal_count(text: str) -> int:
    return sum(1 for line in text.split("\n") if line in (
        "event: response.completed", "event: response.failed", "event: response.incomplete"))


@FUZZ
@given(body=st.one_of(body, anything))
def test_create(fuzz_app, errors_logged, body):  # noqa: F811
    response = fuzz_app.test_client().post("/v1/responses", data=json.dumps(body), content_type="application/json")
    check(response, errors_logged, body)
    if response.status_code == 200 and response.mimetype == "text/event-stream":
        assert terminal_count(response.get_data(as_text=True)) == 1, body


@FUZZ
@given(body=st.one_of(body, anything), response_id=st.text(max_size=20),
       query=st.dictionaries(st.sampled_from(["limit", "order", "after", "stream"]), st.text(max_size=5), max_size=3))
def test_the_other_endpoints(fuzz_app, errors_logged, body, response_id, query):  # noqa: F811
    client = fuzz_app.test_client()
    check(client.post("/v1/responses/compact", data=json.dumps(body), content_type="application/json"),
          errors_logged, ("compact", body))
    safe = response_id.replace("/", "_").replace("?", "").replace("#", "") or "x"
    check(client.get(f"/v1/responses/{safe}", query_string=query), errors_logged, ("get", safe, query))
    check(client.get(f"/v1/responses/{safe}/input_items", query_string=query), errors_logged, ("items", safe, query))
    check(client.delete(f"/v1/responses/{safe}"), errors_logged, ("delete", safe))
