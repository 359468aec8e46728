"""Client keys and what each may do: the YAML `keys:` list and SWITCHBOARD_API_KEYS.

    config (keys:, prices:, SWITCHBOARD_API_KEYS) -> load_keys() -> KeyRing   (once, at start-up)
    request token -> KeyRing.find(token) -> KeyPolicy (name, models, rpm, tpm,
        max_concurrent, budget, admin) -> auth.Caller -> gate.admit (limits.py)

A key is stored as `sha256:<hex digest>` (a literal key is accepted with a
start-up warning); a token is looked up by its digest, so the server never
needs the keys themselves. Every field is validated here and an error names
the entry and the field. Keys from SWITCHBOARD_API_KEYS are unrestricted.

`python -m proxy.keys new [--name NAME]` prints a fresh key and the entry to
paste into the config; `python -m proxy.keys hash` reads a key from stdin and
prints its `sha256:` form.
Pure: imports neither flask nor requests.
"""
from __future__ import annotations

import fnmatch
import hashlib
import logging
import secrets
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

log = logging.getLogger(__name__)

PERIODS = ("minute", "hour", "day", "month")
KEY_FIELDS = {"name", "key", "models", "rpm", "tpm", "max_concurrent", "budget", "admin"}
PRICE_FIELDS = {"input", "output", "cached_input"}
DIGEST_PREFIX = "sha256:"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(slots=True, frozen=True)
class Budget:
    """Spend allowed per calendar period (UTC): `unit` is "tokens" or "usd"."""

    amount: float
    unit: str
    period: str

    def describe(self) -> str:
        amount = f"${self.amount:g}" if self.unit == "usd" else f"{self.amount:g} tokens"
        return f"{amount} per {self.period}"


@dataclass(slots=True, frozen=True)
class KeyPolicy:
    """One client key: its name (safe to log and store), never the key itself."""

    name: str
    digest: str
    models: tuple[str, ...] | None = None  # None: every model
    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None
    budget: Budget | None = None
    admin: bool = False

    @property
    def limited(self) -> bool:
        return bool(self.rpm or self.tpm or self.max_concurrent or self.budget)

    def allows(self, model_id: str) -> bool:
        """Whether the key may ask for `model_id` (the id, alias or preset the
        client named). Patterns are shell globs: `openai/*`."""
        if self.models is None:
            return True
        for pattern in self.models:
            if pattern == model_id or fnmatch.fnmatchcase(model_id, pattern):
                return True
        return False


@dataclass(slots=True, frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float = 0.0
    output: float = 0.0
    cached_input: float | None = None

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int | None = None) -> float:
        cached = min(cached_tokens or 0, input_tokens) if self.cached_input is not None else 0
        total = (input_tokens - cached) * self.input + cached * (self.cached_input or 0.0) + output_tokens * self.output
        return total / 1_000_000


class KeyRing:
    """Every configured key, found by the digest of the token a client sent."""

    def __init__(self, policies: Iterable[KeyPolicy] = ()) -> None:
        self.by_digest: dict[str, KeyPolicy] = {}
        self.by_name: dict[str, KeyPolicy] = {}
        for policy in policies:
            if policy.digest in self.by_digest:
                raise ValueError(f"keys: {policy.name!r} has the same key as {self.by_digest[policy.digest].name!r}")
            if policy.name in self.by_name:
                raise ValueError(f"keys: the name {policy.name!r} is used twice; names must be unique")
            self.by_digest[policy.digest] = policy
            self.by_name[policy.name] = policy

    def __bool__(self) -> bool:
        return bool(self.by_digest)

    def __len__(self) -> int:
        return len(self.by_digest)

    def find(self, token: str) -> KeyPolicy | None:
        # A dict lookup on the token's digest: its timing says nothing about
        # how close the token came to a real key.
        return self.by_digest.get(digest(token))

    @property
    def limited(self) -> bool:
        return any(policy.limited for policy in self.by_digest.values())


def _positive_int(entry: Mapping, field: str, where: str) -> int | None:
    value = entry.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{where}: {field} must be a positive whole number, got {value!r}")
    return value


def parse_budget(value: Any, where: str) -> Budget | None:
    if value is None:
        return None
    example = "for example {tokens: 1000000, period: month} or {usd: 10, period: day}"
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: budget must be a mapping, {example}")
    unknown = set(value) - {"tokens", "usd", "period"}
    if unknown:
        raise ValueError(f"{where}: budget has unknown field(s) {', '.join(sorted(unknown))}; {example}")
    units = [unit for unit in ("tokens", "usd") if unit in value]
    if len(units) != 1:
        raise ValueError(f"{where}: budget needs exactly one of tokens or usd, {example}")
    unit = units[0]
    amount = value[unit]
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount <= 0:
        raise ValueError(f"{where}: budget.{unit} must be a positive number, got {amount!r}")
    period = value.get("period")
    if period not in PERIODS:
        raise ValueError(f"{where}: budget.period must be one of {', '.join(PERIODS)}, got {period!r}")
    return Budget(float(amount), unit, period)


