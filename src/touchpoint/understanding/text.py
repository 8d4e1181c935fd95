"""Text normalisation shared by the fuzzy scorer, the retrieval prefilter and the console's grouping."""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[\W_]+")
CJK = re.compile(r"[\u3400-\u9fff]")
_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")

_FILLERS = (
    "do does you your u ur i my me is are the a an to can could how what whats when where which will"
    " would it of for in on with pls please plz there any have has hi hello hey ok"
    " у меня мне мой моя вы вас ваш ли а и в на с как что это есть можно ну там же бы"
    " привет здравствуйте пожалуйста плиз подскажите скажите"
)
_FILLER_WORDS = frozenset(_FILLERS.split())
# Longest first, so "你们" goes before "你".
_FILLER_ZH = ("请问", "你们", "您好", "你好", "亲", "您", "我的", "我", "吗", "么", "呢", "啊", "的", "了",
              "吧", "呀", "哈", "咋", "啥", "嘛", "哦")


def fold(text: str) -> str:
    """Case, width and ё folded; punctuation becomes spaces."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")
    return " ".join(_NON_WORD.sub(" ", text).split())


def normalize(text: str) -> str:
    """The content words of a question: folded, with filler words dropped (never all of them)."""
    text = fold(text)
    words = text.split()
    for filler in _FILLER_ZH:
        text = text.replace(filler, " ")
    content = [word for word in text.split() if word not in _FILLER_WORDS]
    return " ".join(content or words)


def fuzzy_form(normal: str) -> str:
    """What the fuzzy scorer compares: Chinese runs become overlapping character pairs, so a short
    question that shares only its key word (自提) still overlaps a long phrasing as whole tokens."""
    return _CJK_RUN.sub(lambda run: " " + " ".join(_pairs(run.group())) + " ", normal).strip()


def _pairs(run: str) -> list[str]:
    return [run] if len(run) < 3 else [run[i:i + 2] for i in range(len(run) - 1)]


def ngrams(text: str) -> list[str]:
    """Words plus character trigrams (bigrams for Chinese), the retrieval vocabulary."""
    tokens: list[str] = []
    for word in text.split():
        size = 2 if CJK.search(word) else 3
        padded = f" {word} " if size == 3 else word
        tokens.append(word)
        tokens.extend(padded[i:i + size] for i in range(max(len(padded) - size + 1, 1)))
    return tokens


_CYRILLIC = re.compile(r"[\u0400-\u04ff]")


def guess_locale(text: str) -> str:
    """The language a customer wrote in, by script: Chinese, Russian, else English."""
    if CJK.search(text):
        return "zh"
    return "ru" if _CYRILLIC.search(text) else "en"
