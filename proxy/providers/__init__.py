"""The provider registry: one line per provider module.

    router -> REGISTRY[route.provider](credentials, settings).open(...)
"""
from .anthropic import AnthropicProvider
from .demo import DemoProvider

REGISTRY = {
    DemoProvider.name: DemoProvider,
    AnthropicProvider.name: AnthropicProvider,
}
