"""Per-key rate, token, concurrency and budget limits: check-and-reserve, then settle.

    gate.admit -> Limits.admit(policy, estimate) -> Reservation   (or RateLimited, 429)
    stream ends (finished, failed, client gone) -> Limits.settle(reservation, tokens, cost)

One `admit` checks every limit of the key and reserves all of them, or
none: a request per minute (rpm), the estimated tokens (tpm), a concurrency
slot (max_concurrent) and the budget (checked only: spend is charged when
the request ends, with the final usage, partial usage included).
`settle` corrects the token reservation to the actual count, charges the
budget and frees the slot; it runs once per request, whatever ended it.

With REDIS_URL (RedisLimits) each admit and each settle is one Lua script,
so the limits are exact across workers and machines; times come from the
Redis server's clock. Without Redis (LocalLimits) the same rules hold per
process: with N workers a key gets up to N times its limits.

Windows: rpm and tpm count the last 60 seconds in one-second buckets.
Concurrency slots expire `slot_ttl` seconds after their last heartbeat: a
worker refreshes its open slots every slot_ttl / 3 seconds, so slots held by
a worker that was killed (SIGKILL, OOM) are freed within slot_ttl.
Budgets are calendar periods in UTC (minute, hour, day, month). Because a
budget is checked before a request and charged after it, it can be overshot
by at most the usage of the requests already in flight when it ran out (at
most max_concurrent of them when the key sets it).
"""
from __future__ import annotations

import calendar
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import RateLimited
from .keys import KeyPolicy

log = logging.getLogger(__name__)

WINDOW = 60  # seconds: rpm and tpm
DEFAULT_SLOT_TTL = 30.0


class LimitExceeded(RateLimited):
    """429 naming the limit (`limit`: rpm, tpm, max_concurrent, budget) and when it resets."""

    def __init__(self, message: str, *, limit: str, retry_after: float) -> None:
        super().__init__(message, code=f"{limit}_exceeded", retry_after=max(1.0, retry_after))
        self.limit = limit


def period_bounds(period: str, now: float) -> tuple[str, float]:
    """(period id, seconds until it ends) of the UTC calendar period holding `now`."""
    t = time.gmtime(now)
    if period == "minute":
        start = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, 0))
        end = start + 60
    elif period == "hour":
        start = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, 0, 0))
        end = start + 3600
    elif period == "day":
        start = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0))
        end = start + 86400
    elif period == "month":
        start = calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0))
        year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
        end = calendar.timegm((year, month, 1, 0, 0, 0))
    else:
        raise ValueError(f"unknown budget period {period!r}")
    return f"{period}-{start}", end - now


def reject(policy: KeyPolicy, limit: str, retry_after: float, spent: float | None = None) -> LimitExceeded:
    wait = max(1, int(retry_after + 0.999))
    if limit == "rpm":
        message = f"rate limit: the key {policy.name!r} allows {policy.rpm} requests per minute; retry in {wait} s"
    elif limit == "tpm":
        message = f"rate limit: the key {policy.name!r} allows {policy.tpm} tokens per minute; retry in {wait} s"
    elif limit == "max_concurrent":
        message = (f"concurrency limit: the key {policy.name!r} allows {policy.max_concurrent} requests at once; "
                   f"retry when one of them ends")
    else:
        message = (f"budget exhausted: the key {policy.name!r} has a budget of {policy.budget.describe()}; "
                   f"it resets in {wait} s")
    return LimitExceeded(message, limit=limit, retry_after=retry_after)


