"""The Coze provider package (docs/coze.md).

    provider.py   CozeProvider: all the IO (HTTP calls, uploads, locks, store)
    request.py    ChatRequest -> Coze request bodies (pure)
    decode.py     Coze streams and JSON envelopes -> canonical events and errors (pure)

Nothing is imported here, so the pure modules load without requests.
"""
