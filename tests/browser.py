"""Headless Chromium for the browser tests, driven by Playwright's Python
library with the system browser (Debian's `chromium`), never a downloaded
browser build.

    with chromium() as browser: page = browser.new_page(...)

Finds the browser on PATH (or $SWITCHBOARD_CHROMIUM); when it is missing and
we are root on Debian, installs it with apt-get (what `make test` also does);
otherwise the test is skipped with a message saying how to install it.
Screenshots go to tests/artifacts/ (gitignored).
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import subprocess
from typing import Iterator

import pytest

ARTIFACTS = pathlib.Path(__file__).parent / "artifacts"
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _find() -> str | None:
    explicit = os.environ.get("SWITCHBOARD_CHROMIUM")
    if explicit:
        return explicit
    return next((path for path in map(shutil.which, NAMES) if path), None)


def _install() -> str:
    """apt-get install chromium, or the reason it cannot be done here."""
    if not shutil.which("apt-get"):
        return "apt-get is not available"
    if os.geteuid() != 0:
        return "installing it needs root (run: sudo apt-get install -y chromium)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            return f"{' '.join(command)} failed: {result.stderr.strip()[-400:]}"
    return ""


def chromium_path() -> str:
    path = _find()
    if path is None:
        problem = _install()
        path = _find()
        if path is None:
            pytest.skip(f"browser tests need Chromium and it could not be installed: {problem or 'not found after install'}")
    return path


@contextlib.contextmanager
def chromium() -> Iterator:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need the playwright package: pip install -r requirements-dev.txt")
    executable = chromium_path()
    with sync_playwright() as playwright:
        # --no-sandbox: CI and these machines run as root, where Chromium's sandbox refuses to start
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page, name: str) -> pathlib.Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
