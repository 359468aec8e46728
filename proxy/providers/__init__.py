"""The provider registry: one line per provider, imported on first use.

    config  -> declarations()          each class's key variable(s), base URL variable, settings read
    router  -> provider_classes()      name -> class, then cls(credentials, settings, store).open(...)

REGISTRY names each provider's class as "module:Class" and nothing here
imports a provider: the IO modules (which import requests) load only when the
router or config asks for the classes, so importing a provider's pure
request/decode modules stays free of IO (tests/test_purity.py checks it).
Adding a provider is one line here plus its package (see providers/base.py).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Provider

REGISTRY: dict[str, Any] = {
    "demo": "proxy.providers.demo:DemoProvider",
    "openai": "proxy.providers.openai.provider:OpenAIProvider",
    "anthropic": "proxy.providers.anthropic.provider:AnthropicProvider",
    "gemini": "proxy.providers.gemini.provider:GeminiProvider",
    "coze": "proxy.providers.coze.provider:CozeProvider",
}


def provider_class(name: str) -> "type[Provider]":
    """The class registered as `name`, imported (and remembered) on first use."""
    target = REGISTRY[name]
    if isinstance(target, str):
        module, _, attribute = target.partition(":")
        target = getattr(importlib.import_module(module), attribute)
        if target.name != name:
            raise ValueError(f"REGISTRY[{name!r}] names {target.__name__}, whose name is {target.name!r}")
        REGISTRY[name] = target
    return target


def provider_classes() -> "dict[str, type[Provider]]":
    return {name: provider_class(name) for name in list(REGISTRY)}
