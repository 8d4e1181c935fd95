"""Free-text questions → FAQ entries, products and categories, in English, Russian and Chinese.

Two scorers, blended per target (bench/faq_quality.py shows the evidence):
- fuzzy (rapidfuzz): the mean of token_set_ratio and ratio over every phrasing we know (FAQ
  questions in all languages, product names, SKUs). It catches typos, SKUs, brand words and
  Russian endings; Chinese is compared as overlapping character pairs.
- semantic (multilingual sentence embeddings, ``embeddings.py``): cosine similarity to every
  FAQ question and category name. It connects other words for the same thing, across languages.

Products are matched by the fuzzy scorer alone: their names are brand words, and embedding a
10,000-product catalogue would cost memory and start-up time for no gain. For large catalogues a
character n-gram BM25 (bm25s, built in a process of its own) first picks the candidates, so latency
stays flat as products grow.

``build()`` encodes and indexes; it is slow (seconds for a large catalogue), so callers run it in
a worker thread, never on the event loop.
"""

from __future__ import annotations

import multiprocessing
import re
import threading
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from rapidfuzz import fuzz, process

from touchpoint.understanding.embeddings import Encoder, get_encoder
from touchpoint.understanding.text import CJK, fold, fuzzy_form, ngrams, normalize

# Tuned on tests/data/faq_eval.yaml (bench/faq_quality.py prints the sweep).
SEMANTIC_WEIGHT = 0.6  # of the blended score; the rest is the fuzzy score
# Chinese is compared by character pairs, which shared function words (要几天, 能不能) inflate:
# the meaning counts for more there (but not for a key word alone, too short to embed well).
SEMANTIC_WEIGHT_CJK = 0.75
CONFIDENT = 60.0  # blended score (0..100) for an outright answer ...
MARGIN = 8.0  # ... when it also leads the runner-up by this much
SURE = 75.0  # above this, the margin is not needed
CLEAR_LEAD = 10.0  # a weaker best (above SUGGEST) is answered when it leads by this much
SUGGEST = 45.0  # below this, nothing is offered
NEAR_EXACT_DISCOUNT = 15.0
PRODUCT_SCALE = 0.9  # product names are scored by characters alone, which flatters chance overlaps
NAME_BONUS = 10.0  # for a product whose own brand or model word the customer wrote
NAME_OWNERS = 2  # a word in more product names than this names a kind, not a product
PREFILTER_ABOVE = 2000  # phrasings; below this, scoring all of them is fast enough

_WORD = re.compile(r"[a-zа-я][a-zа-я0-9]+")
Kind = Literal["faq", "product", "category", "intent"]


@dataclass(frozen=True, slots=True)
class Target:
    kind: Kind
    id: str


@dataclass(frozen=True, slots=True)
class Hit:
    target: Target
    score: float  # blended, 0..100
    fuzzy: float = 0.0  # 0..100
    semantic: float = 0.0  # cosine, -1..1 (0 for targets matched by the fuzzy scorer only)


@dataclass(frozen=True, slots=True)
class Match:
    verdict: Literal["answer", "suggest", "none"]
    hits: tuple[Hit, ...] = ()  # best first, at most three

    @property
    def best(self) -> Hit | None:
        return self.hits[0] if self.hits else None


def fuzzy_scores(query: str, choices: list[str]) -> np.ndarray:
    """One score per choice, computed in rapidfuzz's C++ core."""
    return (process.cdist([query], choices, scorer=fuzz.token_set_ratio)[0]
            + process.cdist([query], choices, scorer=fuzz.ratio)[0]) / 2


