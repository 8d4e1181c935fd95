"""journeys.yaml: the shipped defaults are valid; mistakes are named by file, line and field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from touchpoint.journeys.spec import (
    DEFAULT_JOURNEYS_FILE,
    Filter,
    JourneyFileError,
    load_journeys,
    parse_duration,
)
from touchpoint.messaging.templates import known_templates
from touchpoint.wiring import load_all_templates

BAD = """\
journeys:
  - key: abandoned_cart
    category: marketing
    holdout: 80
    trigger:
      event: cart.updated
      where:
        - {field: value_minor, op: greater, value: 1000}
    steps:
      - wait: 1 hour
        send: journey.cart_reminder
  - key: second
    category: service
    trigger: {scan: inactive}
"""


def test_defaults_are_valid_and_use_known_templates() -> None:
    load_all_templates()
    parsed = load_journeys(DEFAULT_JOURNEYS_FILE, known_templates=known_templates())
    assert {j.key for j in parsed.journeys} == {
        "abandoned_cart", "browse_abandonment", "post_delivery_checkin", "replenishment",
        "back_in_stock", "win_back", "reservation_expiring", "ticket_followup",
    }


def test_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "journeys.yaml"
    path.write_text(BAD)
    with pytest.raises(JourneyFileError) as caught:
        load_journeys(path)
    assert caught.value.problems == [
        f"{path}:4: journeys.0.holdout: Input should be less than or equal to 50",
        f"{path}:8: journeys.0.trigger.where.0.op: Input should be 'eq', 'ne', 'gt', 'gte', 'lt', "
        "'lte', 'in' or 'exists'",
        f"{path}:10: journeys.0.steps.0.wait: must be a duration such as 30m, 1h, 2d or 1w",
        f"{path}:12: journeys.1.steps: Field required",
    ]


def test_unknown_template_and_broken_yaml(tmp_path: Path) -> None:
    path = tmp_path / "j.yaml"
    path.write_text("journeys:\n  - key: a\n    category: service\n    trigger: {event: x}\n"
                    "    steps:\n      - send: no.such.template\n")
    with pytest.raises(JourneyFileError, match=r"j.yaml:6: journeys.0.steps.0.send: unknown template"):
        load_journeys(path, known_templates={"journey.checkin"})
    path.write_text("journeys:\n  - key: [\n")
    with pytest.raises(JourneyFileError, match=r"j.yaml:3: not valid YAML"):
        load_journeys(path)


def test_check_command(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["journeys", "check", str(DEFAULT_JOURNEYS_FILE)])
    assert ok.exit_code == 0 and ok.output.startswith("ok: 8 journeys")
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    bad = runner.invoke(app, ["journeys", "check", str(path)])
    assert bad.exit_code == 1
    assert f"{path}:4: journeys.0.holdout" in bad.output


@pytest.mark.parametrize(("raw", "expected"), [("30s", timedelta(seconds=30)), ("15m", timedelta(minutes=15)),
                                               ("2d", timedelta(days=2)), ("1w", timedelta(weeks=1)),
                                               (90, timedelta(seconds=90))])
def test_durations(raw: object, expected: timedelta) -> None:
    assert parse_duration(raw) == expected


def test_filters() -> None:
    payload = {"value_minor": 2500, "status": "delivered", "sku": None}
    assert Filter(field="value_minor", op="gte", value=2500).matches(payload)
    assert not Filter(field="value_minor", op="gt", value=2500).matches(payload)
    assert Filter(field="status", op="in", value=["delivered", "picked_up"]).matches(payload)
    assert not Filter(field="sku", op="exists").matches(payload)
    assert not Filter(field="status", op="gt", value=3).matches(payload)  # wrong type: no match


def test_holdout_is_stable_and_close_to_its_share() -> None:
    load_all_templates()
    journey = next(j for j in load_journeys().journeys if j.key == "win_back")  # 20 % holdout
    first = [journey.held_out(i) for i in range(10_000)]
    assert first == [journey.held_out(i) for i in range(10_000)]
    assert 0.18 < sum(first) / len(first) < 0.22
    other = next(j for j in load_journeys().journeys if j.key == "replenishment")
    assert [other.held_out(i) for i in range(200)] != [journey.held_out(i) for i in range(200)]


def test_bad_file_stops_start_up_naming_it(tmp_path: Path) -> None:
    from touchpoint.config import ConfigError, load_settings
    from touchpoint.journeys import engine

    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    engine.configure(None)
    try:
        with pytest.raises(ConfigError, match=rf"{path}:4: journeys.0.holdout"):
            engine.get_engine(load_settings(_env_file=None, journeys_file=path))
    finally:
        engine.configure(None)
