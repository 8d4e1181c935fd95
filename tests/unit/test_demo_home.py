"""Where the demo keeps its state and generated events secret, beside its SQLite file."""

from __future__ import annotations

import stat
from pathlib import Path

from touchpoint.config import load_settings
from touchpoint.seed.home import demo_events_secret, demo_home


def test_home_sits_beside_the_sqlite_file(tmp_path: Path) -> None:
    settings = load_settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/shop.db")
    assert demo_home(settings) == tmp_path / "shop.db.demo"
    relative = load_settings(_env_file=None, database_url="sqlite+aiosqlite:///./touchpoint.db")
    assert demo_home(relative) == Path("touchpoint.db.demo")
    for url in ("sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:", "postgresql+asyncpg://u@h/db"):
        assert demo_home(load_settings(_env_file=None, database_url=url)) is None


def test_the_secret_is_generated_once_strong_and_private(tmp_path: Path) -> None:
    settings = load_settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/shop.db")
    assert demo_events_secret(settings) is None  # reading never creates
    secret = demo_events_secret(settings, create=True)
    assert secret is not None and len(secret) == 64
    path = tmp_path / "shop.db.demo" / "events_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert demo_events_secret(settings) == secret == demo_events_secret(settings, create=True)
    in_memory = load_settings(_env_file=None, database_url="sqlite+aiosqlite://")
    assert demo_events_secret(in_memory) is None
    assert len(demo_events_secret(in_memory, create=True) or "") == 64