@dataclass
class Matcher:
    """An in-memory index of what customers may ask about, rebuilt when the FAQ or catalogue change."""

    encoder: Encoder | None = None  # None: fuzzy only
    phrasings: list[str] = field(default_factory=list)  # fuzzy forms
    targets: list[Target] = field(default_factory=list)
    exact: dict[str, Target] = field(default_factory=dict)  # folded phrasing → its target
    semantic_texts: list[str] = field(default_factory=list)
    semantic_targets: list[Target] = field(default_factory=list)
    vectors: np.ndarray | None = None
    # A name word → the first phrasing of each of its few products.
    names: dict[str, tuple[int, ...]] = field(default_factory=dict)
    _bm25: object | None = None

    @classmethod
    def semantic(cls) -> Matcher:
        return cls(encoder=get_encoder())

    def add(self, target: Target, texts: Iterable[str], semantic: bool = True) -> None:
        """Phrasings a customer may use for the target (scored both ways unless ``semantic`` is off)."""
        for text in texts:
            normal = normalize(text)
            if not normal:
                continue
            self.phrasings.append(fuzzy_form(normal))
            self.targets.append(target)
            if not semantic:  # a product's name: its characters alone decide (and 10,000 cost memory)
                continue
            self.exact.setdefault(fold(text), target)
            if self.encoder is not None:
                self.semantic_texts.append(text)
                self.semantic_targets.append(target)

    def add_context(self, target: Target, texts: Iterable[str]) -> None:
        """What the target says (an FAQ answer's sentences): semantic evidence only, since long
        texts share characters with anything."""
        if self.encoder is not None:
            for text in texts:
                self.semantic_texts.append(text)
                self.semantic_targets.append(target)

    def build(self) -> Matcher:
        self.names = _name_words(self.phrasings, self.targets)
        if self.encoder is not None and self.semantic_texts:
            self.vectors = self.encoder.encode(self.semantic_texts)
        if len(self.phrasings) > PREFILTER_ABOVE:
            self._bm25 = build_prefilter(self.phrasings)
        return self

    def _candidates(self, query: str, k: int = 400) -> list[int] | None:
        """Indexes of phrasings worth scoring (None: all of them)."""
        if self._bm25 is None:
            return None
        vocabulary = self._bm25.vocab_dict  # type: ignore[attr-defined]
        tokens = [token for token in ngrams(query) if token in vocabulary]
        if not tokens:
            return []
        # Dense scores + argpartition: far quicker than bm25s' own top-k retrieval here.
        scores = self._bm25.get_scores(tokens)  # type: ignore[attr-defined]
        k = min(k, len(scores))
        return [int(i) for i in np.argpartition(-scores, k - 1)[:k] if scores[i] > 0]

    def rank(self, text: str, limit: int = 3, kinds: frozenset[Kind] | None = None) -> list[Hit]:
        """The best targets for a text, best first (at most one hit per target)."""
        query = fuzzy_form(normalize(text))
        if not query:
            return []
        fuzzy: dict[Target, float] = {}
        indexes = self._candidates(query)
        pool = self.phrasings if indexes is None else [self.phrasings[i] for i in indexes]
        if pool:
            scores = fuzzy_scores(query, pool)
            for position in scores.argsort()[::-1][: max(limit * 40, 120)]:
                target = self.targets[int(position) if indexes is None else indexes[int(position)]]
                fuzzy.setdefault(target, float(scores[position]))
        semantic: dict[Target, float] = {}
        if self.encoder is not None and self.vectors is not None and len(self.vectors):
            similarities = self.vectors @ self.encoder.encode_one(text)
            plain = normalize(text)
            if plain != fold(text):  # fillers and greetings dilute the embedding too
                similarities = np.maximum(similarities, self.vectors @ self.encoder.encode_one(plain))
            for position in similarities.argsort()[::-1]:
                semantic.setdefault(self.semantic_targets[int(position)], float(similarities[position]))
        exact = self.exact.get(fold(text))
        several_words = len(query.split()) > 1
        weight = SEMANTIC_WEIGHT_CJK if several_words and CJK.search(query) else SEMANTIC_WEIGHT
        named = {self.targets[i]: i for word in _WORD.findall(fold(text)) for i in self.names.get(word, ())}
        for target, position in named.items():  # outside the prefilter's pick: score its name too
            if target not in fuzzy:
                fuzzy[target] = float(fuzzy_scores(query, [self.phrasings[position]])[0])
        hits = []
        for target in fuzzy.keys() | semantic.keys():
            if kinds is not None and target.kind not in kinds:
                continue
            f, s = fuzzy.get(target, 0.0), semantic.get(target)
            if s is None:
                blended = f * PRODUCT_SCALE
            else:
                # A typo costs the embedding dearly but the characters little: a near-exact
                # phrasing of several words keeps most of its fuzzy score (one word is too little
                # to be sure of: "delivery" is near "deliver", and means time, cost or places).
                blended = weight * max(s, 0.0) * 100 + (1 - weight) * f
                if several_words:
                    blended = max(blended, f - NEAR_EXACT_DISCOUNT)
            if target in named:  # the customer wrote its brand or model word ("Piccolo", "Pod One")
                blended += NAME_BONUS
            if target == exact:
                blended = 100.0
            hits.append(Hit(target, round(blended, 1), round(f, 1), round(s or 0.0, 3)))
        hits.sort(key=lambda hit: -hit.score)
        return hits[:limit]

    def match(self, text: str, kinds: frozenset[Kind] | None = None) -> Match:
        one_word = len(fuzzy_form(normalize(text)).split()) <= 1
        return verdict(self.rank(text, kinds=kinds), one_word=one_word)


