"""The sandbox is a development part: production code never imports it, wheels leave it out, and
`touchpoint demo` says what to install when it is missing."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

IMPORT_EVERYTHING_BUT_THE_SANDBOX = """
import importlib, pkgutil, sys
SKIP = ("touchpoint.sandbox", "touchpoint.db.migrations.versions")
names = []

def walk(name):  # pkgutil.walk_packages would import the sandbox itself to look inside it
    module = importlib.import_module(name)
    names.append(name)
    for info in pkgutil.iter_modules(getattr(module, "__path__", []), name + "."):
        if not info.name.startswith(SKIP):
            walk(info.name)

walk("bot")
walk("touchpoint")
leaked = sorted(name for name in sys.modules if name.startswith("touchpoint.sandbox"))
print(len(names), leaked)
sys.exit(1 if leaked else 0)
"""

DEMO_WITHOUT_THE_SANDBOX = """
import asyncio, importlib.abc, sys

class NoSandbox(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "touchpoint.sandbox" or name.startswith("touchpoint.sandbox."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoSandbox())
from bot.runner import run_demo
from touchpoint.config import ConfigError, load_settings
try:
    asyncio.run(run_demo(load_settings(_env_file=None, database_url="sqlite+aiosqlite:///:memory:")))
except ConfigError as error:
    print(error)
    sys.exit(3)
"""


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_production_modules_never_import_the_sandbox() -> None:
    result = run_python(IMPORT_EVERYTHING_BUT_THE_SANDBOX)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("[]")


def test_the_demo_names_the_missing_sandbox() -> None:
    result = run_python(DEMO_WITHOUT_THE_SANDBOX)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "sandbox" in result.stdout and ".[dev]" in result.stdout


def test_wheels_and_the_image_leave_the_sandbox_out() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    assert "src/touchpoint/sandbox" in config["tool"]["hatch"]["build"]["targets"]["wheel"]["exclude"]
    assert "src/touchpoint/sandbox" in (REPO / ".dockerignore").read_text("utf-8").split()
    assert "pip install --quiet -e '.[dev]'" in (REPO / "Makefile").read_text("utf-8")
