"""Model id -> provider: which upstream answers a ChatRequest, with retries and fallbacks.

    surface -> Router.open(request) -> ResilientStream (resilience.py)
            -> Router.open_route(request, route) -> provider.open(request, route) -> UpstreamStream

Models come from the providers themselves (the demo models), from the YAML
file's `models:` section (aliases with their own upstream model, base URL,
key, capabilities, default params and fallbacks), and from `vendor/model` ids
that reach a vendor directly (`openai/gpt-4o-mini`).

A declared model whose provider has no key is kept (asking for it gives an
error naming the variable to set) but is not listed by /v1/models, so model
pickers only offer models that can answer.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Mapping

from .canonical import ChatRequest, Message, TextPart
from .config import ProviderSettings, Settings
from .errors import ModelNotFound, ProviderNotConfigured
from .providers import provider_classes
from .providers.base import ModelRoute, Provider, UpstreamStream, capabilities, check_base_url
from .resilience import ResilientStream
from .surfaces.route_hints import wants_coze

log = logging.getLogger(__name__)

MODEL_FIELDS = {"id", "provider", "model", "base_url", "api_key", "api_key_env", "capabilities", "params",
                "fallbacks", "owned_by", "created", "options"}
# params that are ChatRequest fields; any other param is sent to the upstream as is
REQUEST_PARAMS = ("temperature", "top_p", "max_tokens", "stop", "response_format", "reasoning_effort", "user")
# `api_key: none` declares a server that needs no key (a local Ollama)
NO_KEY = (None, "", "none")


def declared_route(entry: Any, providers: Mapping[str, Provider], environ: Mapping[str, str]) -> ModelRoute:
    """One `models:` entry of the YAML file -> a ModelRoute; ValueError says what to fix."""
    if not isinstance(entry, dict) or not entry.get("id"):
        raise ValueError(f"each entry under models: needs an id, got {entry!r}")
    model_id = str(entry["id"])
    where = f"models: entry {model_id!r}"
    unknown = set(entry) - MODEL_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(MODEL_FIELDS))}")
    vendor = entry.get("provider")
    if vendor not in providers:
        raise ValueError(f"{where}: provider must be one of {', '.join(providers)}, got {vendor!r}")
    if not entry.get("model") and vendor != "demo":
        raise ValueError(f"{where}: set model: to the upstream model name")
    try:
        flags = capabilities(entry.get("capabilities"))
    except (ValueError, AttributeError, TypeError) as error:
        raise ValueError(f"{where}: {error}") from None
    params = entry.get("params") or {}
    fallbacks = entry.get("fallbacks") or []
    if not isinstance(params, dict):
        raise ValueError(f"{where}: params must be a mapping such as {{temperature: 0.2, max_tokens: 512}}")
    if isinstance(fallbacks, str) or not isinstance(fallbacks, list):
        raise ValueError(f"{where}: fallbacks must be a list of model ids")
    return ModelRoute(
        id=model_id,
        provider=vendor,
        upstream_model=str(entry.get("model") or model_id),
        owned_by=str(entry.get("owned_by") or vendor),
        capabilities=flags,
        created=int(entry.get("created") or 0),
        params=dict(params),
        fallbacks=tuple(str(f) for f in fallbacks),
        credentials=declared_credentials(entry, providers[vendor].credentials, environ),
    )


def declared_credentials(entry: dict, vendor: ProviderSettings, environ: Mapping[str, str]) -> ProviderSettings | None:
    """Per-model key and base URL; None when the model uses the vendor's own.

    `api_key_env: VAR` reads the key from VAR; `api_key: <literal>` is the key;
    `api_key: none`, or a base_url with no key declared, is a server that needs none.
    """
    check_base_url(entry.get("base_url"), f"models: entry {entry['id']!r}")
    has_key = "api_key" in entry or "api_key_env" in entry
    if not has_key and not entry.get("base_url") and not entry.get("options"):
        return None
    options = {**vendor.options, **(entry.get("options") or {})}
    if entry.get("api_key_env"):
        variable = str(entry["api_key_env"])
        options["key_required"] = True  # declaring the variable says the server wants a key
        return ProviderSettings(environ.get(variable), entry.get("base_url") or vendor.base_url, variable, options)
    if "api_key" in entry and entry["api_key"] not in NO_KEY:
        return ProviderSettings(str(entry["api_key"]), entry.get("base_url") or vendor.base_url, None, options)
    if "api_key" in entry or entry.get("base_url"):
        options["keyless"] = True
        return ProviderSettings(None, entry.get("base_url") or vendor.base_url, None, options)
    return ProviderSettings(vendor.api_key, vendor.base_url, vendor.key_variable, options)


def apply_params(request: ChatRequest, params: Mapping[str, Any]) -> ChatRequest:
    """The model's default params fill what the client left unset."""
    if not params:
        return request
    changes: dict[str, Any] = {}
    extra = dict(request.extra)
    for name, value in params.items():
        if name in REQUEST_PARAMS:
            current = getattr(request, name)
            if current is None or current == []:
                changes[name] = list(value) if name == "stop" else value
        else:
            extra.setdefault(name, value)
    return dataclasses.replace(request, extra=extra, **changes)


