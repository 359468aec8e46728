"""Configuration: defaults, then the YAML file named by SWITCHBOARD_CONFIG,
then environment variables, then the mapping given to create_app().

Read once by create_app(); everything downstream receives a `Settings`.
Zero configuration works: the demo models answer and state goes to SQLite.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import yaml


@dataclass(slots=True)
class ProviderSettings:
    """Credentials and endpoint of one upstream vendor (or one named server)."""

    api_key: str | None = None
    base_url: str | None = None
    key_variable: str | None = None  # the environment variable to name in errors
    options: dict[str, Any] = field(default_factory=dict)


# setting -> (environment variable, parser)
ENVIRONMENT = {
    "default_model": ("SWITCHBOARD_DEFAULT_MODEL", str),
    "cors_origins": ("SWITCHBOARD_CORS_ORIGINS", lambda v: [o.strip() for o in v.split(",") if o.strip()]),
    "heartbeat_seconds": ("SWITCHBOARD_HEARTBEAT_SECONDS", float),
    "max_body_bytes": ("SWITCHBOARD_MAX_BODY_BYTES", int),
    "demo_delay": ("SWITCHBOARD_DEMO_DELAY", float),
    "api_keys": ("SWITCHBOARD_API_KEYS", lambda v: [k.strip() for k in v.split(",") if k.strip()]),
    "connect_timeout": ("SWITCHBOARD_CONNECT_TIMEOUT", float),
    "idle_timeout": ("SWITCHBOARD_IDLE_TIMEOUT", float),
    "total_timeout": ("SWITCHBOARD_TOTAL_TIMEOUT", float),
    "first_byte_timeout": ("SWITCHBOARD_FIRST_BYTE_TIMEOUT", float),
    "max_retries": ("SWITCHBOARD_MAX_RETRIES", int),
    "retry_base_delay": ("SWITCHBOARD_RETRY_BASE_DELAY", float),
    "socketio_ping_interval": ("SWITCHBOARD_SOCKETIO_PING_INTERVAL", float),
    "socketio_ping_timeout": ("SWITCHBOARD_SOCKETIO_PING_TIMEOUT", float),
    "redis_url": ("REDIS_URL", str),
    "database_path": ("SWITCHBOARD_DATABASE", str),
    "redis_prefix": ("SWITCHBOARD_REDIS_PREFIX", str),
    "debug_headers": ("SWITCHBOARD_DEBUG_HEADERS", lambda v: v.lower() in ("1", "true", "yes", "on")),
    "fetch_private_urls": ("SWITCHBOARD_FETCH_PRIVATE_URLS", lambda v: v.lower() in ("1", "true", "yes", "on")),
    "metrics": ("SWITCHBOARD_METRICS", lambda v: v.strip().lower()),
    "public_url": ("SWITCHBOARD_PUBLIC_URL", str),
    "public_models": ("SWITCHBOARD_PUBLIC_MODELS", lambda v: v.lower() in ("1", "true", "yes", "on")),
    "cors_private_network": ("SWITCHBOARD_CORS_PRIVATE_NETWORK", lambda v: v.lower() in ("1", "true", "yes", "on")),
    "resume_grace_seconds": ("SWITCHBOARD_RESUME_GRACE_SECONDS", float),
}


@dataclass(slots=True)
class Settings:
    default_model: str = "mock"
    cors_origins: list[str] = field(default_factory=lambda: ["*"])
    heartbeat_seconds: float = 15.0
    # base64 images make chat requests large; also the Socket.IO message limit
    max_body_bytes: int = 20 * 1024 * 1024
    # multiplies the demo models' pauses: 0 streams instantly (tests), 1 is real pace
    demo_delay: float = 1.0
    api_keys: list[str] = field(default_factory=list)
    connect_timeout: float = 10.0
    idle_timeout: float = 120.0
    total_timeout: float = 900.0
    # The first content of a streamed answer must come within this many
    # seconds of the request, across every retry and fallback (0: no
    # deadline): without it each retry would wait a whole idle timeout again.
    # (An unstreamed answer comes whole: total_timeout bounds its attempts.)
    first_byte_timeout: float = 60.0
    max_retries: int = 2
    # first back-off pause in seconds; doubles per retry, with jitter (router retries)
    retry_base_delay: float = 0.5
    # Engine.IO heartbeat: the server pings every interval and drops a client
    # that has not answered within the timeout, cancelling its chats. A
    # vanished long-polling client is noticed only this way; python-engineio's
    # 25 + 20 s let its upstream generate (and bill) for ~45 s.
    socketio_ping_interval: float = 10.0
    socketio_ping_timeout: float = 10.0
    redis_url: str | None = None
    database_path: str | None = None
    # namespaces every Redis key and the Socket.IO channel (several deployments or test runs may share one Redis)
    redis_prefix: str = "switchboard"
    # adds X-Switchboard-Worker (the worker pid) to store endpoint responses
    debug_headers: bool = False
    # Image URLs a provider must download itself (Gemini) may point at this
    # server's own network: refused unless deliberately allowed.
    fetch_private_urls: bool = False
    # GET /metrics: "admin" (an admin key once keys are configured), "open" or "off"
    metrics: str = "admin"
    # client keys with their models and limits, prices per model, and the
    # limits / usage sections (proxy/keys.py, limits.py, usage.py)
    keys: list[dict[str, Any]] = field(default_factory=list)
    prices: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    # How clients reach this server (https://llm.example.com): links the demo
    # models serve are absolute under it; unset, they are data: URLs (the
    # Host header a client sends is never reflected into an answer).
    public_url: str | None = None
    # /v1/models answers without a key even when API keys are configured
    public_models: bool = False
    # answer browsers' Private Network Access preflights (a public page
    # calling this server on a private address) with allow: off by default
    cors_private_network: bool = False
    # how long a UI chat reply keeps running after its client left with nobody
    # resuming it (0: a departed client stops the upstream at once)
    resume_grace_seconds: float = 0.0
    providers: dict[str, ProviderSettings] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # YAML sections other modules read

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> "Settings":
        environ = os.environ if environ is None else environ
        settings = cls()
        known = {f.name for f in fields(cls)}
        path = (overrides or {}).get("config_file") or environ.get("SWITCHBOARD_CONFIG")
        file_values = read_config_file(path) if path else {}
        for name, value in file_values.items():
            if name in known:
                setattr(settings, name, value)
            else:
                settings.extra[name] = value
        for name, (variable, parse) in ENVIRONMENT.items():
            if environ.get(variable):
                setattr(settings, name, parse(environ[variable]))
        settings.providers = providers_from(environ, file_values.get("providers") or {})
        for name, value in (overrides or {}).items():
            if name == "config_file":
                continue
            if name not in known:
                raise ValueError(f"unknown setting {name!r}")
            setattr(settings, name, value)
        return settings


def settings_from_app_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A host app's `app.config` SWITCHBOARD_* keys as setting overrides.

    The keys are the environment variables' names (SWITCHBOARD_API_KEYS,
    SWITCHBOARD_DEFAULT_MODEL, SWITCHBOARD_CONFIG for the YAML file, ...) or
    SWITCHBOARD_<SETTING> for any other setting (SWITCHBOARD_PROVIDERS,
    SWITCHBOARD_MODELS); values may be native (a list) or text as in the environment.
    """
    by_variable = {variable: (name, parse) for name, (variable, parse) in ENVIRONMENT.items()}
    known = {f.name for f in fields(Settings)}
    overrides: dict[str, Any] = {}
    for key, value in config.items():
        if not key.startswith("SWITCHBOARD_"):
            continue
        if key == "SWITCHBOARD_CONFIG":
            overrides["config_file"] = value
        elif key in by_variable:
            name, parse = by_variable[key]
            overrides[name] = parse(value) if isinstance(value, str) else value
        elif key[len("SWITCHBOARD_"):].lower() in known:
            overrides[key[len("SWITCHBOARD_"):].lower()] = value
        else:
            raise ValueError(f"app.config[{key!r}] is not a Switchboard setting (see proxy/config.py)")
    return overrides


