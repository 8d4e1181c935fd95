"""Async engine, session factory and migrations."""

from touchpoint.db.engine import Database
from touchpoint.db.migrate import upgrade_database

__all__ = ["Database", "upgrade_database"]
