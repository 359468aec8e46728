"""The pure modules import neither flask nor requests (DESIGN: sans-IO codecs).

Every module under proxy.canonical, proxy.surfaces (the codecs) and
proxy.providers (request builders, decoders) is enumerated with
pkgutil.walk_packages, sub-packages included, and imported in a fresh
interpreter; only the IO modules listed below are skipped, by name, so a new
module is checked unless it is deliberately added to the list.
"""
from __future__ import annotations

import importlib
import pathlib
import pkgutil
import subprocess
import sys

import pytest

# The per-module check re-imports every pure module in another interpreter and
# takes seconds of CPU: e2e. The two quick checks also run in make test-fast.
pytestmark = pytest.mark.e2e

ROOT = pathlib.Path(__file__).resolve().parent.parent
FORBIDDEN = ("flask", "requests", "werkzeug", "urllib3", "flask_socketio", "gevent")

# The modules that do IO (HTTP, sockets, Flask glue), each here on purpose.
IO_MODULES = {
    "proxy.providers.http",
    "proxy.providers.openai.provider",
    "proxy.providers.anthropic.provider",
    "proxy.providers.gemini.provider",
    "proxy.providers.coze.provider",
    "proxy.providers.coze.client",
    "proxy.surfaces.socket_json",
    "proxy.surfaces.common",
    "proxy.surfaces.conversations",
    "proxy.surfaces.coze_routes",
    "proxy.surfaces.models",
    "proxy.surfaces.openai_chat",
    "proxy.surfaces.responses",
    "proxy.surfaces.responses_ws",
    "proxy.surfaces.socket_chat",
    "proxy.surfaces.ui_chat",
    "proxy.surfaces.workbench",
    "proxy.surfaces.operations",
    "proxy.surfaces.usage",
    "proxy.surfaces.playground",
    "proxy.surfaces.api_docs",
}
# Packages whose modules are all pure, walked whole.
PURE_PACKAGES = ("proxy.canonical", "proxy.surfaces", "proxy.providers")
PURE_MODULES = ("proxy.errors", "proxy.sse", "proxy.config", "proxy.keys", "proxy.auth")


def walk(package_name: str) -> list[str]:
    package = importlib.import_module(package_name)
    names = [package_name]
    for info in pkgutil.walk_packages(package.__path__, prefix=package_name + "."):
        names.append(info.name)
    return names


def pure_modules() -> list[str]:
    modules = [name for package in PURE_PACKAGES for name in walk(package) if name not in IO_MODULES]
    return sorted(set(modules) | set(PURE_MODULES))


@pytest.mark.unit
def test_the_walk_finds_every_codec_surface_codec_and_provider_module():
    modules = pure_modules()
    for expected in ("proxy.surfaces.workbench_codec", "proxy.surfaces.openai_chat_codec.decode",
                     "proxy.surfaces.openai_chat_codec.thinking_blocks", "proxy.providers.anthropic.request",
                     "proxy.providers.anthropic.stream", "proxy.providers.openai.decode",
                     "proxy.providers.gemini.schema", "proxy.providers.gemini.decode", "proxy.providers.base",
                     "proxy.providers", "proxy.canonical.opaque"):
        assert expected in modules
    every = {name for package in PURE_PACKAGES for name in walk(package)}
    assert IO_MODULES <= every, f"IO_MODULES names modules that do not exist: {IO_MODULES - every}"


@pytest.mark.unit
def test_pure_modules_import_neither_flask_nor_requests():
    modules = pure_modules()
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"pure modules pulled in: {result.stdout.strip()}"


def test_each_pure_module_alone_pulls_in_no_io():
    """One interpreter per module would be slow: import each after clearing what the others loaded."""
    modules = pure_modules()
    script = (
        "import importlib, sys\n"
        "base = set(sys.modules)\n"
        "bad = []\n"
        f"for name in {modules!r}:\n"
        "    for loaded in [m for m in sys.modules if m not in base]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
        f"    if any(m.split('.')[0] in {FORBIDDEN!r} for m in sys.modules):\n"
        "        bad.append(name)\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"these modules pull in IO: {result.stdout.strip()}"
