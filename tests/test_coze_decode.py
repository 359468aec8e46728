"""The pure Coze modules: recorded-format streams (tests/transcripts/coze/)
through the decoders, and request bodies built from ChatRequests."""
from __future__ import annotations

import ast
import json
import pathlib

import pytest

from proxy import sse
from proxy.canonical import ChatRequest, ImagePart, Message, TextPart, ToolResultPart, accumulate
from proxy.errors import AuthenticationFailed, BadRequest, RateLimited, UpstreamError
from proxy.providers.coze import request as coze_request
from proxy.providers.coze.decode import ChatDecoder, WorkflowDecoder, unwrap_output
from proxy.providers.coze.errors import coze_error, envelope_error, parse_envelope
from proxy.providers.coze.request import CozeConfig
from tests.fakes.upstream import transcript

pytestmark = pytest.mark.unit

ROOT = pathlib.Path(__file__).resolve().parent.parent


SECRET = "pat_test_secret"


def chat_events(name: str) -> list:
    return list(ChatDecoder(SECRET).decode(sse.parse(transcript("coze", name))))


def kinds(events) -> list[str]:
    return [e.type for e in events]


def text_of(events) -> str:
    return "".join(e.delta for e in events if e.type == "text-delta")


def test_pure_modules_import_neither_flask_nor_requests():
    for name in ("providers/coze/request.py", "providers/coze/decode.py", "providers/coze/errors.py",
                 "surfaces/route_hints.py"):
        tree = ast.parse((ROOT / "proxy" / name).read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
        assert not imported & {"flask", "requests", "werkzeug", "urllib3"}, (name, imported)


def test_sse_parser_reads_coze_framing_without_spaces():
    events = sse.parse(transcript("coze", "chat_text.sse"))
    assert events[0].event == "conversation.chat.created"
    assert events[-1].event == "done" and events[-1].data == '"[DONE]"'


def test_text_stream_skips_the_repeated_completed_answer_and_non_answers():
    events = chat_events("chat_text.sse")
    # deltas only: the completed message repeats the full answer, verbose / follow_up are no text
    assert text_of(events) == "2024 年 10 月 1 日是星期三。"
    assert kinds(events)[0] == "response-metadata" and events[0].id == "7382159487131697202"
    assert kinds(events)[-2:] == ["usage", "finish"]
    usage = events[-2]
    assert (usage.input_tokens, usage.output_tokens) == (614, 19)
    assert events[-1].unified == "stop"
    assert kinds(events).count("text-start") == 1 and kinds(events).count("text-end") == 1


def test_follow_ups_are_kept_aside():
    decoder = ChatDecoder()
    list(decoder.decode(sse.parse(transcript("coze", "chat_text.sse"))))
    assert decoder.follow_ups == ["10 月 1 日有什么节日？"]
    assert decoder.chat_id == "7382159487131697202" and decoder.conversation_id == "7381473525342978089"


def test_reasoning_content_becomes_reasoning_then_text():
    events = chat_events("chat_reasoning.sse")
    result = accumulate(events)
    assert result.reasoning == "用户问今天星期几，需要查日期。"
    assert result.text == "今天是星期三。"
    assert kinds(events).index("reasoning-end") < kinds(events).index("text-start")
    assert result.usage.reasoning_tokens == 14


def test_plugin_messages_never_leak_and_a_card_without_deltas_comes_once():
    events = chat_events("chat_plugin_card.sse")
    text = text_of(events)
    assert text == '这是一片森林。{"card_type":2,"title":"森林"}'
    for leaked in ("tupianlijie", "response_for_model", "slice", "森林里有什么动物"):
        assert leaked not in text


def test_requires_action_is_a_tool_call_routed_back_by_its_id():
    events = chat_events("chat_requires_action.sse")
    calls = [e for e in events if e.type == "tool-call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "local_data_assistant" and json.loads(call.input) == {"location": "南京", "type": 0}
    assert coze_request.parse_tool_call_id(call.id, SECRET) == (
        "7376662320539566124", "7376662320539590700", "BUJJF0dAQ0NAEBVeQkVKEV5HFURFXhFCEhFeFxdHShcSQEtFSxYRSUI=")
    assert events[-1].unified == "tool-calls"
    # and the client's tool result goes to submit_tool_outputs of that chat
    messages = [Message("user", (TextPart("weather?"),)),
                Message("assistant", ()),
                Message("tool", (ToolResultPart(call.id, "晴 25°C"),))]
    outputs = coze_request.pending_tool_outputs(messages, SECRET)
    assert (outputs.conversation_id, outputs.chat_id) == ("7376662320539566124", "7376662320539590700")
    assert outputs.body == {"tool_outputs": [{"tool_call_id": "BUJJF0dAQ0NAEBVeQkVKEV5HFURFXhFCEhFeFxdHShcSQEtFSxYRSUI=",
                                              "output": "晴 25°C"}], "stream": True}


def test_tool_call_ids_are_signed():
    call_id = [e for e in chat_events("chat_requires_action.sse") if e.type == "tool-call"][0].id
    forged = call_id.replace("7376662320539590700", "7376662320539590701")
    for bad in (forged, call_id.replace(call_id.split(":")[3], "0" * 16)):
        with pytest.raises(BadRequest):
            coze_request.parse_tool_call_id(bad, SECRET)
    with pytest.raises(BadRequest):
        coze_request.parse_tool_call_id(call_id, "another key")
    assert coze_request.parse_tool_call_id("call_abc", SECRET) is None


@pytest.mark.parametrize("name, code", [("chat_failed.sse", "coze_error"), ("chat_error.sse", "coze_error")])
def test_failed_and_error_events_are_in_band_errors(name, code):
    events = chat_events(name)
    assert events[-1].type == "error"
    assert events[-1].error.code == code
    assert "finish" not in kinds(events)


def test_chat_failed_keeps_its_code_and_message():
    error = chat_events("chat_failed.sse")[-1].error
    assert "5000" in error.message and "event interval error" in error.message


def test_a_cut_stream_is_an_error_not_a_clean_end():
    with pytest.raises(UpstreamError) as caught:
        chat_events("chat_cut.sse")
    assert caught.value.code == "stream_incomplete"


def test_workflow_output_node_text_is_not_repeated_by_the_end_node():
    events = list(WorkflowDecoder().decode(sse.parse(transcript("coze", "workflow_output_node.sse"))))
    assert text_of(events) == "msg为什么小明要带一把尺子去看电影？\n因为他听说电影很长，怕坐不下！"
    assert events[-1].type == "finish"


def test_workflow_end_node_json_is_unwrapped_with_usage():
    events = list(WorkflowDecoder().decode(sse.parse(transcript("coze", "workflow_end_node.sse"))))
    assert text_of(events) == "北京的经度为116.4074°E"
    usage = [e for e in events if e.type == "usage"][0]
    assert (usage.input_tokens, usage.output_tokens) == (4593, 2703)


def test_workflow_interrupt_ends_with_the_question():
    decoder = WorkflowDecoder()
    events = list(decoder.decode(sse.parse(transcript("coze", "workflow_interrupt.sse"))))
    assert text_of(events) == "请问你想查看哪个城市、哪一天的天气呢"
    assert events[-1].type == "finish" and events[-1].raw == "interrupt"
    assert decoder.interrupt.event_id == "7404830425073352713/2769808280134765896"
    assert decoder.interrupt.interrupt_type == 2


def test_workflow_error_event():
    decoder = WorkflowDecoder()
    events = list(decoder.decode(sse.parse(transcript("coze", "workflow_error.sse"))))
    assert events[-1].type == "error" and isinstance(events[-1].error, BadRequest)
    assert decoder.failed


def test_workflow_without_done_is_cut():
    raw = transcript("coze", "workflow_output_node.sse").split(b"id: 6")[0]
    with pytest.raises(UpstreamError):
        list(WorkflowDecoder().decode(sse.parse(raw)))


@pytest.mark.parametrize("content, expected", [
    ('{"output":"a"}', "a"), ('{"answer":"b"}', "b"), ("plain", None), ('{"a":1,"b":"x"}', '{"a":1,"b":"x"}'),
])
def test_unwrap_output(content, expected):
    assert unwrap_output(content) == expected


def test_http_200_errors_map_by_code_with_the_logid():
    envelope = parse_envelope(transcript("coze", "error_4101.json"))
    error = envelope_error(envelope)
    assert isinstance(error, AuthenticationFailed) and error.status == 401
    assert "202610040957096760980A3A8DCAF1FDC2" in error.message
    assert envelope_error(parse_envelope(transcript("coze", "error_4200.json"))).status == 400
    assert isinstance(coze_error(4013, "slow down"), RateLimited) and coze_error(4013, "x").retryable
    assert coze_error(4016, "busy").status == 409
    assert coze_error(4100, "x").status == 401


# -- request bodies ---------------------------------------------------------


def user(text, *images):
    return Message("user", (TextPart(text), *images) if text else tuple(images))


def test_chat_mode_sends_the_whole_history_with_the_system_prompt_in_front():
    messages = [Message("system", (TextPart("Be brief."),)), user("Hi"), Message("assistant", (TextPart("Hello!"),)),
                user("What day is it?")]
    entered = coze_request.enter_messages(messages)
    assert entered == [
        {"role": "user", "type": "question", "content": "Be brief.\n\nHi", "content_type": "text"},
        {"role": "assistant", "type": "answer", "content": "Hello!", "content_type": "text"},
        {"role": "user", "type": "question", "content": "What day is it?", "content_type": "text"},
    ]


def test_images_are_object_strings_with_urls_or_uploaded_file_ids():
    data_url = "data:image/png;base64,iVBORw0KGgo="
    message = user("What is this?", ImagePart("https://example.com/a.png"), ImagePart(data_url))
    assert coze_request.data_url_images([message]) == [data_url]
    entered = coze_request.enter_message(message, {data_url: "7400000000000000001"})
    assert entered["content_type"] == "object_string"
    assert json.loads(entered["content"]) == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "file_url": "https://example.com/a.png"},
        {"type": "image", "file_id": "7400000000000000001"},
    ]