PRESET_FIELDS = {"model", "system", "description", *REQUEST_PARAMS}


@dataclasses.dataclass(slots=True, frozen=True)
class Preset:
    """A named configuration usable as a model id on every surface: a model,
    instructions (`system`) and request defaults."""

    name: str
    model: str
    system: str | None = None
    description: str | None = None
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def apply(self, request: ChatRequest) -> ChatRequest:
        """Request values win over the preset's; its instructions apply when
        the request brings no system message of its own."""
        request = apply_params(dataclasses.replace(request, model=self.model), self.params)
        if self.system and not any(m.role == "system" for m in request.messages):
            request.messages = [Message("system", (TextPart(self.system),)), *request.messages]
        return request


def declared_preset(name: Any, entry: Any) -> Preset:
    """One `presets:` entry of the YAML file; ValueError says what to fix."""
    where = f"presets: entry {name!r}"
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: a preset name must be a non-empty string")
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a mapping such as {{model: mock, system: 'You are terse.'}}")
    unknown = set(entry) - PRESET_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(PRESET_FIELDS))}")
    model = entry.get("model")
    if not isinstance(model, str) or not model:
        raise ValueError(f"{where}: model is required (a model id, alias or vendor/model)")
    for text_field in ("system", "description", "user", "reasoning_effort"):
        if entry.get(text_field) is not None and not isinstance(entry[text_field], str):
            raise ValueError(f"{where}: {text_field} must be a string")
    for number, low, high in (("temperature", 0, 2), ("top_p", 0, 1)):
        value = entry.get(number)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high):
            raise ValueError(f"{where}: {number} must be a number from {low} to {high}, got {value!r}")
    tokens = entry.get("max_tokens")
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1):
        raise ValueError(f"{where}: max_tokens must be a positive integer, got {tokens!r}")
    stop = entry.get("stop")
    if stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise ValueError(f"{where}: stop must be a list of strings")
    if entry.get("response_format") is not None and not isinstance(entry["response_format"], dict):
        raise ValueError(f"{where}: response_format must be a mapping such as {{type: json_object}}")
    params = {k: v for k, v in entry.items() if k in REQUEST_PARAMS and v is not None}
    return Preset(name, model, entry.get("system"), entry.get("description"), params)


