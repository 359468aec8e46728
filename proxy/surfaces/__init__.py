"""Client protocol surfaces: one blueprint each, registered here.

Each surface is a blueprint module (IO: Flask) plus, where it has one, a
`*_codec.py` module of pure decode/encode functions.

BLUEPRINTS is built on first access (PEP 562 module __getattr__): importing
a pure codec such as `proxy.surfaces.workbench_codec` imports this package
first, and must not import the blueprint modules and with them flask.
"""


def __getattr__(name: str):
    if name != "BLUEPRINTS":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import models, workbench

    return [
        workbench.blueprint,
        models.blueprint,
    ]
