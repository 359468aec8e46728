"""JSON Schema -> the OpenAPI-3 subset Gemini accepts in `parameters` and
`responseSchema` (https://ai.google.dev/api/caching#Schema).

    request.build_payload -> clean_schema(tool.parameters, "tools[0].function.parameters")

Gemini answers 400 `Unknown name "..."` for JSON-Schema keywords outside its
subset (`$schema`, `$ref`/`$defs`, `additionalProperties`, `const`,
`examples`, ...) and for an OBJECT with empty `properties`. So: keep only the
keywords Gemini knows, inline local `$ref`s, turn `const` into a one-value
`enum`, `type: [T, "null"]` into `type: T, nullable: true`, and drop empty
`properties`.

The schema is client input and inlining `$ref`s multiplies it: a few hundred
bytes that refer to themselves twice grow as 2^depth. So the work is bounded
before it is done: a `$ref` already being expanded on the current path
(recursion, which Gemini's subset cannot express) is a 400, as is nesting
deeper than MAX_DEPTH or an expansion past MAX_NODES schema objects (a chain
of definitions that each use the next twice). A keyword whose value has the
wrong JSON type is a 400 naming it, never an exception. Pure.
"""
from __future__ import annotations

from typing import Any, Mapping

from ...errors import BadRequest

# The fields of Gemini's `Schema` object (ai.google.dev/api/caching#Schema).
KEPT = frozenset({
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
    "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
})
MAX_DEPTH = 32  # nested schema objects, $refs inlined
MAX_NODES = 4096  # schema objects in the cleaned output


class _Budget:
    __slots__ = ("nodes", "root")

    def __init__(self, root: str) -> None:
        self.nodes = 0
        self.root = root


def clean_schema(schema: Any, where: str = "schema") -> dict[str, Any]:
    """A cleaned copy of `schema` (the input is left untouched); BadRequest
    naming `where` (the request field holding the schema) when it is malformed
    or expands past the limits."""
    if not isinstance(schema, dict):
        raise BadRequest(f"{where} must be a JSON Schema object", param=where)
    definitions: dict[str, Any] = {}
    for keyword in ("definitions", "$defs"):
        found = schema.get(keyword)
        if found is None:
            continue
        if not isinstance(found, dict):
            raise BadRequest(f"{where}.{keyword} must be an object mapping names to schemas", param=f"{where}.{keyword}")
        definitions.update(found)
    return _clean(schema, definitions, 0, where, (), _Budget(where))


def is_empty_object(schema: Mapping[str, Any]) -> bool:
    """An object schema without properties: Gemini wants `parameters` omitted."""
    return schema.get("type", "object") == "object" and not schema.get("properties") and not schema.get("anyOf")


def _bad(message: str, at: str) -> BadRequest:
    return BadRequest(f"{at}: {message}", param=at)


def _resolve(schema: Mapping[str, Any], definitions: Mapping[str, Any], at: str,
             expanding: tuple[str, ...]) -> tuple[Mapping[str, Any], tuple[str, ...]]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        name = ref.rsplit("/", 1)[-1]
        target = definitions.get(name)
        if isinstance(target, dict):
            if name in expanding:
                raise _bad(f"$ref {ref!r} refers to itself; Gemini's schema subset has no references, so a "
                           "recursive schema cannot be sent: flatten it to a fixed depth", f"{at}.$ref")
            # Sibling keywords (e.g. a description next to $ref) win.
            return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}, (*expanding, name)
    return schema, expanding


def _subschema(value: Any, definitions: Mapping[str, Any], depth: int, at: str,
               expanding: tuple[str, ...], budget: _Budget) -> Any:
    if isinstance(value, bool):  # JSON Schema's `true` / `false`: passed on as they were
        return value
    if not isinstance(value, dict):
        raise _bad("must be a schema object", at)
    return _clean(value, definitions, depth + 1, at, expanding, budget)


def _clean(schema: Mapping[str, Any], definitions: Mapping[str, Any], depth: int, at: str,
           expanding: tuple[str, ...], budget: _Budget) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise _bad(f"the schema is nested deeper than {MAX_DEPTH} levels ($refs inlined)", at)
    budget.nodes += 1
    if budget.nodes > MAX_NODES:
        raise _bad(f"the schema expands to more than {MAX_NODES} schema objects once its $refs are inlined",
                   budget.root)
    schema, expanding = _resolve(schema, definitions, at, expanding)
    out: dict[str, Any] = {}
    kind = schema.get("type")
    if isinstance(kind, list):
        types = [t for t in kind if t != "null"]
        if not all(isinstance(t, str) for t in types):
            raise _bad("must be a type name or a list of type names", f"{at}.type")
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
        field = f"{at}.{key}"
        if key == "properties":
            if not isinstance(value, dict):
                raise _bad("must be an object mapping property names to schemas", field)
            if value:
                out[key] = {name: _subschema(sub, definitions, depth, f"{field}.{name}", expanding, budget)
                            for name, sub in value.items()}
        elif key == "items":
            out[key] = _subschema(value, definitions, depth, field, expanding, budget)
        elif key == "anyOf":
            if not isinstance(value, list):
                raise _bad("must be an array of schemas", field)
            variants = []
            for number, variant in enumerate(value):
                if not isinstance(variant, dict):
                    raise _bad("must be a schema object", f"{field}[{number}]")
                if variant.get("type") != "null":
                    variants.append(_clean(variant, definitions, depth + 1, f"{field}[{number}]", expanding, budget))
            if len(variants) < len(value):
                out["nullable"] = True
            if len(variants) == 1:
                out.update({k: v for k, v in variants[0].items() if k not in out})
            elif variants:
                out[key] = variants
        elif key == "enum":
            if not isinstance(value, list):
                raise _bad("must be an array of values", field)
            # Gemini enums are string enums.
            out[key] = [str(item) for item in value]
        elif key == "required":
            if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
                raise _bad("must be an array of property names", field)
            out[key] = value
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