@dataclass(slots=True)
class Reservation:
    """What one admitted request holds until settle()."""

    policy: KeyPolicy
    slot: str | None = None
    bucket: int | None = None  # the second its tokens were reserved in
    estimate: int = 0
    budget_key: str | None = None
    budget_ttl: int = 0
    settled: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Limits:
    """Interface: admit() before a request opens, settle() once it ended."""

    def __init__(self, slot_ttl: float = DEFAULT_SLOT_TTL) -> None:
        self.slot_ttl = slot_ttl

    def admit(self, policy: KeyPolicy, estimate: int = 0) -> Reservation:
        raise NotImplementedError

    def settle(self, reservation: Reservation, tokens: int = 0, charge: float = 0.0,
               also: Callable[[Any], None] | None = None) -> list:
        """Correct the tokens, charge the budget, free the slot; once per
        reservation. `also(pipeline)` may queue Redis commands to send in the
        same round trip (RedisLimits only)."""
        raise NotImplementedError

    def spent(self, policy: KeyPolicy) -> float:
        """Budget spent in the current period (tokens or USD)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class LocalLimits(Limits):
    """Per-process limits (no REDIS_URL): exact within one worker only."""

    def __init__(self, slot_ttl: float = DEFAULT_SLOT_TTL) -> None:
        super().__init__(slot_ttl)
        self._lock = threading.Lock()
        self._requests: dict[str, dict[int, int]] = {}
        self._tokens: dict[str, dict[int, int]] = {}
        self._slots: dict[str, set[str]] = {}
        self._spent: dict[str, float] = {}

    @staticmethod
    def _window(buckets: dict[int, int], second: int) -> tuple[int, int | None]:
        for old in [s for s in buckets if s <= second - WINDOW]:
            del buckets[old]
        used = sum(buckets.values())
        oldest = min((s for s, v in buckets.items() if v > 0), default=None)
        return used, oldest

    def admit(self, policy: KeyPolicy, estimate: int = 0) -> Reservation:
        now = time.time()
        second = int(now)
        name = policy.name
        with self._lock:
            if policy.rpm:
                buckets = self._requests.setdefault(name, {})
                used, oldest = self._window(buckets, second)
                if used + 1 > policy.rpm:
                    raise reject(policy, "rpm", (oldest or second) + WINDOW - now)
            if policy.tpm:
                buckets = self._tokens.setdefault(name, {})
                used, oldest = self._window(buckets, second)
                if used > 0 and used + estimate > policy.tpm:
                    raise reject(policy, "tpm", (oldest or second) + WINDOW - now)
            if policy.max_concurrent and len(self._slots.get(name, ())) >= policy.max_concurrent:
                raise reject(policy, "max_concurrent", 1.0)
            budget_key = None
            if policy.budget:
                period, remaining = period_bounds(policy.budget.period, now)
                budget_key = f"{name}:{period}"
                for old in [k for k in self._spent if k.startswith(name + ":") and k != budget_key]:
                    del self._spent[old]
                if self._spent.get(budget_key, 0.0) >= policy.budget.amount:
                    raise reject(policy, "budget", remaining)
            reservation = Reservation(policy, budget_key=budget_key)
            if policy.rpm:
                buckets = self._requests[name]
                buckets[second] = buckets.get(second, 0) + 1
            if policy.tpm:
                buckets = self._tokens[name]
                buckets[second] = buckets.get(second, 0) + estimate
                reservation.bucket, reservation.estimate = second, estimate
            if policy.max_concurrent:
                reservation.slot = uuid.uuid4().hex
                self._slots.setdefault(name, set()).add(reservation.slot)
            return reservation

    def settle(self, reservation: Reservation, tokens: int = 0, charge: float = 0.0,
               also: Callable[[Any], None] | None = None) -> list:
        with self._lock:
            if reservation.settled:
                return []
            reservation.settled = True
            name = reservation.policy.name
            if reservation.bucket is not None:
                buckets = self._tokens.setdefault(name, {})
                second = int(time.time())
                delta = tokens - reservation.estimate
                if reservation.bucket > second - WINDOW:
                    buckets[reservation.bucket] = buckets.get(reservation.bucket, 0) + delta
                elif delta > 0:  # the reserved second left the window: count the rest now
                    buckets[second] = buckets.get(second, 0) + delta
            if reservation.slot is not None:
                self._slots.get(name, set()).discard(reservation.slot)
            if reservation.budget_key is not None and charge:
                self._spent[reservation.budget_key] = self._spent.get(reservation.budget_key, 0.0) + charge
            return []

    def spent(self, policy: KeyPolicy) -> float:
        if not policy.budget:
            return 0.0
        period, _ = period_bounds(policy.budget.period, time.time())
        with self._lock:
            return self._spent.get(f"{policy.name}:{period}", 0.0)


# One script checks every limit and reserves all of them, or none.
# KEYS: requests window, tokens window, slots, budget spend.
# ARGV: rpm, tpm, max_concurrent, budget amount, estimate, slot id, slot ttl, budget reset seconds.
# Returns {"ok", second} or {limit, retry-after seconds}.
ADMIT = """
local t = redis.call('TIME')
local second = tonumber(t[1])
local now = second + tonumber(t[2]) / 1000000
local rpm, tpm, slots, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local estimate = tonumber(ARGV[5])
local function window(key)
  local fields = redis.call('HGETALL', key)
  local used, oldest = 0, nil
  for i = 1, #fields, 2 do
    local s = tonumber(fields[i])
    if s <= second - 60 then
      redis.call('HDEL', key, fields[i])
    else
      local v = tonumber(fields[i + 1])
      used = used + v
      if v > 0 and (oldest == nil or s < oldest) then oldest = s end
    end
  end
  return used, (oldest or second)