def parse_key(entry: Any, index: int) -> tuple[KeyPolicy, bool]:
    """One `keys:` entry -> (policy, whether the key was given literally)."""
    where = f"keys[{index}]"
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where} must be a mapping with at least name: and key:")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}: name is required (a label for logs and usage, e.g. team-a)")
    where = f"keys[{index}] ({name})"
    unknown = set(entry) - KEY_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(KEY_FIELDS))}")
    key = entry.get("key")
    if not isinstance(key, str) or not key.strip():
        raise ValueError(f"{where}: key is required: 'sha256:<hex>' (python -m proxy.keys new prints one)")
    literal = not key.startswith(DIGEST_PREFIX)
    if literal:
        key_digest = digest(key)
    else:
        key_digest = key[len(DIGEST_PREFIX):].strip().lower()
        if len(key_digest) != 64 or any(c not in "0123456789abcdef" for c in key_digest):
            raise ValueError(f"{where}: key 'sha256:...' must carry 64 hexadecimal digits")
    models = entry.get("models")
    if models is not None:
        if isinstance(models, str) or not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
            raise ValueError(f"{where}: models must be a list of model ids, aliases, presets or globs such as 'openai/*'")
        models = tuple(models)
    admin = entry.get("admin", False)
    if not isinstance(admin, bool):
        raise ValueError(f"{where}: admin must be true or false, got {admin!r}")
    policy = KeyPolicy(
        name=name.strip(),
        digest=key_digest,
        models=models,
        rpm=_positive_int(entry, "rpm", where),
        tpm=_positive_int(entry, "tpm", where),
        max_concurrent=_positive_int(entry, "max_concurrent", where),
        budget=parse_budget(entry.get("budget"), where),
        admin=admin,
    )
    return policy, literal


def unrestricted(token: str) -> KeyPolicy:
    """A SWITCHBOARD_API_KEYS key: all models, no limits. Named by a short
    fingerprint of its digest (safe to log)."""
    key_digest = digest(token)
    return KeyPolicy(name="key-" + key_digest[:12], digest=key_digest)


def parse_prices(values: Any) -> dict[str, Price]:
    """`prices: {model id or glob: {input: 0.15, output: 0.6, cached_input: 0.075}}` (USD per 1M tokens)."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ValueError("prices must be a mapping of model id (or glob) -> {input: ..., output: ...} in USD per 1M tokens")
    prices = {}
    for model, price in values.items():
        where = f"prices.{model}"
        if not isinstance(price, Mapping):
            raise ValueError(f"{where} must be a mapping such as {{input: 0.15, output: 0.6}} (USD per 1M tokens)")
        unknown = set(price) - PRICE_FIELDS
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(PRICE_FIELDS))}")
        numbers = {}
        for name in PRICE_FIELDS:
            if name in price:
                value = price[name]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"{where}.{name} must be a number >= 0 (USD per 1M tokens), got {value!r}")
                numbers[name] = float(value)
        prices[str(model)] = Price(**numbers)
    return prices


def price_for(prices: Mapping[str, Price], *names: str | None) -> Price | None:
    """The price of the first name (requested id, then `provider/upstream`)
    that matches a `prices:` entry exactly, then by glob."""
    candidates = [name for name in names if name]
    for name in candidates:
        if name in prices:
            return prices[name]
    for name in candidates:
        for pattern, price in prices.items():
            if fnmatch.fnmatchcase(name, pattern):
                return price
    return None


def load_keys(entries: Any, api_keys: Iterable[str] = (), prices: Mapping[str, Price] | None = None) -> KeyRing:
    """Validate the `keys:` list (plus SWITCHBOARD_API_KEYS) at start-up."""
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise ValueError("keys must be a list of {name, key, models, rpm, tpm, max_concurrent, budget, admin} entries")
    policies = []
    for index, entry in enumerate(entries):
        policy, literal = parse_key(entry, index)
        if literal:
            log.warning("keys: %s is given as a literal key; store 'sha256:%s' instead "
                        "(python -m proxy.keys hash prints it)", policy.name, policy.digest)
        if policy.budget is not None and policy.budget.unit == "usd" and not prices:
            raise ValueError(f"keys[{index}] ({policy.name}): a budget in usd needs prices: per model in the config")
        policies.append(policy)
    policies.extend(unrestricted(token) for token in api_keys)
    return KeyRing(policies)


def keyring_of(settings) -> KeyRing:
    """The settings' keys (`keys:` plus SWITCHBOARD_API_KEYS), validated once
    and kept with the settings."""
    ring = settings.extra.get("_keyring")
    if ring is None:
        ring = settings.extra["_keyring"] = load_keys(settings.keys, settings.api_keys, parse_prices(settings.prices))
    return ring


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else ""
    if command == "new":
        name = argv[argv.index("--name") + 1] if "--name" in argv[:-1] else "my-app"
        token = "sk-sb-" + secrets.token_urlsafe(32)
        print(f"key (give it to the client; it is not stored anywhere): {token}")
        print("config entry:")
        print(f"  - name: {name}")
        print(f'    key: "{DIGEST_PREFIX}{digest(token)}"')
        return 0
    if command == "hash":
        token = sys.stdin.readline().strip()
        if not token:
            print("usage: echo -n <key> | python -m proxy.keys hash", file=sys.stderr)
            return 2
        print(f"{DIGEST_PREFIX}{digest(token)}")
        return 0
    print("usage: python -m proxy.keys new [--name NAME]   |   python -m proxy.keys hash < keyfile", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
