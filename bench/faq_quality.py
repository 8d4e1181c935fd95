"""Understanding customers' questions: quality and latency, the shipped scorer beside the fuzzy one.

Scores tests/data/faq_eval.yaml (questions written as customers ask, without looking at the FAQ)
against the demo FAQ and catalogue with exactly the bot's index and thresholds, then times
questions and an index rebuild against a generated 10,000-product catalogue: the rebuild runs in
a worker thread while the event loop's longest stall is measured, and resident memory is read
before and after.

    .venv/bin/python bench/faq_quality.py

The last line is one JSON object with the figures (keys as `touchpoint faq eval` prints them).
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import time
from pathlib import Path
from typing import Any

from touchpoint.seed.demo import load_demo_catalog, load_demo_faq
from touchpoint.understanding import intents
from touchpoint.understanding.embeddings import warm_up
from touchpoint.understanding.evaluation import evaluate, parse_questions
from touchpoint.understanding.service import CatalogSnapshot, QuestionIndex, sentences

EVAL = Path(__file__).resolve().parents[1] / "tests" / "data" / "faq_eval.yaml"
PATTERN = r"^[A-Z]{2,4}-?\d{4,10}$"
LOCALES = ("en", "ru", "zh")


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def snapshot(extra_products: int = 0) -> CatalogSnapshot:
    demo = CatalogSnapshot()
    for entry in load_demo_faq():
        demo.faq.append((entry.id, [q for qs in entry.questions.values() for q in qs], list(entry.tags)))
        demo.answers[entry.id] = sentences(entry.answer.model_dump().values())
    catalog = load_demo_catalog()
    demo.products = [(p.sku, list(p.name.model_dump().values())) for p in catalog.products]
    demo.products += synthetic_products(extra_products)
    demo.categories = [(c.id, list(c.name.model_dump().values())) for c in catalog.categories]
    demo.stores = [intents.StoreName(s.id, tuple(s.name.model_dump().values()),
                                     tuple(s.address.model_dump().values())) for s in catalog.stores]
    return demo


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
        names = [f"{brand} {en} {model}", f"{ru} {brand} {model}", f"{brand} {model} {zh}"]
        products.append((f"SYN-{i:05d}", names))
    return products


async def rebuild_stall_ms(source: CatalogSnapshot) -> tuple[float, float, QuestionIndex]:
    """Build the index in a worker thread (as the bot does) while a 1 ms ticker runs on the loop:
    the longest gap between ticks is how long the loop was blocked."""
    done = False
    worst = 0.0

    async def ticker() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst = max(worst, now - last)
            last = now

    task = asyncio.create_task(ticker())
    start = time.perf_counter()
    index = await asyncio.to_thread(QuestionIndex.build, source)
    seconds = time.perf_counter() - start
    done = True
    await task
    return round(worst * 1000, 1), round(seconds, 2), index


def line(name: str, figures: dict[str, Any]) -> str:
    per = "  ".join(f"{key} " + "/".join(f"{figures[key][lc]:.2f}" for lc in LOCALES)
                    for key in ("top1", "top3", "answered_right", "dont_know_rate"))
    return f"{name:28} {per}  false {figures['false_answer_rate']:.3f}"


def main() -> None:
    questions = parse_questions(EVAL.read_text("utf-8"))
    counts = {lc: sum(q.locale == lc for q in questions) for lc in LOCALES}
    print(f"eval set: {counts} questions (en/ru/zh)")
    big_source = snapshot(10_000)
    base_rss = rss_mb()
    warm_up()
    model_rss = rss_mb()
    first_stall_ms, first_s, big = asyncio.run(rebuild_stall_ms(big_source))  # at start-up
    grown = rss_mb() - base_rss  # the model and the index the bot answers from
    big_source.faq[0][1].append("a phrasing added in the console")  # what changed: one phrasing
    stall_ms, build_s, rebuilt = asyncio.run(rebuild_stall_ms(big_source))  # the old one answers meanwhile
    peak = rss_mb() - base_rss
    big = rebuilt
    demo = snapshot()
    shipped = evaluate(QuestionIndex.build(demo), questions, PATTERN)
    fuzzy_only = evaluate(QuestionIndex.build(demo, semantic=False), questions, PATTERN)
    print(line("fuzzy only (before)", fuzzy_only))
    print(line("fuzzy + semantic (shipped)", shipped))

    big_figures = evaluate(big, questions, PATTERN)
    print(f"10,000 products: p50 {big_figures['p50_ms']} ms, p99 {big_figures['p99_ms']} ms a question "
          f"(demo catalogue: p50 {shipped['p50_ms']} ms, p99 {shipped['p99_ms']} ms)")
    print(f"first index build: {first_s} s, longest event-loop stall meanwhile {first_stall_ms} ms; "
          f"rebuild after a change: {build_s} s, longest stall {stall_ms} ms")
    print(f"resident memory: +{model_rss - base_rss:.0f} MB for the model, +{grown:.0f} MB in all "
          f"with the 10,000-product index; +{peak:.0f} MB at the end of a rebuild (two indexes at once)")
    print(json.dumps({
        "top1": shipped["top1"], "top3": shipped["top3"], "answered_right": shipped["answered_right"],
        "dont_know_rate": shipped["dont_know_rate"], "false_answer_rate": shipped["false_answer_rate"],
        "p50_ms": big_figures["p50_ms"], "p99_ms": big_figures["p99_ms"],
        "rebuild_loop_stall_ms": stall_ms, "first_build_loop_stall_ms": first_stall_ms,
        "rss_growth_mb": round(grown), "rss_peak_rebuild_mb": round(peak),
        "fuzzy_only_top1": fuzzy_only["top1"], "fuzzy_only_answered_right": fuzzy_only["answered_right"],
    }))


if __name__ == "__main__":
    main()
