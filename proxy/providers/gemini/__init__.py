"""The Google Gemini provider package (generativelanguage.googleapis.com, v1beta).

    provider.py   GeminiProvider (the IO half: builds the call, opens it, downloads images)
    request.py    ChatRequest -> generateContent payload         (pure)
    schema.py     JSON Schema -> the OpenAPI subset Gemini takes (pure)
    decode.py     chunks / a whole body -> canonical events      (pure)
    errors.py     Google RPC error bodies -> the error tree      (pure)
    call_ids.py   thought signatures carried in tool call ids    (pure)

This file imports nothing, so importing a pure module of the package does not
pull in requests; `GeminiProvider` is loaded on first use.
"""


def __getattr__(name: str):
    if name == "GeminiProvider":
        from .provider import GeminiProvider

        return GeminiProvider
    raise AttributeError(name)
