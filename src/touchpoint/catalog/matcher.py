"""Free-text questions → FAQ entries and products, in English, Russian and Chinese.

Chosen on evidence (bench/faq_quality.py): rapidfuzz scores every phrasing we know (the FAQ's
sample questions in all three languages, product names, SKUs) with the mean of token_set_ratio
(word order and extra words do not matter) and plain ratio (penalises a query that shares only
a few words). Character-level fuzzy matching needs no word splitting, so it copes with Chinese
(no spaces), Russian endings and typos alike; a few filler words per language are dropped so
"do you sell …" alone matches nothing. Confidence is the lead over the runner-up: a clear
winner is answered, a close race becomes suggestions. For large catalogues a character n-gram
BM25 (bm25s) first picks the candidates, so latency stays flat as products grow.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from rapidfuzz import fuzz, process

_NON_WORD = re.compile(r"[\W_]+")
_CJK = re.compile(r"[\u3400-\u9fff]")

# Thresholds on the score (0..100), tuned on tests/data/faq_eval.yaml.
CONFIDENT = 60.0
MARGIN = 15.0  # a confident answer must beat the runner-up by this much
SUGGEST = 50.0
_FILLERS = (
    "do does you your u ur i my me is are the a an to can could how what whats when where which will"
    " would it of for in on with pls please there any have has"
    " у меня мне мой моя вы вас ваш ли а и в на с как что это есть можно ну там"
)
_FILLER_WORDS = frozenset(_FILLERS.split())
_FILLER_ZH = ("你们", "您", "我的", "我", "吗", "么", "呢", "啊", "的", "了", "吧")
PREFILTER_ABOVE = 2000  # phrasings; below this, scoring all of them is fast enough


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")
    text = _NON_WORD.sub(" ", text)
    words = text.split()
    for filler in _FILLER_ZH:
        text = text.replace(filler, " ")
    content = [word for word in text.split() if word not in _FILLER_WORDS]
    return " ".join(content or words)


def score(query: str, choices: list[str]) -> Any:
    """One score per choice (a numpy array), computed in rapidfuzz's C++ core."""
    return (process.cdist([query], choices, scorer=fuzz.token_set_ratio)[0]
            + process.cdist([query], choices, scorer=fuzz.ratio)[0]) / 2


@dataclass(frozen=True, slots=True)
class Target:
    kind: Literal["faq", "product"]
    id: str


@dataclass(frozen=True, slots=True)
class Hit:
    target: Target
    score: float


@dataclass(frozen=True, slots=True)
class Match:
    verdict: Literal["answer", "suggest", "none"]
    hits: tuple[Hit, ...] = ()  # best first, at most three

    @property
    def best(self) -> Hit | None:
        return self.hits[0] if self.hits else None


@dataclass
class Matcher:
    """An in-memory index, rebuilt when the FAQ or the catalogue changes."""

    phrasings: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    _bm25: object | None = None

    def add(self, target: Target, texts: Iterable[str]) -> None:
        for text in texts:
            normal = normalize(text)
            if normal:
                self.phrasings.append(normal)
                self.targets.append(target)

    def build(self) -> Matcher:
        if len(self.phrasings) > PREFILTER_ABOVE:
            import bm25s

            retriever = bm25s.BM25()
            retriever.index([ngrams(p) for p in self.phrasings], show_progress=False)
            self._bm25 = retriever
        return self

    def candidates(self, query: str, k: int = 400) -> list[int] | None:
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

    def rank(self, text: str, limit: int = 3) -> list[Hit]:
        query = normalize(text)
        if not query:
            return []
        indexes = self.candidates(query)
        pool = self.phrasings if indexes is None else [self.phrasings[i] for i in indexes]
        if not pool:
            return []
        scores = score(query, pool)
        best: dict[Target, float] = {}
        for position in scores.argsort()[::-1][: max(limit * 20, 60)]:
            target = self.targets[int(position) if indexes is None else indexes[int(position)]]
            best.setdefault(target, float(scores[position]))
        ranked = sorted(best.items(), key=lambda item: -item[1])[:limit]
        return [Hit(target, round(value, 1)) for target, value in ranked]

    def match(self, text: str) -> Match:
        hits = self.rank(text)
        if not hits or hits[0].score < SUGGEST:
            return Match("none", tuple(hits))
        runner_up = hits[1].score if len(hits) > 1 else 0.0
        if hits[0].score >= CONFIDENT and hits[0].score - runner_up >= MARGIN:
            return Match("answer", tuple(hits))
        return Match("suggest", tuple(h for h in hits if h.score >= SUGGEST))


def ngrams(text: str) -> list[str]:
    """Words plus character trigrams (bigrams for Chinese), the retrieval vocabulary."""
    tokens: list[str] = []
    for word in text.split():
        size = 2 if _CJK.search(word) else 3
        padded = f" {word} " if size == 3 else word
        tokens.append(word)
        tokens.extend(padded[i:i + size] for i in range(max(len(padded) - size + 1, 1)))
    return tokens
