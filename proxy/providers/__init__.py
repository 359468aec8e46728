"""The provider registry: one line per provider module.

    router -> REGISTRY[route.provider](credentials, settings).open(...)
"""
from .demo import DemoProvider
from .gemini import GeminiProvider

REGISTRY = {
    DemoProvider.name: DemoProvider,
    GeminiProvider.name: GeminiProvider,
}
