"""Validation of Open Responses events and objects against the official
`openresponses-types` models (generated from the spec's OpenAPI document)."""
from __future__ import annotations

import enum
import typing

from openresponses_types import types as official

_EVENT_MODELS: dict[str, type] = {}
for _name, _model in vars(official).items():
    if not (isinstance(_model, type) and _name.endswith("StreamingEvent") and hasattr(_model, "model_fields")):
        continue
    _annotation = _model.model_fields["type"].annotation
    if isinstance(_annotation, type) and issubclass(_annotation, enum.Enum):
        _values = [member.value for member in _annotation]
    else:
        _values = list(typing.get_args(_annotation))
    for _value in _values:
        _EVENT_MODELS[_value] = _model


def validate_event(event: dict) -> None:
    """Raise unless `event` is a streaming event of the spec, valid for its type."""
    model = _EVENT_MODELS.get(event.get("type"))
    assert model is not None, f"{event.get('type')!r} is not a streaming event type of the spec"
    model.model_validate(event)
    if event["type"] in ("response.created", "response.in_progress", "response.completed", "response.failed",
                         "response.incomplete"):
        validate_response(event["response"])


def validate_response(response: dict) -> None:
    official.ResponseResource.model_validate(response)
    missing = set(official.ResponseResource.model_fields) - set(response)
    assert not missing, f"the Response object lacks {sorted(missing)}"


def validate_stream(events: list[dict]) -> None:
    """Each event valid, numbered 0, 1, 2..., one terminal event, last."""
    assert events and events[0]["type"] == "response.created"
    for number, event in enumerate(events):
        assert event["sequence_number"] == number, (number, event)
        validate_event(event)
    terminals = [e for e in events if e["type"] in ("response.completed", "response.failed", "response.incomplete")]
    assert len(terminals) == 1 and terminals[0] is events[-1]