def _name_words(phrasings: list[str], targets: list[Target]) -> dict[str, tuple[int, ...]]:
    """Words of product names that name at most two products (a brand or model word, not "kettle"),
    and appear in no FAQ phrasing: each with the first phrasing of its products."""
    owners: dict[str, dict[Target, int]] = {}
    common: set[str] = set()
    for position, (phrasing, target) in enumerate(zip(phrasings, targets, strict=True)):
        for word in _WORD.findall(phrasing):
            if target.kind == "product":
                owners.setdefault(word, {}).setdefault(target, position)
            else:
                common.add(word)
    return {word: tuple(found.values()) for word, found in owners.items()
            if len(found) <= NAME_OWNERS and len(word) >= 4 and word not in common}


def _bm25_index(phrasings: list[str]) -> object:
    import bm25s

    retriever = bm25s.BM25()
    retriever.index([ngrams(p) for p in phrasings], show_progress=False)
    return retriever


_prefilter_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def build_prefilter(phrasings: list[str]) -> object:
    """The BM25 prefilter for a large catalogue, built in a process of its own: bm25s holds the
    interpreter lock for hundreds of milliseconds while indexing 10,000 products, which would stall
    the bot's event loop even from a worker thread (bench/faq_quality.py measures the stall)."""
    global _prefilter_pool
    with _pool_lock:
        if _prefilter_pool is None:
            spawn = multiprocessing.get_context("spawn")  # no fork of a threaded process
            _prefilter_pool = ProcessPoolExecutor(max_workers=1, mp_context=spawn)
        pool = _prefilter_pool
    return pool.submit(_bm25_index, phrasings).result()


def verdict(hits: list[Hit], one_word: bool = False) -> Match:
    """A clear winner is answered, a close race becomes suggestions, a weak best is "don't know".

    One word ("delivery") is near many phrasings at once: it is answered only when it clearly
    leads, never on its score alone."""
    if not hits or hits[0].score < SUGGEST:
        return Match("none", tuple(hits))
    best, runner_up = hits[0].score, (hits[1].score if len(hits) > 1 else 0.0)
    lead = best - runner_up
    sure = best >= SURE or (best >= CONFIDENT and lead >= MARGIN)
    if (sure and not one_word) or lead >= CLEAR_LEAD or best == 100.0:
        return Match("answer", tuple(hits))
    return Match("suggest", tuple(h for h in hits if h.score >= SUGGEST))
