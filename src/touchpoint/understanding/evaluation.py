"""Scoring the understanding of labelled questions: `touchpoint faq eval` and bench/faq_quality.py.

The file format (tests/data/faq_eval.yaml): language → list of {q, expect}, where expect is a FAQ
id, ``product:SKU``, ``none`` (the honest answer is "I don't know"), or a list of acceptable ones.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import yaml

from touchpoint.understanding.matcher import Target
from touchpoint.understanding.service import QuestionIndex, Understanding

SILENT = ("none", "not_sold", "greeting", "thanks")  # the bot gives no FAQ or product answer


class EvalFileError(ValueError):
    """The eval file is not in the expected shape; the message says where."""


@dataclass(frozen=True, slots=True)
class Question:
    locale: str
    text: str
    expect: frozenset[str]

    @property
    def answerable(self) -> bool:
        return "none" not in self.expect


def parse_questions(text: str) -> list[Question]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise EvalFileError(f"not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise EvalFileError("expected a mapping of language → list of {q, expect}")
    questions = []
    for locale, items in raw.items():
        if not isinstance(items, list):
            raise EvalFileError(f"{locale}: expected a list of {{q, expect}}")
        for number, item in enumerate(items, 1):
            if not isinstance(item, dict) or not isinstance(item.get("q"), str) or "expect" not in item:
                raise EvalFileError(f"{locale} #{number}: expected {{q: text, expect: label}}")
            expect = item["expect"] if isinstance(item["expect"], list) else [item["expect"]]
            questions.append(Question(str(locale), item["q"], frozenset(str(e) for e in expect)))
    return questions


def label(target: Target) -> str:
    return target.id if target.kind == "faq" else f"{target.kind}:{target.id}"


def answered(understanding: Understanding) -> str | None:
    """The label the bot answers outright with (None: suggestions or "I don't know")."""
    match = understanding.match
    if understanding.intent in SILENT or match.verdict != "answer" or match.best is None:
        return None
    return label(match.best.target)


def evaluate(index: QuestionIndex, questions: list[Question], order_pattern: str) -> dict[str, Any]:
    per_locale: dict[str, dict[str, int]] = {}
    timings: list[float] = []
    false_answers = 0
    for question in questions:
        start = time.perf_counter()
        understanding = index.understand(question.text, order_pattern)
        timings.append((time.perf_counter() - start) * 1000)
        counts = per_locale.setdefault(question.locale, dict.fromkeys(
            ("answerable", "top1", "top3", "answered_right", "dont_know"), 0))
        answer = answered(understanding)
        if answer is not None and answer not in question.expect:
            false_answers += 1
        if not question.answerable:
            continue
        ranked = [label(hit.target) for hit in understanding.match.hits[:3]]
        counts["answerable"] += 1
        counts["top1"] += bool(ranked) and ranked[0] in question.expect
        counts["top3"] += bool(question.expect & set(ranked))
        counts["answered_right"] += answer is not None and answer in question.expect
        counts["dont_know"] += understanding.intent in ("none", "not_sold")
    timings.sort()

    def rate(key: str) -> dict[str, float]:
        return {locale: round(c[key] / max(c["answerable"], 1), 3) for locale, c in per_locale.items()}

    return {
        "questions": {locale: sum(1 for q in questions if q.locale == locale) for locale in per_locale},
        "top1": rate("top1"), "top3": rate("top3"), "answered_right": rate("answered_right"),
        "dont_know_rate": rate("dont_know"),
        "false_answer_rate": round(false_answers / max(len(questions), 1), 3),
        "p50_ms": round(statistics.median(timings), 2) if timings else 0.0,
        "p99_ms": round(timings[max(int(len(timings) * 0.99) - 1, 0)], 2) if timings else 0.0,
    }


def mistakes(index: QuestionIndex, questions: list[Question], order_pattern: str) -> list[str]:
    """One line per question the bot gets wrong (for tuning and for operators)."""
    lines = []
    for question in questions:
        understanding = index.understand(question.text, order_pattern)
        answer = answered(understanding)
        ranked = [f"{label(h.target)}={h.score}" for h in understanding.match.hits[:3]]
        right = (answer in question.expect) if answer else (not question.answerable
                                                            and understanding.intent in SILENT)
        if not right:
            lines.append(f"{question.locale} [{understanding.intent}] {question.text!r} "
                         f"expect={sorted(question.expect)} got={ranked}")
    return lines
