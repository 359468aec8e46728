"""The pure modules import neither flask nor requests (DESIGN: sans-IO codecs)."""
from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def pure_modules() -> list[str]:
    codecs = sorted(f"proxy.surfaces.{p.stem}" for p in (ROOT / "proxy" / "surfaces").glob("*_codec*")
                    if p.suffix == ".py" or (p / "__init__.py").exists())
    assert "proxy.surfaces.workbench_codec" in codecs
    return ["proxy.canonical", "proxy.errors", "proxy.sse", "proxy.surfaces.messages", *codecs]


def test_pure_modules_import_neither_flask_nor_requests():
    modules = pure_modules()
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'requests', 'werkzeug'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"pure modules pulled in: {result.stdout.strip()}"
