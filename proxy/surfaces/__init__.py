"""Client protocol surfaces: one blueprint each, registered here.

Each surface is a blueprint module (IO: Flask) plus, where it has one, a
`*_codec` module of pure decode/encode functions.
"""
from . import conversations, models, openai_chat, workbench

BLUEPRINTS = [
    workbench.blueprint,
    models.blueprint,
    openai_chat.blueprint,
    conversations.blueprint,
]
