"""The messaging layer sits below the capabilities: it imports none of them, and capabilities
register their contact vetoes instead of being imported by the rules."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import touchpoint
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.messaging import rules
from touchpoint.wiring import load_all_templates

LAYER = Path(touchpoint.__file__).parent / "messaging"
# What messaging may use: itself, customers, db and the small shared modules at the top.
ALLOWED = {"messaging", "customers", "db", "clock", "config", "checks", "i18n", "markup"}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at module level?) for every ``touchpoint.*`` import in ``path``."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("touchpoint"):
            found.append((node.module, id(node) in top_level))
    return found


def test_messaging_imports_no_capability_and_nothing_inside_functions() -> None:
    for path in LAYER.glob("*.py"):
        for module, at_top in _imports(path):
            assert module.split(".")[1] in ALLOWED, f"{path.name} imports {module}"
            assert at_top, f"{path.name} imports {module} inside a function"


def test_capabilities_register_their_vetoes() -> None:
    load_all_templates()
    names = [veto.name for veto in rules.registered_vetoes()]
    assert names[:2] == ["open_service_case", "active_handoff"]


async def test_a_registered_veto_silences_marketing_only() -> None:
    async def everyone(_session: object, ids: set[int]) -> set[int]:
        return set(ids)

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    customer = Customer(id=7, telegram_id=7, marketing_consent=True, timezone="UTC")
    rules.register_veto("zz_test_veto", everyone, rank=1)
    try:
        at = datetime(2026, 6, 1, 12, tzinfo=UTC)
        marketing = rules.ContactQuestion(customer, rules.Lane.MARKETING, "m")
        service = rules.ContactQuestion(customer, rules.Lane.SERVICE, "s")

        class NoRows:
            async def exec(self, _query: object) -> NoRows:
                return self

            def all(self) -> list[object]:
                return []

        verdicts = await rules.check_contacts(NoRows(), settings, [marketing, service], at)  # type: ignore[arg-type]
        assert [(v.action, v.reason) for v in verdicts] == [("skip", "zz_test_veto"), ("send", None)]
    finally:
        rules._VETOES.pop("zz_test_veto", None)
