"""Chinese tokens for BM25: jieba with the domain dictionary in kb/, minus stopwords.

One ``Tokenizer`` per (dictionary, stopwords) pair, built once and reused (jieba's first cut
loads its dictionary, ≈ 0.6 s). Questions and units go through the same function, after
traditional → simplified conversion and the same artefact repair as the parser.

Left out: part-of-speech filtering; synonyms are added to the question by policyqa.retrieve,
not here.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
from pathlib import Path

import jieba

from policyqa.text import repair, to_simplified

_PUNCT = re.compile(r"^[\W_]+$", re.UNICODE)
_LOCK = threading.Lock()


class Tokenizer:
    """jieba search-mode cut with a user dictionary and stopwords."""

    def __init__(self, dict_path: Path | None, stopwords_path: Path | None) -> None:
        jieba.setLogLevel(logging.WARNING)
        self._jieba = jieba.Tokenizer()
        self._jieba.initialize()
        self.dict_path, self.stopwords_path = dict_path, stopwords_path
        if dict_path and Path(dict_path).exists():
            self._jieba.load_userdict(str(dict_path))
        self.stopwords: frozenset[str] = frozenset()
        if stopwords_path and Path(stopwords_path).exists():
            words = Path(stopwords_path).read_text(encoding="utf-8").split()
            self.stopwords = frozenset(w.strip() for w in words if w.strip())
        # every question re-cuts the same candidate sentences: cache the cuts (pure in the text)
        self._cut = functools.lru_cache(maxsize=32768)(self._cut_uncached)

    @property
    def fingerprint(self) -> str:
        """A hash of the dictionary and stopwords, recorded in the index manifest."""
        return tokenizer_fingerprint(self.dict_path, self.stopwords_path)

    def _cut_uncached(self, text: str, search: bool) -> tuple[str, ...]:
        text = repair(to_simplified(text))
        with _LOCK:  # jieba's Tokenizer is not documented as thread-safe
            toks = (
                self._jieba.lcut_for_search(text, HMM=False) if search else self._jieba.lcut(text, HMM=False)
            )
        return tuple(self._keep(toks))

    def words(self, text: str) -> list[str]:
        """Precise-mode words (no sub-words), stopwords and punctuation kept out."""
        return list(self._cut(text, False))

    def __call__(self, text: str) -> list[str]:
        """Search-mode tokens (long words also give their sub-words), for BM25."""
        return list(self._cut(text, True))

    def word_spans(self, text: str) -> list[tuple[int, int]]:
        """The [start, end) offsets of the precise-mode words of ``text`` as given (nothing
        repaired or dropped, so offsets are the caller's)."""
        with _LOCK:
            toks = self._jieba.lcut(text, HMM=False)
        spans, at = [], 0
        for t in toks:
            spans.append((at, at + len(t)))
            at += len(t)
        return spans

    def general_frequency(self, word: str) -> tuple[int, int]:
        """The word's count in jieba's dictionary (general written Chinese, plus the user
        dictionary) and the dictionary's total: how common the word is outside the documents."""
        return int(self._jieba.FREQ.get(word, 0) or 0), int(self._jieba.total)

    @staticmethod
    def names_no_thing(word: str) -> bool:
        """Is the word, in jieba's general dictionary, a measure word (微克, 立方米, 公顷)? Such a word
        can be rare in the documents and still not be what a question is about."""
        return word in _non_noun_words()

    def _keep(self, toks: list[str]) -> list[str]:
        # lower-case after cutting: the dictionary holds PM2.5 / VOCs in their usual case
        out = (t.strip().lower() for t in toks)
        return [t for t in out if t and not _PUNCT.match(t) and t not in self.stopwords]


# jieba's part-of-speech tags of words that name no thing: measure words. Its other tags are too
# noisy for this (大宗 is a numeral, 沿海 / 上游 direction words, 夜间 a time word, 快递 a verb).
# jieba tags units of money and weight as numerals (吨, 元, 万吨, 亿元): of its numeral words, those
# of one character or a multiplier and a unit are measure words too
_NON_NOUN_TAGS = frozenset({"q", "mq"})
_MULTIPLIERS = "十百千万亿"


@functools.lru_cache(maxsize=1)
def _non_noun_words() -> frozenset[str]:
    """The words of jieba's bundled dictionary whose tag is in ``_NON_NOUN_TAGS`` (read once,
    a few thousand words)."""
    out = set()
    with jieba.get_dict_file() as f:
        for raw in f:
            parts = raw.decode("utf-8").split()
            if len(parts) >= 3 and parts[2] in _NON_NOUN_TAGS:
                out.add(parts[0])
            elif (
                len(parts) >= 3
                and parts[2] == "m"
                and (len(parts[0]) == 1 or (parts[0][0] in _MULTIPLIERS and len(parts[0]) <= 4))
            ):
                out.add(parts[0])
    return frozenset(out)


def tokenizer_fingerprint(dict_path: Path | None, stopwords_path: Path | None) -> str:
    """What identifies the tokenization: jieba's version and mode, the dictionary, the stopwords.

    Computed from the files alone, so ingest can tell "nothing changed" without loading jieba.
    """
    h = hashlib.sha256(b"jieba-0.42.1/search/v1")
    for p in (dict_path, stopwords_path):
        if p and Path(p).exists():
            h.update(Path(p).read_bytes())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=4)
def tokenizer_for(kb_dir: Path) -> Tokenizer:
    """The tokenizer for a knowledge base: ``kb/dict.txt`` and ``kb/stopwords.txt``."""
    kb_dir = Path(kb_dir)
    return Tokenizer(kb_dir / "dict.txt", kb_dir / "stopwords.txt")
