"""Client protocol surfaces: one blueprint each, registered here.

Each surface is a blueprint module (IO: Flask) plus, where it has one, a
`*_codec` module of pure decode/encode functions. The blueprint modules are
imported inside blueprints(): importing a pure codec imports this package
first, and that must not pull in flask.
"""


def blueprints() -> list:
    from . import api_docs, conversations, models, openai_chat, playground, workbench

    return [
        workbench.blueprint,
        models.blueprint,
        openai_chat.blueprint,
        conversations.blueprint,
        playground.blueprint,
        api_docs.blueprint,
    ]
