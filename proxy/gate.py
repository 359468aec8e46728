"""The gate every chat passes, whatever its surface: per-key policy before the
upstream opens; accounting, metrics and the access-log line once it ended.

    chat runner: start -> Gate.admit(caller, request, surface) -> Ticket   (403 model not allowed, 429 limits)
                 router.open ... stream ends (finished, failed, client gone)
                 -> Ticket.finish(tally, completed, stream)   (Ticket.watch counts what it needs as events pass)
                    -> Limits.settle (tokens, budget, slot) -> UsageLog.record -> metrics -> access log

A Ticket is finished exactly once, also when the upstream never opened, so a
concurrency slot is never kept by a request that ended. Nothing here reads
or logs the caller's key: only the key's configured name.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

from . import logs, metrics
from .canonical import CONTENT_EVENTS, ChatRequest, ChatResult, Event, Finish, ImagePart, TextPart, Usage
from .errors import Cancelled, PermissionDenied, ProxyError, StoreUnavailable
from .keys import KeyPolicy, KeyRing, keyring_of, parse_prices, price_for
from .limits import LimitExceeded, Limits, RedisLimits, Reservation, open_limits
from .usage import RedisUsage, UsageLog, UsageRecord

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4  # rough estimate of input tokens for the tpm reservation
TOKENS_PER_IMAGE = 1000


def estimate_input(request: ChatRequest) -> int:
    """Input tokens, from the text length (no tokenizer here)."""
    chars, images = 0, 0
    for message in request.messages:
        for part in message.parts:
            if isinstance(part, TextPart):
                chars += len(part.text)
            elif isinstance(part, ImagePart):
                images += 1
            else:
                chars += len(str(getattr(part, "text", "") or getattr(part, "content", "") or ""))
    return chars // CHARS_PER_TOKEN + images * TOKENS_PER_IMAGE


@dataclass(slots=True)
class Tally:
    """What accounting needs of a stream: its usage, how it ended and how much
    it produced, counted as the events pass (no answer is accumulated)."""

    usage: Usage | None = None
    finish: Finish | None = None
    error: ProxyError | None = None
    output_chars: int = 0  # text, reasoning and tool arguments: the estimate when no usage came

    @classmethod
    def of(cls, result: ChatResult) -> "Tally":
        chars = sum(len(getattr(part, "text", "") or getattr(part, "arguments", "") or "") for part in result.parts)
        return cls(result.usage, result.finish, result.error, chars)


def estimate_output(tally: Tally) -> int:
    return -(-tally.output_chars // CHARS_PER_TOKEN)


_FINISHING = threading.Lock()


@dataclass(slots=True)
class Ticket:
    """One admitted chat, until finish()."""

    gate: "Gate"
    request_id: str
    surface: str
    model: str
    policy: KeyPolicy | None
    reservation: Reservation | None
    started: float  # time.monotonic() when the request arrived
    input_estimate: int = 0
    first_content: float | None = None
    finished: bool = False

    def watch(self, events: Iterator[Event], chat: Any) -> Iterator[Event]:
        """Pass the chat's events through, noting when the first content came
        (TTFT) and what accounting needs; finish() once they end, also when
        the client leaves (the generator is closed)."""
        tally = Tally()
        try:
            for event in events:
                kind = event.type
                if kind == "text-delta" or kind == "reasoning-delta":
                    tally.output_chars += len(event.delta)
                elif kind == "tool-call":
                    tally.output_chars += len(event.input or "")
                elif kind == "usage":
                    tally.usage = event
                elif kind == "finish":
                    tally.finish = event
                elif kind == "error":
                    tally.error = event.error
                if self.first_content is None and isinstance(event, CONTENT_EVENTS):
                    self.first_content = time.monotonic()
                yield event
        finally:
            self.finish(tally, tally.finish is not None and tally.error is None, chat.stream)

    def finish(self, tally: Tally | None, completed: bool, stream: Any = None,
               error: ProxyError | None = None) -> None:
        """Settle the limits and account the chat; the first call wins."""
        with _FINISHING:  # one lock for all tickets: held for two lines, not worth one each
            if self.finished:
                return
            self.finished = True
        try:
            self.gate.finish(self, tally, completed, stream, error)
        except Exception:
            log.exception("accounting the request failed")


class Gate:
    def __init__(self, settings, router, usage: UsageLog | None, limits: Limits | None = None) -> None:
        self.router = router
        self.prices = parse_prices(settings.prices)
        self.keys: KeyRing = keyring_of(settings)
        self.limits = limits if limits is not None else (open_limits(settings) if self.keys.limited else None)
        self.usage = usage

    @property
    def required(self) -> bool:
        """Whether callers must present a key."""
        return bool(self.keys)

    # -- before the upstream opens -------------------------------------------------

    def admit_chat(self, chat: Any) -> Ticket:
        """The chat runner's admission (Chat.open): admit, then note the first
        content (TTFT) and finish the ticket when the stream is over.
        `chat.started`: when its request arrived (monotonic), if known."""
        ticket = self.admit(chat.caller.policy if chat.caller is not None else None, chat.request,
                            chat.surface.name, chat.request_id or "", chat.started)
        chat.add_wrapper(lambda events: ticket.watch(events, chat))
        return ticket

    def admit(self, policy: KeyPolicy | None, request: ChatRequest, surface: str, request_id: str = "",
              started: float | None = None) -> Ticket:
        started = time.monotonic() if started is None else started
        if policy is not None and not policy.allows(self.router.policy_model(request)):  # Coze hints: coze/<id>
            error = PermissionDenied(
                f"the key {policy.name!r} may not use the model {self.router.policy_model(request)!r}; "
                f"it may use: {', '.join(policy.models or ())}", param="model", code="model_not_allowed")
            self._rejected(policy, request, surface, request_id, started, error, "model")
            raise error
        if policy is not None and policy.budget is not None and policy.budget.unit == "usd" and not self._priced(
                request.model):
            # An unpriced model would cost the budget nothing: it would be a way around it.
            error = PermissionDenied(
                f"the key {policy.name!r} has a budget in USD, and the model {request.model!r} has no price: "
                f"add it to prices: in the config", param="model", code="model_not_priced")
            self._rejected(policy, request, surface, request_id, started, error, "budget")
            raise error
        reservation = None
        input_estimate = estimate_input(request)
        if policy is not None and policy.limited and self.limits is not None:
            try:
                # tpm reserves the input and the output cap the client set
                estimate = input_estimate + (request.max_tokens or 0) if policy.tpm else 0
                reservation = self.limits.admit(policy, estimate)
            except LimitExceeded as error:
                self._rejected(policy, request, surface, request_id, started, error, error.limit)
                raise
            except Exception as failure:  # Redis away: refuse rather than run without the key's limits
                log.error("checking the limits of %s failed: %s", policy.name, failure)
                raise StoreUnavailable("the limits store is unavailable: the request was not started; retry shortly",
                                       code="limits_unavailable", retry_after=1) from None
        metrics.labelled(metrics.ACTIVE, surface).inc()
        return Ticket(self, request_id, surface, request.model, policy, reservation, started, input_estimate)

    def _priced(self, model_id: str) -> bool:
        """Whether `prices:` covers the model (by its id, or the provider/model it resolves to)."""
        if price_for(self.prices, model_id) is not None:
            return True
        try:
            preset = getattr(self.router, "presets", {}).get(model_id)
            route = self.router.resolve(preset.model if preset is not None else model_id)
        except ProxyError:
            return True  # not a model: the router answers 404 for it
        return price_for(self.prices, route.id, f"{route.provider}/{route.upstream_model}") is not None

    def _rejected(self, policy: KeyPolicy, request: ChatRequest, surface: str, request_id: str, started: float,
                  error: ProxyError, limit: str) -> None:
        metrics.REJECTIONS.labels(policy.name, limit).inc()
        model, provider = self._labels(request.model, None)
        metrics.labelled(metrics.REQUESTS, surface, model, provider, "rejected").inc()
        duration = time.monotonic() - started
        self._record(UsageRecord(time=time.time(), request_id=request_id, key=policy.name, model=request.model,
                                 provider=provider, surface=surface, status="rejected", error=error.code,
                                 duration=duration))

    # -- after the stream ended ------------------------------------------------------

    def _labels(self, model_id: str, stream: Any) -> tuple[str, str]:
        """(model, provider) for metrics: only ids the router knows, so a client
        cannot grow the label set with made-up model names."""
        route = getattr(stream, "route", None)
        if route is None:
            try:
                route = self.router.resolve(model_id)
            except ProxyError:
                return "(unknown)", ""
        model = model_id if model_id in self.router.routes or model_id == route.id else route.id
        return model, route.provider

    def finish(self, ticket: Ticket, tally: Tally | None, completed: bool, stream: Any,
               error: ProxyError | None) -> None:
        now = time.monotonic()
        metrics.labelled(metrics.ACTIVE, ticket.surface).dec()
        opened = tally is not None  # events flowed (None: the upstream never opened)
        tally = tally or Tally()
        error = error or tally.error
        # A stream whose Finish arrived is complete even when the encoder
        # stopped reading right after it (the iterator was closed, not drained).
        if (completed or tally.finish is not None) and error is None:
            status = "ok"
        elif isinstance(error, Cancelled) or error is None or (
                error.code == "stream_incomplete" and stream is not None and stream.cancelled.is_set()):
            status = "cancelled"  # the client went away (or stopped the chat); its stream was cut for that
        else:
            status = "error"
        usage = tally.usage
        if usage is not None:
            input_tokens, output_tokens = usage.input_tokens, usage.output_tokens
            reasoning, cached = usage.reasoning_tokens or 0, usage.cached_input_tokens or 0
        elif opened:  # the upstream opened but said nothing of usage: count what went in and out
            input_tokens, output_tokens, reasoning, cached = ticket.input_estimate, estimate_output(tally), 0, 0
        else:  # never opened: nothing was used
            input_tokens = output_tokens = reasoning = cached = 0
        model, provider = self._labels(ticket.model, stream)
        route = getattr(stream, "route", None)
        price = price_for(self.prices, ticket.model, f"{route.provider}/{route.upstream_model}" if route else None)
        cost = price.cost(input_tokens, output_tokens, cached) if price else None
        tokens = input_tokens + output_tokens
        ttft = ticket.first_content - ticket.started if ticket.first_content is not None else None
        duration = now - ticket.started
        record = UsageRecord(
            time=time.time(), request_id=ticket.request_id, key=ticket.policy.name if ticket.policy else "",
            model=ticket.model, provider=provider, surface=ticket.surface, input_tokens=input_tokens,
            output_tokens=output_tokens, reasoning_tokens=reasoning, cached_tokens=cached, cost=cost,
            status=status, error="cancelled" if status == "cancelled" else error.code if error is not None else None,
            ttft=ttft, duration=duration, estimated=int(usage is None and opened))
        recorded = False
        if ticket.reservation is not None:
            budget = ticket.policy.budget
            charge = (cost or 0.0) if budget and budget.unit == "usd" else tokens
            # With Redis for both, the settle script and the usage row share one round trip.
            together = isinstance(self.limits, RedisLimits) and isinstance(self.usage, RedisUsage)
            try:
                replies = self.limits.settle(ticket.reservation, tokens, charge,
                                             also=(lambda pipe: self.usage.queue(pipe, record)) if together else None)
                if together:
                    self.usage.settled(record, replies[0])
                    recorded = True
            except Exception:
                log.exception("settling the limits of %s failed", ticket.policy.name)
        metrics.labelled(metrics.REQUESTS, ticket.surface, model, provider, status).inc()
        metrics.labelled(metrics.DURATION, ticket.surface, provider).observe(duration)
        if ttft is not None:
            metrics.labelled(metrics.TTFT, ticket.surface, provider).observe(ttft)
        if input_tokens:
            metrics.labelled(metrics.TOKENS, model, provider, "input").inc(input_tokens)
        if output_tokens:
            metrics.labelled(metrics.TOKENS, model, provider, "output").inc(output_tokens)
        self._record(record, stored=recorded)

    def _record(self, record: UsageRecord, stored: bool = False) -> None:
        if self.usage is not None and not stored:
            try:
                self.usage.record(record)
            except Exception:
                log.exception("recording usage failed")
        logs.access(
            "chat", request_id=record.request_id or None, surface=record.surface, key=record.key or None,
            model=record.model, provider=record.provider or None, status=record.status, error=record.error,
            ttft=None if record.ttft is None else round(record.ttft, 4), duration=round(record.duration, 4),
            input_tokens=record.input_tokens, output_tokens=record.output_tokens,
            reasoning_tokens=record.reasoning_tokens or None, cached_tokens=record.cached_tokens or None,
            cost=record.cost)