class Router:
    def __init__(self, settings: Settings, environ: Mapping[str, str] | None = None, store: Any = None) -> None:
        self.settings = settings
        environ = os.environ if environ is None else environ
        self.providers: dict[str, Provider] = {
            name: cls(settings.providers.get(name) or ProviderSettings(), settings, store=store)
            for name, cls in provider_classes().items()
        }
        self.routes: dict[str, ModelRoute] = {}
        for provider in self.providers.values():
            for route in provider.models():
                self.routes[route.id] = route
        for entry in settings.models or ():
            route = declared_route(entry, self.providers, environ)
            self.routes[route.id] = route
        presets = settings.extra.get("presets") or {}
        if not isinstance(presets, dict):
            raise ValueError("presets: must be a mapping of preset name -> {model, system, temperature, ...}")
        self.presets: dict[str, Preset] = {}
        for name, entry in presets.items():
            preset = declared_preset(name, entry)
            if preset.name in self.routes:
                raise ValueError(f"presets: entry {name!r} has the name of a model; give the preset another name")
            try:
                self.resolve(preset.model)
            except ModelNotFound:
                raise ValueError(f"presets: entry {name!r}: model {preset.model!r} is not a model") from None
            self.presets[preset.name] = preset
        for route in self.routes.values():
            for fallback in route.fallbacks:
                try:
                    self.resolve(fallback)
                except ModelNotFound:
                    raise ValueError(f"model {route.id!r} falls back to {fallback!r}, which is not a model") from None
            if not self.usable(route):
                log.warning("model %s is not listed: %s", route.id, self.missing_key_message(route))

    def usable(self, route: ModelRoute) -> bool:
        provider = self.providers[route.provider]
        if route.credentials is None:
            return provider.configured
        return provider.usable(route.credentials)

    def secrets(self, route: ModelRoute) -> tuple[str, ...]:
        """The keys a call on `route` may send: never to be logged or shown."""
        provider = self.providers.get(route.provider)
        keys = (getattr(route.credentials, "api_key", None),
                getattr(getattr(provider, "credentials", None), "api_key", None))
        return tuple(key for key in keys if isinstance(key, str) and key)

    def missing_key_message(self, route: ModelRoute) -> str:
        credentials = route.credentials or self.providers[route.provider].credentials
        variable = credentials.key_variable
        how = f"set the environment variable {variable}" if variable else "declare its api_key in the config file"
        return f"model {route.id!r} needs a key for the {route.provider} provider: {how}"

    def models(self) -> list[ModelRoute]:
        """What /v1/models lists: the models that can answer now."""
        return [route for route in self.routes.values() if self.usable(route)]

    def listing(self) -> list[dict[str, Any]]:
        """The /v1/models entries: usable models, then presets whose model is usable."""
        entries = [route.describe() for route in self.models()]
        for preset in self.presets.values():
            route = self.resolve(preset.model)
            if self.usable(route):
                entries.append(self.describe_preset(preset, route))
        return entries

    def describe(self, model_id: str) -> dict[str, Any]:
        """The /v1/models/<id> entry of a model, an alias, a preset or a vendor/model id."""
        preset = self.presets.get(model_id)
        if preset is not None:
            return self.describe_preset(preset, self.resolve(preset.model))
        return self.resolve(model_id).describe()

    @staticmethod
    def describe_preset(preset: Preset, route: ModelRoute) -> dict[str, Any]:
        entry = route.describe()
        entry.update({"id": preset.name, "owned_by": "switchboard", "preset": True, "model": preset.model,
                      "description": preset.description, "instructions": preset.system, "provider": route.provider})
        return entry

    def resolve(self, model_id: str) -> ModelRoute:
        route = self.routes.get(model_id)
        if route is not None:
            return route
        vendor, _, upstream_model = model_id.partition("/")
        if upstream_model and vendor in self.providers and vendor != "demo":
            return ModelRoute(model_id, vendor, upstream_model, vendor)
        presets = getattr(self, "presets", None)
        raise ModelNotFound(
            f"unknown model {model_id!r}: use one of {', '.join([*self.routes, *(presets or ())])} (see GET /v1/models), "
            f"or 'vendor/model' with a vendor of {', '.join(n for n in self.providers if n != 'demo')}",
            param="model",
        )

    def provider_for(self, route: ModelRoute) -> Provider:
        if not self.usable(route):
            raise ProviderNotConfigured(self.missing_key_message(route))
        return self.providers[route.provider]

    def open_route(self, request: ChatRequest, route: ModelRoute) -> UpstreamStream:
        """One attempt on one model (the resilient stream calls this per attempt)."""
        return self.provider_for(route).open(apply_params(request, route.params), route)

    def hinted_route(self, request: ChatRequest) -> ModelRoute | None:
        """Coze route hints (docs/coze-routing.md): a bot, a workflow or workflow
        mode go to Coze whatever the model (its name is echoed back); chat and
        conversation modes go to Coze unless the model is one another
        provider here serves."""
        hints = request.hints
        if not hints or "coze" not in self.providers:
            return None
        if not wants_coze(hints):
            if not hints.get("model_type"):
                return None
            try:
                route = self.resolve(request.model)
            except ModelNotFound:
                route = None
            if route is not None and (route.provider == "coze" or self.usable(route)):
                return route
        current = self.routes.get(request.model)
        if current is not None and current.provider == "coze":
            return current
        vendor, _, model = request.model.partition("/")
        return ModelRoute(request.model, "coze", model if vendor == "coze" else request.model, "coze")

    def prepare(self, request: ChatRequest) -> ResilientStream:
        """The resilient stream for `request` on its model (a preset name
        applies the preset), not yet started: the caller holds it, so it can
        cancel it while it connects. Its fallbacks are the model's own
        `fallbacks`, in order; a fallback's fallbacks are not followed."""
        preset = self.presets.get(request.model)
        if preset is not None:
            request = preset.apply(request)
        route = self.hinted_route(request) or self.resolve(request.model)
        plan = [route] + [self.resolve(model_id) for model_id in route.fallbacks]
        return ResilientStream(self, request, plan)

    def open(self, request: ChatRequest) -> UpstreamStream:
        """Start `request` on its model, retrying and falling back before any content.

        Raises the last ProxyError when no attempt could even be opened."""
        return self.prepare(request).start()
