"""`touchpoint faq ask` and `touchpoint faq eval` against the configured database, as an operator
runs them: the verdict with ranked candidates, and the eval's per-language figures and JSON line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_referrals_cli import touchpoint
from touchpoint.db import Database
from touchpoint.seed.demo import seed_demo

EVAL = """
en:
  - {q: "how long does delivery take", expect: delivery-time}
  - {q: "do you sell cars", expect: none}
  - {q: "sonicclean toothbrush", expect: [product:PC-001, product:PC-002]}
ru:
  - {q: "Сколько идёт доставка?", expect: delivery-time}
zh:
  - {q: "运费多少", expect: delivery-cost}
  - {q: "讲个笑话", expect: none}
"""


async def test_eval_prints_figures_per_language_and_one_json_line(
    sqlite_db: Database, tmp_path: Path,
) -> None:
    await seed_demo(sqlite_db)
    questions = tmp_path / "eval.yaml"
    questions.write_text(EVAL, "utf-8")
    code, output = await touchpoint(sqlite_db.url, "faq", "eval", str(questions))
    assert code == 0, output
    figures = json.loads(output.strip().splitlines()[-1])
    assert set(figures) == {"top1", "top3", "answered_right", "dont_know_rate", "false_answer_rate",
                            "p50_ms", "p99_ms"}
    for key in ("top1", "top3", "answered_right", "dont_know_rate"):
        assert set(figures[key]) == {"en", "ru", "zh"}
    assert figures["top1"] == {"en": 1.0, "ru": 1.0, "zh": 1.0}
    assert figures["false_answer_rate"] == 0.0
    assert isinstance(figures["p99_ms"], float)
    assert "false_answer_rate" in output.splitlines()[-2]  # the human-readable table comes first

    code, output = await touchpoint(sqlite_db.url, "faq", "eval", str(questions), "--json")
    assert code == 0 and len(output.strip().splitlines()) == 1


async def test_eval_refuses_a_malformed_file_with_the_place(sqlite_db: Database, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("en:\n  - {question: oops}\n", "utf-8")
    code, output = await touchpoint(sqlite_db.url, "faq", "eval", str(bad))
    assert code == 1 and "en #1" in output and "Traceback" not in output


async def test_ask_prints_the_verdict_and_ranked_candidates(sqlite_db: Database) -> None:
    await seed_demo(sqlite_db)
    code, output = await touchpoint(sqlite_db.url, "faq", "ask", "Сколько идёт доставка?", "--locale", "ru")
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].startswith("intent: answer") and "verdict: answer" in lines[0]
    assert lines[1].startswith("1. delivery-time") and "semantic" in lines[1]
    assert "Заказы, оформленные до 14:00" in output
