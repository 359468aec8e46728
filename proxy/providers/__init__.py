"""The provider registry: one line per provider module.

    router -> REGISTRY[route.provider](credentials, settings).open(...)
"""
from .anthropic import AnthropicProvider
from .coze.provider import CozeProvider
from .demo import DemoProvider
from .gemini import GeminiProvider
from .openai import OpenAIProvider

REGISTRY = {
    DemoProvider.name: DemoProvider,
    OpenAIProvider.name: OpenAIProvider,
    AnthropicProvider.name: AnthropicProvider,
    GeminiProvider.name: GeminiProvider,
    CozeProvider.name: CozeProvider,
}
