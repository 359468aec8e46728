"""The provider registry: one line per provider module.

    router -> REGISTRY[route.provider](credentials, settings).open(...)
"""
from .demo import DemoProvider
from .openai import OpenAIProvider

REGISTRY = {
    DemoProvider.name: DemoProvider,
    OpenAIProvider.name: OpenAIProvider,
}