def provider_environment() -> dict[str, tuple[tuple[str, ...], str | None, Mapping[str, str]]]:
    """vendor -> (key variables, base URL variable, {option: variable}), as
    each provider class declares them (providers/base.py): no central table."""
    from .providers import provider_classes  # imports the provider classes: only when settings load

    return {name: (cls.key_variables, cls.base_url_variable, dict(cls.settings_read))
            for name, cls in provider_classes().items()}


def providers_from(environ: Mapping[str, str], declared: Mapping[str, Any]) -> dict[str, ProviderSettings]:
    """Vendor credentials: from the environment, overridable per vendor in YAML."""
    providers: dict[str, ProviderSettings] = {}
    for vendor, (key_variables, url_variable, settings_read) in provider_environment().items():
        if not key_variables and not url_variable and not settings_read:
            continue
        # the first variable that is set; errors name the first one when none is
        key_variable = next((v for v in key_variables if environ.get(v)), key_variables[0] if key_variables else None)
        current = providers[vendor] = ProviderSettings(
            environ.get(key_variable) if key_variable else None,
            environ.get(url_variable) if url_variable else None,
            key_variable,
        )
        for option, variable in settings_read.items():
            if environ.get(variable):
                current.options[option] = environ[variable]
    for vendor, values in declared.items():
        current = providers.setdefault(vendor, ProviderSettings())
        if not isinstance(values, Mapping) and values is not None:
            raise ValueError(f"providers: {vendor}: must be a mapping such as {{api_key_env: VAR, base_url: URL}}")
        values = dict(values or {})
        key_variable = values.pop("api_key_env", None)
        if key_variable:
            current.key_variable = key_variable
            current.api_key = environ.get(key_variable)
        current.api_key = values.pop("api_key", current.api_key)
        current.base_url = values.pop("base_url", current.base_url)
        current.options.update(values)
    return providers


def read_config_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle) or {}
    except FileNotFoundError:
        raise ValueError(f"SWITCHBOARD_CONFIG names {path!r}, which does not exist") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path!r} must hold a YAML mapping at the top level")
    return values
