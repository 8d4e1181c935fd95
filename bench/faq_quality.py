"""FAQ matcher quality and latency, candidates side by side.

Runs the labelled questions in tests/data/faq_eval.yaml (en/ru/zh, typos, slang, "none"
questions) against the demo FAQ and catalogue, then times answers against the demo catalogue
and a generated 10,000-product catalogue.

    .venv/bin/python bench/faq_quality.py

The last line is one JSON object with the figures of the matcher Touchpoint ships.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from rapidfuzz import fuzz, process

from touchpoint.catalog import matcher as m
from touchpoint.seed.demo import load_demo_catalog, load_demo_faq

EVAL = Path(__file__).resolve().parents[1] / "tests" / "data" / "faq_eval.yaml"
LOCALES = ("en", "ru", "zh")


def demo_matcher(extra_products: int = 0) -> m.Matcher:
    matcher = m.Matcher()
    for entry in load_demo_faq():
        matcher.add(m.Target("faq", entry.id), [q for qs in entry.questions.values() for q in qs])
    for product in load_demo_catalog().products:
        matcher.add(m.Target("product", product.sku), [*product.name.model_dump().values(), product.sku])
    for sku, names in synthetic_products(extra_products):
        matcher.add(m.Target("product", sku), [*names, sku])
    return matcher.build()


def synthetic_products(count: int) -> list[tuple[str, list[str]]]:
    """Believable names: brand × kind × variant, in each language."""
    rng = random.Random(7)
    brands = ["Nordkaffe", "Velluto", "Aroma", "Kaffeeform", "Brio", "Crema", "Torino", "Lumo",
              "Stahl", "Vento", "Mokka", "Zeno", "Orso", "Falco", "Ardo", "Nimbus"]
    kinds = [("Espresso Machine", "кофемашина", "咖啡机"), ("Grinder", "кофемолка", "磨豆机"),
             ("Kettle", "чайник", "电水壶"), ("Mug", "кружка", "马克杯"), ("Blender", "блендер", "料理机"),
             ("Toaster", "тостер", "烤面包机"), ("Scale", "весы", "电子秤"), ("Tea", "чай", "茶叶"),
             ("Beans", "кофе в зёрнах", "咖啡豆"), ("Filter", "фильтр", "滤芯")]
    variants = ["Mini", "Max", "Pro", "Lite", "Plus", "Classic", "Go", "Duo", "S", "X"]
    products = []
    for i in range(count):
        brand, (en, ru, zh), variant = rng.choice(brands), rng.choice(kinds), rng.choice(variants)
        model = f"{variant} {i % 97}"
        products.append((f"SYN-{i:05d}", [f"{brand} {en} {model}", f"{ru} {brand} {model}",
                                          f"{brand} {model} {zh}"]))
    return products


def evaluate(rank: Callable[[str], list[m.Hit]], answers: Callable[[str], m.Match] | None,
             questions: dict[str, list[dict[str, str]]]) -> dict[str, Any]:
    top1: dict[str, float] = {}
    top3: dict[str, float] = {}
    none_total = none_answered = wrong_confident = confident = 0
    for locale in LOCALES:
        labelled = [q for q in questions[locale] if q["expect"] != "none"]
        hit1 = hit3 = 0
        for q in labelled:
            ids = [_label(h.target) for h in rank(q["q"])[:3]]
            hit1 += bool(ids) and ids[0] == q["expect"]
            hit3 += q["expect"] in ids
        top1[locale] = round(hit1 / len(labelled), 3)
        top3[locale] = round(hit3 / len(labelled), 3)
        if answers is None:
            continue
        for q in questions[locale]:
            match = answers(q["q"])
            if match.verdict != "answer":
                if q["expect"] == "none":
                    none_total += 1
                continue
            confident += 1
            best = match.best
            assert best is not None
            if q["expect"] == "none":
                none_total += 1
                none_answered += 1
            if _label(best.target) != q["expect"]:
                wrong_confident += 1
    figures: dict[str, Any] = {"top1": top1, "top3": top3}
    if answers is not None:
        figures["false_answer_rate"] = round(none_answered / max(none_total, 1), 3)
        figures["wrong_confident_rate"] = round(wrong_confident / max(confident, 1), 3)
        figures["answered_share"] = round(confident / sum(len(questions[lc]) for lc in LOCALES), 3)
    return figures


def _label(target: m.Target) -> str:
    return target.id if target.kind == "faq" else f"product:{target.id}"


def scorer_ranker(matcher: m.Matcher, scorer: Any) -> Callable[[str], list[m.Hit]]:
    def rank(text: str) -> list[m.Hit]:
        query = m.normalize(text)
        best: dict[m.Target, float] = {}
        for _, score, i in process.extract(query, matcher.phrasings, scorer=scorer, limit=60):
            best[matcher.targets[i]] = max(best.get(matcher.targets[i], 0), score)
        return [m.Hit(t, s) for t, s in sorted(best.items(), key=lambda x: -x[1])[:3]]
    return rank


def bm25_ranker(matcher: m.Matcher) -> Callable[[str], list[m.Hit]]:
    import bm25s

    retriever = bm25s.BM25()
    retriever.index([m.ngrams(p) for p in matcher.phrasings], show_progress=False)

    def rank(text: str) -> list[m.Hit]:
        tokens = m.ngrams(m.normalize(text))
        if not tokens:
            return []
        docs, scores = retriever.retrieve([tokens], k=30, show_progress=False, n_threads=1)
        best: dict[m.Target, float] = {}
        for i, score in zip(docs[0], scores[0], strict=True):
            target = matcher.targets[int(i)]
            best[target] = max(best.get(target, 0.0), float(score))
        return [m.Hit(t, s) for t, s in sorted(best.items(), key=lambda x: -x[1])[:3]]
    return rank


def latency(matcher: m.Matcher, texts: list[str]) -> tuple[float, float]:
    for text in texts[:5]:
        matcher.match(text)  # warm-up
    timings = []
    for _ in range(3):
        for text in texts:
            start = time.perf_counter()
            matcher.match(text)
            timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    return round(statistics.median(timings), 2), round(timings[int(len(timings) * 0.99) - 1], 2)


def main() -> None:
    questions = yaml.safe_load(EVAL.read_text("utf-8"))
    counts = {locale: len(questions[locale]) for locale in LOCALES}
    print(f"evaluation set: {counts} questions")
    demo = demo_matcher()
    candidates: dict[str, tuple[Callable[[str], list[m.Hit]], Callable[[str], m.Match] | None]] = {
        "token_set+ratio, fillers (shipped)": (demo.rank, demo.match),
        "rapidfuzz WRatio": (scorer_ranker(demo, fuzz.WRatio), None),
        "rapidfuzz token_set_ratio": (scorer_ranker(demo, fuzz.token_set_ratio), None),
        "rapidfuzz partial_ratio": (scorer_ranker(demo, fuzz.partial_ratio), None),
        "bm25s char n-grams": (bm25_ranker(demo), None),
    }
    print(f"{'method':36} {'top1 en/ru/zh':22} {'top3 en/ru/zh':22} false-answer")
    shipped: dict[str, Any] = {}
    for name, (rank, answers) in candidates.items():
        figures = evaluate(rank, answers, questions)
        shipped = shipped or figures
        t1 = "/".join(f"{figures['top1'][lc]:.2f}" for lc in LOCALES)
        t3 = "/".join(f"{figures['top3'][lc]:.2f}" for lc in LOCALES)
        print(f"{name:36} {t1:22} {t3:22} {figures.get('false_answer_rate', '-')}")
    print(f"shipped matcher: answers {shipped['answered_share']:.0%} of questions outright "
          f"(the rest get suggestions or an honest miss); wrong confident answers "
          f"{shipped['wrong_confident_rate']:.1%}")

    texts = [q["q"] for locale in LOCALES for q in questions[locale]]
    p50_demo, p99_demo = latency(demo, texts)
    big = demo_matcher(10_000)
    p50_big, p99_big = latency(big, texts)
    big_all = evaluate(big.rank, big.match, questions)
    print(f"latency demo catalogue ({len(demo.phrasings)} phrasings): p50 {p50_demo} ms, p99 {p99_demo} ms")
    print(f"latency 10k products ({len(big.phrasings)} phrasings, bm25s prefilter): "
          f"p50 {p50_big} ms, p99 {p99_big} ms ({p99_big / max(p99_demo, 0.01):.1f}x demo)")
    print(f"top1 with 10k products: {big_all['top1']}, false-answer {big_all['false_answer_rate']}")
    print(json.dumps({"top1": shipped["top1"], "top3": shipped["top3"],
                      "false_answer_rate": shipped["false_answer_rate"],
                      "p50_ms_10k": p50_big, "p99_ms_10k": p99_big}))


if __name__ == "__main__":
    main()
