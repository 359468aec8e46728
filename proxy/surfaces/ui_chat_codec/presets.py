"""Which configuration answers a UI chat request: preset first, then the request's own values.

    ?preset= | block meta ai:preset | setting ai:preset | default_preset | default model
        -> resolve(...) -> Resolved(model, preset, temperature, max_tokens, system, params)
        -> the blueprint applies it to the ChatRequest and shows {model, preset} in `start`

Each level names a preset; the first that names one wins, and a name that
is not a preset is an error that says where it came from (a stale block
setting must not silently fall through to another model). Request values
(decode_overrides) then replace the preset's fields one by one.
Pure: imports neither flask nor requests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ...errors import BadRequest
from .decode import Overrides

PRESET_KEY = "ai:preset"
PRESET_FIELDS = ("model", "system", "temperature", "max_tokens")


@dataclass(slots=True, frozen=True)
class Resolved:
    model: str
    preset: str | None
    source: str  # where the preset came from: query, block, settings, default_preset, default_model
    temperature: float | None = None
    max_tokens: int | None = None
    system: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)  # the preset's other upstream params

    def metadata(self) -> dict:
        return {"model": self.model, "preset": self.preset}


def preset_fields(preset: Any) -> dict:
    """A preset as a plain dict: YAML mappings as they are; the router's
    Preset objects (name, model, system, params) flattened."""
    if isinstance(preset, Mapping):
        return dict(preset)
    values = dict(getattr(preset, "params", None) or {})
    for name in ("model", "system"):
        if getattr(preset, name, None) is not None:
            values[name] = getattr(preset, name)
    return values


MapOrReader = Mapping[str, Any] | Callable[[], Mapping[str, Any] | None] | None


def resolve(presets: Mapping[str, Any], default_model: str, overrides: Overrides, *, query: str | None = None,
            block: MapOrReader = None, settings: MapOrReader = None,
            default_preset: str | None = None) -> Resolved:
    """`block` and `settings` may be functions that read them: a level is
    only read when the levels above it named no preset."""

    def named(source: MapOrReader):
        found = source() if callable(source) else source
        return (found or {}).get(PRESET_KEY)

    levels = (("query", lambda: query, "the preset query parameter"),
              ("block", lambda: named(block), f"the block's {PRESET_KEY}"),
              ("settings", lambda: named(settings), f"the global setting {PRESET_KEY}"),
              ("default_preset", lambda: default_preset, "default_preset in the configuration"))
    name, source = None, "default_model"
    for level, read, where in levels:
        value = read()
        if value in (None, ""):
            continue
        if not isinstance(value, str) or value not in presets:
            known = ", ".join(sorted(presets)) or "none are configured"
            raise BadRequest(f"{where} names preset {value!r}, which does not exist; known presets: {known}",
                             param="preset" if level == "query" else PRESET_KEY, code="preset_not_found")
        name, source = value, level
        break
    fields = preset_fields(presets[name]) if name is not None else {}
    params = {k: v for k, v in fields.items() if k not in PRESET_FIELDS}

    def pick(requested, preset_value):
        return requested if requested is not None else preset_value

    return Resolved(
        model=overrides.model or fields.get("model") or default_model,
        preset=name,
        source=source,
        temperature=pick(overrides.temperature, fields.get("temperature")),
        max_tokens=pick(overrides.max_tokens, fields.get("max_tokens")),
        system=overrides.system if overrides.system is not None else fields.get("system"),
        params=params,
    )
