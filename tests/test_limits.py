"""Client keys (proxy/keys.py) and per-key limits (proxy/limits.py), both backends.

The Redis tests use the local Redis under a private key prefix; the
multi-process checks (4 gunicorn workers) are in test_team_gunicorn.py.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import redis

from proxy.errors import RateLimited
from proxy.keys import Budget, KeyPolicy, digest, load_keys, parse_prices, price_for, unrestricted
from proxy.limits import LimitExceeded, LocalLimits, RedisLimits, period_bounds
from tests.store_support import LOCAL_REDIS, delete_prefix, unique_prefix

pytestmark = pytest.mark.integration  # the Redis backend; the key tests are unit

# -- keys -------------------------------------------------------------------------


@pytest.mark.unit
def test_keys_load_hashed_literal_and_environment_keys(caplog):
    ring = load_keys([
        {"name": "team-a", "key": "sha256:" + digest("sk-team-a"), "models": ["mock", "openai/*"], "rpm": 60,
         "tpm": 1000, "max_concurrent": 4, "budget": {"tokens": 1000, "period": "month"}, "admin": False},
        {"name": "ops", "key": "sk-literal-ops", "admin": True},
    ], api_keys=["sk-env"])
    assert ring.find("sk-team-a").name == "team-a"
    assert ring.find("sk-team-a").budget == Budget(1000.0, "tokens", "month")
    assert ring.find("sk-literal-ops").admin
    assert ring.find("sk-env").models is None and not ring.find("sk-env").limited
    assert ring.find("sk-nope") is None
    # the warning names the entry and the digest to store instead, never the key
    assert "ops" in caplog.text and digest("sk-literal-ops") in caplog.text
    assert "sk-literal-ops" not in caplog.text


@pytest.mark.unit
@pytest.mark.parametrize("entry, words", [
    ({"key": "x"}, "name is required"),
    ({"name": "a"}, "key is required"),
    ({"name": "a", "key": "sha256:abc"}, "64 hexadecimal"),
    ({"name": "a", "key": "k", "rpm": 0}, "rpm must be a positive"),
    ({"name": "a", "key": "k", "tpm": "many"}, "tpm must be a positive"),
    ({"name": "a", "key": "k", "max_concurrent": True}, "max_concurrent must be"),
    ({"name": "a", "key": "k", "models": "mock"}, "models must be a list"),
    ({"name": "a", "key": "k", "budget": {"tokens": 5}}, "budget.period must be one of"),
    ({"name": "a", "key": "k", "budget": {"tokens": 5, "usd": 1, "period": "day"}}, "exactly one of tokens or usd"),
    ({"name": "a", "key": "k", "budget": {"usd": 5, "period": "day"}}, "needs prices"),
    ({"name": "a", "key": "k", "admin": "yes"}, "admin must be true or false"),
    ({"name": "a", "key": "k", "limit": 3}, "unknown field(s) limit"),
])
def test_key_errors_name_the_field(entry, words):
    with pytest.raises(ValueError) as info:
        load_keys([entry])
    assert words in str(info.value)
    if "name" in entry:
        assert "keys[0] (a)" in str(info.value)


@pytest.mark.unit
def test_duplicate_keys_and_names_are_refused():
    with pytest.raises(ValueError, match="same key"):
        load_keys([{"name": "a", "key": "k"}, {"name": "b", "key": "k"}])
    with pytest.raises(ValueError, match="used twice"):
        load_keys([{"name": "a", "key": "k1"}, {"name": "a", "key": "k2"}])


@pytest.mark.unit
def test_models_match_ids_aliases_and_globs():
    policy = KeyPolicy("a", "d", models=("mock", "openai/*", "coder"))
    assert policy.allows("mock") and policy.allows("openai/gpt-4o-mini") and policy.allows("coder")
    assert not policy.allows("anthropic/claude") and not policy.allows("mock-thinking") and not policy.allows("openai")
    assert KeyPolicy("b", "d").allows("anything")


@pytest.mark.unit
def test_prices_and_cost():
    prices = parse_prices({"openai/*": {"input": 1.0, "output": 2.0}, "mock": {"input": 10, "output": 20, "cached_input": 5}})
    assert price_for(prices, "mock").cost(1000, 100, cached_tokens=400) == pytest.approx((600 * 10 + 400 * 5 + 100 * 20) / 1e6)
    assert price_for(prices, "coder", "openai/gpt-4o").cost(1_000_000, 0) == 1.0
    assert price_for(prices, "anthropic/x") is None
    with pytest.raises(ValueError, match=r"prices.mock.input must be a number"):
        parse_prices({"mock": {"input": -1}})


def test_new_key_command_prints_a_key_and_its_digest():
    out = subprocess.run([sys.executable, "-m", "proxy.keys", "new", "--name", "team-x"], capture_output=True,
                         text=True, check=True).stdout
    token = out.split("): ", 1)[1].split("\n", 1)[0]
    assert f'key: "sha256:{digest(token)}"' in out and "name: team-x" in out
    hashed = subprocess.run([sys.executable, "-m", "proxy.keys", "hash"], input=token + "\n", capture_output=True,
                            text=True, check=True).stdout.strip()
    assert hashed == "sha256:" + digest(token)
    assert load_keys([{"name": "team-x", "key": hashed}]).find(token).name == "team-x"


@pytest.mark.unit
def test_period_bounds_are_utc_calendar_periods():
    # 2026-12-31 23:59:30 UTC
    now = 1798761570.0
    assert period_bounds("minute", now)[1] == pytest.approx(30)
    assert period_bounds("hour", now)[1] == pytest.approx(30)
    assert period_bounds("day", now)[1] == pytest.approx(30)
    assert period_bounds("month", now)[1] == pytest.approx(30)
    assert period_bounds("month", now - 86400 * 30)[1] == pytest.approx(86400 * 30 + 30)


# -- limits, both backends -------------------------------------------------------


@pytest.fixture(params=["local", "redis"])
def limits(request):
    if request.param == "local":
        yield LocalLimits(slot_ttl=5)
        return
    prefix = unique_prefix()
    client = redis.Redis.from_url(LOCAL_REDIS)
    backend = RedisLimits(client, prefix, slot_ttl=5)
    yield backend
    backend.close()
    delete_prefix(LOCAL_REDIS, prefix)
    client.close()


def test_rpm(limits):
    policy = KeyPolicy("a", "d", rpm=3)
    for _ in range(3):
        limits.admit(policy)
    with pytest.raises(RateLimited) as info:
        limits.admit(policy)
    assert info.value.code == "rpm_exceeded" and info.value.status == 429
    assert 1 <= info.value.retry_after <= 60
    assert "3 requests per minute" in info.value.message and "'a'" in info.value.message
    # another key has its own window
    limits.admit(KeyPolicy("b", "d2", rpm=1))


def test_tpm_reserves_the_estimate_and_settles_the_actual(limits):
    policy = KeyPolicy("a", "d", tpm=100)
    first = limits.admit(policy, estimate=60)
    with pytest.raises(LimitExceeded) as info:
        limits.admit(policy, estimate=60)
    assert info.value.limit == "tpm" and "100 tokens per minute" in info.value.message
    limits.settle(first, tokens=20)  # the actual use was smaller than the estimate
    second = limits.admit(policy, estimate=60)
    limits.settle(second, tokens=90)  # 110 > 100 now
    with pytest.raises(LimitExceeded):
        limits.admit(policy, estimate=1)


def test_concurrency_slots_are_released_on_settle_once(limits):
    policy = KeyPolicy("a", "d", max_concurrent=2)
    one, two = limits.admit(policy), limits.admit(policy)
    with pytest.raises(LimitExceeded) as info:
        limits.admit(policy)
    assert info.value.code == "max_concurrent_exceeded"
    limits.settle(one)
    limits.settle(one)  # settling twice frees nothing more
    three = limits.admit(policy)
    with pytest.raises(LimitExceeded):
        limits.admit(policy)
    limits.settle(two)
    limits.settle(three)


def test_budget_checked_before_and_charged_after(limits):
    policy = KeyPolicy("a", "d", budget=Budget(100, "tokens", "day"))
    first = limits.admit(policy)
    second = limits.admit(policy)  # in flight while the first is charged: admitted
    limits.settle(first, tokens=80, charge=80)
    third = limits.admit(policy)  # 80 < 100
    limits.settle(second, tokens=30, charge=30)
    limits.settle(third, tokens=30, charge=30)
    assert limits.spent(policy) == pytest.approx(140)  # overshoot = what was in flight when it ran out
    with pytest.raises(LimitExceeded) as info:
        limits.admit(policy)
    assert info.value.code == "budget_exceeded" and "100 tokens per day" in info.value.message
    assert info.value.retry_after == pytest.approx(period_bounds("day", time.time())[1], abs=2)


def test_a_rejection_reserves_nothing(limits):
    policy = KeyPolicy("a", "d", rpm=5, max_concurrent=1)
    held = limits.admit(policy)
    for _ in range(10):
        with pytest.raises(LimitExceeded):
            limits.admit(policy)
    limits.settle(held)
    for _ in range(4):  # 1 + 4 = 5: the ten rejections took no request of the window
        limits.settle(limits.admit(policy))
    with pytest.raises(LimitExceeded) as info:
        limits.admit(policy)
    assert info.value.limit == "rpm"


def test_exact_under_concurrent_admits(limits):
    policy = KeyPolicy("a", "d", max_concurrent=50)
    admitted, rejected = [], []
    barrier = threading.Barrier(20)

    def worker():
        barrier.wait()
        for _ in range(10):
            try:
                admitted.append(limits.admit(policy))
            except LimitExceeded:
                rejected.append(1)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 50 and len(rejected) == 150


def test_redis_slots_of_a_dead_process_expire():
    prefix = unique_prefix()
    client = redis.Redis.from_url(LOCAL_REDIS)
    try:
        policy = KeyPolicy("a", "d", max_concurrent=1)
        dead = RedisLimits(client, prefix, slot_ttl=1.0)
        dead.admit(policy)
        dead.close()  # stops its heartbeat, as a killed worker would
        alive = RedisLimits(client, prefix, slot_ttl=1.0)
        with pytest.raises(LimitExceeded):
            alive.admit(policy)
        time.sleep(1.2)
        held = alive.admit(policy)  # the dead slot expired
        # while its holder's heartbeat runs, a slot outlives its ttl
        time.sleep(1.6)
        with pytest.raises(LimitExceeded):
            alive.admit(policy)
        alive.settle(held)
        alive.settle(alive.admit(policy))
        alive.close()
    finally:
        delete_prefix(LOCAL_REDIS, prefix)
        client.close()


@pytest.mark.unit
def test_environment_key_policy_is_unrestricted():
    policy = unrestricted("sk-x")
    assert policy.name.startswith("key-") and "sk-x" not in policy.name and not policy.limited
