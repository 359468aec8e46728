"""Client protocol surfaces: one blueprint each, registered here.

Each surface is a blueprint module (IO: Flask) plus, where it has one, a
`*_codec` module of pure decode/encode functions; a chat surface hands the
chat runner (proxy/chat.py) its `SURFACE`. Adding one is one line in
modules(); an app may add its own with proxy.chat.register(). The blueprint modules are imported inside the functions here:
importing a pure codec imports this package first, and that must not pull
in flask.
"""


def modules() -> list:
    from . import (
        api_docs,
        conversations,
        coze_routes,
        models,
        openai_chat,
        operations,
        playground,
        responses,
        ui_chat,
        usage,
        workbench,
    )

    return [workbench, models, openai_chat, conversations, coze_routes, responses, ui_chat, usage, operations,
            playground, api_docs]


def register_all(app, parent) -> None:
    """Every surface's blueprint inside Switchboard's own blueprint `parent`."""
    from ..chat import register

    for module in modules():
        register(app, module.blueprint, getattr(module, "SURFACE", None), parent=parent)
