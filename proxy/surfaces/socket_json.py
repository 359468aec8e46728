"""The packet class the Socket.IO server decodes chat messages with.

    42["chat", {...}] -> loads() -> ["chat", {...}]          (python-socketio's packet decoder)
    42["chat", {"messages": [   -> loads() -> [INVALID, reason]  (answered with an `error` event)

python-socketio drops a packet whose JSON it cannot parse, with a logged
traceback and nothing sent back, so its chat would never end. Decoding here
never raises: a broken packet becomes an event of its own, which the chat
handlers answer with `error`. orjson also bounds the nesting depth that
the standard library would recurse into. Only Socket.IO packets use it:
engine.io's own packets ("2probe") rely on a decoder that raises.
"""
from __future__ import annotations

import json
from typing import Any

import orjson
from socketio.packet import Packet

INVALID = "switchboard:invalid-packet"


class LenientJSON:
    @staticmethod
    def loads(text: str | bytes, **_: Any) -> Any:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as error:
            return [INVALID, str(error)]

    @staticmethod
    def dumps(data: Any, **kwargs: Any) -> str:
        # The standard library, not orjson: it escapes lone surrogates where
        # orjson refuses them, so an echo of a client's own text never fails.
        return json.dumps(data, **kwargs)


class LenientPacket(Packet):
    json = LenientJSON
