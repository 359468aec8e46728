"""JSON Schema -> the OpenAPI-3 subset Gemini accepts in `parameters` and
`responseSchema` (docs/gemini.md, "Request").

    request.build_payload -> clean_schema(tool.parameters)

Gemini answers 400 `Unknown name "..."` for JSON-Schema keywords outside its
subset (`$schema`, `$ref`/`$defs`, `additionalProperties`, `const`,
`examples`, ...) and for an OBJECT with empty `properties`. So: keep only the
keywords Gemini knows, inline local `$ref`s, turn `const` into a one-value
`enum`, `type: [T, "null"]` into `type: T, nullable: true`, and drop empty
`properties`. Pure.
"""
from __future__ import annotations

from typing import Any, Mapping

# The fields of Gemini's `Schema` object (ai.google.dev/api/caching#Schema).
KEPT = frozenset({
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
    "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
})
MAX_DEPTH = 32  # recursive $refs are cut off here instead of looping


def clean_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A cleaned copy of `schema` (the input is left untouched)."""
    definitions = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _clean(schema, definitions, 0)


def is_empty_object(schema: Mapping[str, Any]) -> bool:
    """An object schema without properties: Gemini wants `parameters` omitted."""
    return schema.get("type", "object") == "object" and not schema.get("properties") and not schema.get("anyOf")


def _resolve(schema: Mapping[str, Any], definitions: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        name = ref.rsplit("/", 1)[-1]
        target = definitions.get(name)
        if isinstance(target, Mapping):
            # Sibling keywords (e.g. a description next to $ref) win.
            return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _clean(schema: Any, definitions: Mapping[str, Any], depth: int) -> Any:
    if not isinstance(schema, Mapping):
        return schema
    if depth > MAX_DEPTH:
        return {"type": "object"}
    schema = _resolve(schema, definitions)
    out: dict[str, Any] = {}
    kind = schema.get("type")
    if isinstance(kind, list):
        types = [t for t in kind if t != "null"]
        if len(types) < len(kind):
            out["nullable"] = True
        kind = types[0] if len(types) == 1 else None
        if len(types) > 1:
            out["anyOf"] = [{"type": t} for t in types]
    if kind is not None:
        out["type"] = kind
    if "const" in schema and "enum" not in schema:
        out["enum"] = [schema["const"]]
    for key, value in schema.items():
        if key not in KEPT or key == "type" or key in out:
            continue
        if key == "properties":
            if isinstance(value, Mapping) and value:
                out[key] = {name: _clean(sub, definitions, depth + 1) for name, sub in value.items()}
        elif key == "items":
            out[key] = _clean(value, definitions, depth + 1)
        elif key == "anyOf":
            variants = [_clean(v, definitions, depth + 1) for v in value if not (isinstance(v, Mapping) and v.get("type") == "null")]
            if len(variants) < len(value):
                out["nullable"] = True
            if len(variants) == 1:
                out.update({k: v for k, v in variants[0].items() if k not in out})
            elif variants:
                out[key] = variants
        elif key == "enum":
            # Gemini enums are string enums.
            out[key] = [str(item) for item in value]
        else:
            out[key] = value
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if "required" in out:
        present = out.get("properties") or {}
        out["required"] = [name for name in out["required"] if name in present]
        if not out["required"]:
            del out["required"]
    return out
