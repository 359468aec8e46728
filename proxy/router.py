"""Model id -> provider: which upstream answers a ChatRequest.

    surface -> Router.open(request) -> provider.open(request, route) -> UpstreamStream

Models come from the providers themselves (the demo models), from the YAML
file's `models:` section, and from `vendor/model` ids that reach a vendor
directly (`openai/gpt-4o-mini`).
"""
from __future__ import annotations

from .canonical import ChatRequest
from .config import ProviderSettings, Settings
from .errors import ModelNotFound, ProviderNotConfigured
from .providers import REGISTRY
from .providers.base import ModelRoute, Provider, UpstreamStream


class Router:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.providers: dict[str, Provider] = {
            name: cls(settings.providers.get(name) or ProviderSettings(), settings) for name, cls in REGISTRY.items()
        }
        self.routes: dict[str, ModelRoute] = {}
        for provider in self.providers.values():
            for route in provider.models():
                self.routes[route.id] = route

    def models(self) -> list[ModelRoute]:
        return list(self.routes.values())

    def resolve(self, model_id: str) -> ModelRoute:
        route = self.routes.get(model_id)
        if route is not None:
            return route
        vendor, _, upstream_model = model_id.partition("/")
        if upstream_model and vendor in self.providers and vendor != "demo":
            return ModelRoute(model_id, vendor, upstream_model, vendor)
        raise ModelNotFound(
            f"unknown model {model_id!r}: use one of {', '.join(self.routes)} (see GET /v1/models), "
            f"or 'vendor/model' with a vendor of {', '.join(n for n in self.providers if n != 'demo')}",
            param="model",
        )

    def provider_for(self, route: ModelRoute) -> Provider:
        provider = self.providers[route.provider]
        credentials = route.credentials or provider.credentials
        if not (provider.configured or (route.credentials and route.credentials.api_key)):
            raise ProviderNotConfigured(
                f"model {route.id!r} needs the {route.provider} provider: set {credentials.key_variable or 'its API key'}"
            )
        return provider

    def open(self, request: ChatRequest) -> UpstreamStream:
        """Start the upstream call for `request`; raises ProxyError before any byte."""
        route = self.resolve(request.model)
        return self.provider_for(route).open(request, route)
