"""Client protocol surfaces: one blueprint each, registered here.

Each surface is a blueprint module (IO: Flask) plus, where it has one, a
`*_codec.py` module of pure decode/encode functions.
"""
from . import conversations, models, workbench

BLUEPRINTS = [
    workbench.blueprint,
    models.blueprint,
    conversations.blueprint,
]
