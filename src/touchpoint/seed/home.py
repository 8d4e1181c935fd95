"""Where `touchpoint demo` keeps what must survive a restart beside its SQLite file.

``<database file>.demo/`` holds the sandbox's saved world (people, chats, files, the update
counter) and ``events_secret``, the demo's generated HMAC key for the store events API. The
`touchpoint events send` command reads that file when TOUCHPOINT_EVENTS_SECRET is unset and the
database is the demo's, so the README's commands work against a running demo as written.
`make clean` (``rm -rf touchpoint.db*``) removes it with the database.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url

from touchpoint.config import Settings
from touchpoint.events_api.signing import demo_secret

EVENTS_SECRET_FILE = "events_secret"

# The demo's staff supergroup (a forum) and its staff member, as the sandbox's staff page
# proposes them; the demo creates both and points TOUCHPOINT_STAFF_CHAT_ID at the group.
DEMO_STAFF_CHAT_ID = -1001000000001
DEMO_STAFF_CHAT_TITLE = "Brewhaus staff"
DEMO_STAFF_USER_ID = 900001
DEMO_STAFF_USER_NAME = "Sam"


def demo_home(settings: Settings) -> Path | None:
    """``<database file>.demo`` for a SQLite file; None for PostgreSQL or an in-memory database."""
    if not settings.is_sqlite:
        return None
    database = make_url(settings.database_url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    return path.with_name(path.name + ".demo")


def demo_events_secret(settings: Settings, *, create: bool = False) -> str | None:
    """The demo's events secret: read from its home, or (``create``) generated and saved there.

    Without a home (in-memory database) a fresh secret is generated for this run only."""
    home = demo_home(settings)
    if home is None:
        return demo_secret() if create else None
    path = home / EVENTS_SECRET_FILE
    if path.exists():
        value = path.read_text("utf-8").strip()
        if value:
            return value
    if not create:
        return None
    home.mkdir(parents=True, exist_ok=True)
    value = demo_secret()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value