def test_split_history_gives_the_new_turn_only():
    messages = [Message("system", (TextPart("S"),)), user("one"), Message("assistant", (TextPart("A1"),)), user("two")]
    prior, turn = coze_request.split_history(messages)
    assert [m.text for m in turn] == ["two"]
    assert [m.text for m in prior] == ["S", "one", "A1"]


def test_target_resolution_and_missing_ids():
    config = CozeConfig(bot_id="111", workflow_id="222")
    request = ChatRequest("gpt-4o", [user("hi")], hints={"bot_id": "333"})
    assert coze_request.resolve_target(request, None, config).bot_id == "333"
    assert coze_request.resolve_target(ChatRequest("coze/444", [user("hi")]), "444", config).bot_id == "444"
    assert coze_request.resolve_target(ChatRequest("x", [user("hi")]), None, config).bot_id == "111"
    with pytest.raises(BadRequest) as caught:
        coze_request.resolve_target(ChatRequest("x", [user("hi")]), None, CozeConfig())
    assert caught.value.code == "missing_bot_id"
    with pytest.raises(BadRequest) as caught:
        coze_request.resolve_target(ChatRequest("x", [user("hi")], hints={"model_type": "workflow"}), None, CozeConfig())
    assert caught.value.code == "missing_workflow_id"
    with pytest.raises(BadRequest) as caught:
        coze_request.resolve_target(ChatRequest("x", [user("hi")], hints={"model_type": "agent"}), None, config)
    assert caught.value.param == "x-model-type"


def test_route_hints_from_headers():
    from proxy.surfaces.route_hints import route_hints, wants_coze

    hints = route_hints({"x-model-type": "Conversation", "x-conversation-id": " conv_1 ", "x-other": "x"})
    assert hints == {"model_type": "conversation", "conversation_id": "conv_1"}
    assert not wants_coze(hints) and wants_coze({"bot_id": "1"}) and wants_coze({"model_type": "workflow"})
    with pytest.raises(BadRequest):
        route_hints({"x-model-type": "agent"})
    with pytest.raises(BadRequest):
        route_hints({"x-workflow-id": "abc"})


def test_workflow_body_uses_the_configured_input_key():
    config = CozeConfig(workflow_id="222", input_key="question")
    target = coze_request.resolve_target(ChatRequest("x", [user("hi")], hints={"model_type": "workflow"}), None, config)
    body = coze_request.workflow_body(target, "hi", config)
    assert body["workflow_id"] == "222" and body["parameters"] == {"question": "hi"}
