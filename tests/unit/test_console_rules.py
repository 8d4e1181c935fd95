"""Pure pieces of the console: password hashing, uplift, SVG charts, campaigns."""

from __future__ import annotations

from touchpoint.console import charts
from touchpoint.console.passwords import hash_password, verify_password
from touchpoint.console.queries import JourneyNumbers
from touchpoint.console.templates import campaign
from touchpoint.i18n import get_translator
from touchpoint.journeys.templates import UNSUBSCRIBE


def test_passwords_are_argon2_hashes_and_verify() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$") and "correct horse" not in hashed
    assert verify_password(hashed, "correct horse")
    assert not verify_password(hashed, "wrong horse")
    assert not verify_password(None, "correct horse")
    assert not verify_password("not a hash", "correct horse")


def test_uplift_is_messaged_conversion_minus_holdout_conversion() -> None:
    numbers = JourneyNumbers("cart", enrolled=110, holdout=10, converted=20, holdout_converted=1)
    assert numbers.conversion == 0.2 and numbers.holdout_conversion == 0.1
    assert numbers.uplift_points == 10.0
    assert JourneyNumbers("new", enrolled=5).uplift_points is None  # no holdout, no claim


def test_funnel_chart_labels_counts_and_escapes() -> None:
    svg = str(charts.funnel([("new", 10), ("engaged <b>", 5), ("purchased", 0)]))
    assert svg.startswith("<svg") and "<title>Customer journey funnel</title>" in svg
    assert "10 · 100%" in svg and "5 · 50%" in svg and "0 · 0%" in svg
    assert "<b>" not in svg and "engaged &lt;b&gt;" in svg


def test_line_chart_leaves_gaps_for_weeks_without_data() -> None:
    svg = str(charts.line([("w1", 4.0), ("w2", None), ("w3", 5.0), ("w4", 4.5)], "CSAT"))
    assert svg.count("<circle") == 3 and svg.count("<polyline") == 1
    assert "w2: —" in svg  # a week without ratings: no English words in the description


def test_a_console_campaign_ends_with_the_unsubscribe_button_in_the_customers_language() -> None:
    translate = get_translator()
    rendered = campaign(translate, "ru", {"texts": {"en": "Sale <today>", "ru": "Распродажа <сегодня>"}})
    assert rendered.text == "Распродажа &lt;сегодня&gt;"
    [last] = rendered.buttons[-1]
    assert (last.text, last.callback_data) == (translate("ru", "journey.button.unsubscribe"), UNSUBSCRIBE)