end
if rpm > 0 then
  local used, oldest = window(KEYS[1])
  if used + 1 > rpm then return {'rpm', tostring(oldest + 60 - now)} end
end
if tpm > 0 then
  local used, oldest = window(KEYS[2])
  if used > 0 and used + estimate > tpm then return {'tpm', tostring(oldest + 60 - now)} end
end
if slots > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= slots then return {'max_concurrent', '1'} end
end
if budget > 0 then
  local spent = tonumber(redis.call('GET', KEYS[4]) or '0')
  if spent >= budget then return {'budget', ARGV[8]} end
end
if rpm > 0 then
  redis.call('HINCRBY', KEYS[1], second, 1)
  redis.call('EXPIRE', KEYS[1], 120)
end
if tpm > 0 then
  redis.call('HINCRBY', KEYS[2], second, estimate)
  redis.call('EXPIRE', KEYS[2], 120)
end
if slots > 0 then
  local ttl = tonumber(ARGV[7])
  redis.call('ZADD', KEYS[3], now + ttl, ARGV[6])
  redis.call('EXPIRE', KEYS[3], math.ceil(ttl) + 60)
end
return {'ok', tostring(second)}
"""

# KEYS: tokens window, slots, budget spend.
# ARGV: reserved second (or ''), actual - estimate, slot id (or ''), charge, budget key ttl.
SETTLE = """
local second = tonumber(redis.call('TIME')[1])
if ARGV[1] ~= '' then
  local reserved, delta = tonumber(ARGV[1]), tonumber(ARGV[2])
  if reserved > second - 60 then
    redis.call('HINCRBY', KEYS[1], reserved, delta)
  elseif delta > 0 then
    redis.call('HINCRBY', KEYS[1], second, delta)
    redis.call('EXPIRE', KEYS[1], 120)
  end
end
if ARGV[3] ~= '' then redis.call('ZREM', KEYS[2], ARGV[3]) end
local charge = tonumber(ARGV[4])
if charge > 0 then
  redis.call('INCRBYFLOAT', KEYS[3], charge)
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[5]))
end
return 1
"""

# KEYS: slots sets; ARGV: ttl, then per key the count of its slots and the slots.
HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ttl = tonumber(ARGV[1])
local i = 2
for k = 1, #KEYS do
  local count = tonumber(ARGV[i])
  for j = 1, count do
    redis.call('ZADD', KEYS[k], 'XX', now + ttl, ARGV[i + j])
  end
  redis.call('EXPIRE', KEYS[k], math.ceil(ttl) + 60)
  i = i + count + 1
end
return 1
"""


