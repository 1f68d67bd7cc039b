"""Homophone typos in questions: a word no document uses, written with the same sounds as a
word the documents do use (「杨尘」 → 扬尘, 「秸杆」 → 秸秆, 「尾汽」 → 尾气).

Residents type with pinyin input methods, so the commonest misspelling is the right syllables
with a wrong character. ``correct(word, index)`` returns the documents' word with the same
toneless pinyin, the same length and at least one character in common, preferring the most
frequent; None when there is none or the word is known. Left out: typos that change the
syllables (形近字), words longer than four characters.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pypinyin import lazy_pinyin

if TYPE_CHECKING:
    from policyqa.index import Index

_KEY = "spelling"
_LOCK = threading.Lock()
MAX_CHARS = 4
# a word this frequent in jieba's general dictionary is a word, not a typo (秸杆 has 5, 办法 10633)
COMMON = 50


def _is_cjk(w: str) -> bool:
    return all("\u4e00" <= c <= "\u9fff" for c in w)


def sound(word: str) -> str:
    return " ".join(lazy_pinyin(word))


def _table(index: Index) -> dict[str, list[tuple[int, str]]]:
    """Toneless pinyin → [(document frequency, word)] over the index's vocabulary, built once."""
    got = index.memo.get(_KEY)
    if got is not None:
        return got
    with _LOCK:
        got = index.memo.get(_KEY)
        if got is None:
            got = {}
            for r in index.bm25.values():
                indptr = r.scores["indptr"]
                for w, tid in r.vocab_dict.items():
                    if 2 <= len(w) <= MAX_CHARS and _is_cjk(w):
                        df = int(indptr[tid + 1] - indptr[tid])
                        got.setdefault(sound(w), []).append((df, w))
            for v in got.values():
                v.sort(reverse=True)
            index.memo[_KEY] = got
    return got


def correct(word: str, index: Index) -> str | None:
    if not (2 <= len(word) <= MAX_CHARS and _is_cjk(word)):
        return None
    if index.tokenizer.general_frequency(word)[0] >= COMMON:
        return None  # a common word is meant as written: 办法 is no typo of 办发, 大雨 none of 大于
    for _df, w in _table(index).get(sound(word), []):
        if w != word and any(a == b for a, b in zip(w, word, strict=True)):
            return w
    return None


def warm(index: Index) -> None:
    """Build the homophone table now (≈ 0.2 s) rather than on the first question."""
    _table(index)