class RedisLimits(Limits):
    """Limits shared by every worker and machine using one Redis."""

    def __init__(self, client, prefix: str, slot_ttl: float = DEFAULT_SLOT_TTL) -> None:
        super().__init__(slot_ttl)
        self.client = client
        self.prefix = f"{prefix}:limits"
        self._admit = client.register_script(ADMIT)
        self._settle = client.register_script(SETTLE)
        self._heartbeat = client.register_script(HEARTBEAT)
        self._held: dict[str, set[str]] = {}  # slots key -> slot ids this process holds
        self._lock = threading.Lock()
        self._beating = False
        self._closed = threading.Event()

    @classmethod
    def from_url(cls, url: str, prefix: str, slot_ttl: float = DEFAULT_SLOT_TTL) -> "RedisLimits":
        import redis

        return cls(redis.Redis.from_url(url), prefix, slot_ttl)

    def _keys(self, name: str) -> tuple[str, str, str]:
        base = f"{self.prefix}:{name}"
        return f"{base}:requests", f"{base}:tokens", f"{base}:slots"

    def admit(self, policy: KeyPolicy, estimate: int = 0) -> Reservation:
        requests_key, tokens_key, slots_key = self._keys(policy.name)
        budget_key, budget_ttl, reset = f"{self.prefix}:{policy.name}:budget", 0, 0.0
        if policy.budget:
            period, reset = period_bounds(policy.budget.period, time.time())
            budget_key = f"{self.prefix}:{policy.name}:budget:{period}"
            budget_ttl = int(reset) + 3600
        slot = uuid.uuid4().hex if policy.max_concurrent else ""
        outcome, value = self._admit(
            keys=[requests_key, tokens_key, slots_key, budget_key],
            args=[policy.rpm or 0, policy.tpm or 0, policy.max_concurrent or 0,
                  policy.budget.amount if policy.budget else 0, int(estimate), slot, self.slot_ttl, reset])
        outcome = outcome.decode() if isinstance(outcome, bytes) else outcome
        if outcome != "ok":
            raise reject(policy, outcome, float(value))
        reservation = Reservation(policy, slot=slot or None, budget_key=budget_key if policy.budget else None,
                                  budget_ttl=budget_ttl)
        if policy.tpm:
            reservation.bucket, reservation.estimate = int(value), int(estimate)
        if slot:
            with self._lock:
                self._held.setdefault(slots_key, set()).add(slot)
            self._start_heartbeat()
        return reservation

    def settle(self, reservation: Reservation, tokens: int = 0, charge: float = 0.0,
               also: Callable[[Any], None] | None = None) -> list:
        """One round trip: the settle script, plus whatever `also(pipeline)`
        queues (the usage row); returns the replies to those."""
        if reservation.settled:
            return []
        reservation.settled = True
        _, tokens_key, slots_key = self._keys(reservation.policy.name)
        if reservation.slot is not None:
            with self._lock:
                held = self._held.get(slots_key)
                if held is not None:
                    held.discard(reservation.slot)
                    if not held:
                        del self._held[slots_key]
        needed = reservation.bucket is not None or reservation.slot is not None or bool(
            reservation.budget_key and charge)
        if not needed and also is None:
            return []
        keys = [tokens_key, slots_key, reservation.budget_key or f"{self.prefix}:unused"]
        args = ["" if reservation.bucket is None else reservation.bucket, int(tokens) - reservation.estimate,
                reservation.slot or "", float(charge) if reservation.budget_key else 0, reservation.budget_ttl or 60]
        pipe = self.client.pipeline(transaction=False)
        if needed:
            # EVALSHA of the script registered at start-up; a Redis that lost
            # its scripts (restarted) answers NOSCRIPT and gets it again below.
            pipe.evalsha(self._settle.sha, len(keys), *keys, *args)
        if also is not None:
            also(pipe)
        replies = pipe.execute(raise_on_error=False)
        if needed:
            first, replies = replies[0], replies[1:]
            if isinstance(first, Exception):
                self._settle(keys=keys, args=args)
        return replies

    def spent(self, policy: KeyPolicy) -> float:
        if not policy.budget:
            return 0.0
        period, _ = period_bounds(policy.budget.period, time.time())
        value = self.client.get(f"{self.prefix}:{policy.name}:budget:{period}")
        return float(value or 0)

    # -- slot heartbeat ---------------------------------------------------------

    def _start_heartbeat(self) -> None:
        if self._beating:
            return
        with self._lock:
            if self._beating:
                return
            self._beating = True
        # Started on first use, in the worker (a greenlet once gevent patched threading).
        threading.Thread(target=self._beat, name="switchboard-slot-heartbeat", daemon=True).start()

    def _beat(self) -> None:
        interval = max(0.2, self.slot_ttl / 3)
        while not self._closed.wait(interval):
            self.refresh()

    def refresh(self) -> None:
        """Push the expiry of every slot this process holds slot_ttl ahead."""
        with self._lock:
            held = {key: list(slots) for key, slots in self._held.items() if slots}
        if not held:
            return
        args: list[Any] = [self.slot_ttl]
        for slots in held.values():
            args.append(len(slots))
            args.extend(slots)
        try:
            self._heartbeat(keys=list(held), args=args)
        except Exception:  # Redis away for a moment: the next beat tries again
            log.warning("could not refresh concurrency slots", exc_info=True)

    def close(self) -> None:
        self._closed.set()


def open_limits(settings) -> Limits:
    section = settings.limits or {}
    if not isinstance(section, dict):
        raise ValueError("limits must be a mapping such as {slot_ttl: 30}")
    slot_ttl = section.get("slot_ttl", DEFAULT_SLOT_TTL)
    if isinstance(slot_ttl, bool) or not isinstance(slot_ttl, (int, float)) or slot_ttl <= 0:
        raise ValueError(f"limits.slot_ttl must be a positive number of seconds, got {slot_ttl!r}")
    if settings.redis_url:
        return RedisLimits.from_url(settings.redis_url, settings.redis_prefix, float(slot_ttl))
    return LocalLimits(float(slot_ttl))
