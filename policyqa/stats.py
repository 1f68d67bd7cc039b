"""Statistics derived from an opened index, computed once per index and typed.

IDF of tokens, the BM25 vocabulary, each sentence's token set, the years and places the
documents mention, the characters too common in indicator names to identify one. All are
bounded by the index's own content (a question never grows them), and live in one
``IndexStats`` object attached to the index, so no layer writes into a shared dict.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policyqa.text import split_sentences

if TYPE_CHECKING:
    from policyqa.index import Index
    from policyqa.models import Unit

_KEY = "stats"
_LOCK = threading.Lock()
RE_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")


@dataclass
class IndexStats:
    n_units: int
    vocab: frozenset[str]
    df: dict[str, int] = field(default_factory=dict)
    sentences: dict[str, list[tuple[str, frozenset[str]]]] = field(default_factory=dict)
    years: dict[str, frozenset[int]] = field(default_factory=dict)  # per document
    places: frozenset[str] = frozenset()
    generic_chars: frozenset[str] = frozenset()
    corpus_lower: str = ""
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)


def of(index: Index) -> IndexStats:
    st = index.memo.get(_KEY)
    if st is not None:
        return st
    with _LOCK:
        st = index.memo.get(_KEY)
        if st is None:
            st = _compute(index)
            index.memo[_KEY] = st
    return st


def _compute(index: Index) -> IndexStats:
    vocab = (
        frozenset().union(*(r.vocab_dict.keys() for r in index.bm25.values())) if index.bm25 else frozenset()
    )
    years = {d: frozenset(int(y) for y in RE_YEAR.findall(src)) for d, src in index.source_canon.items()}
    # place names: the dictionary's words tagged ns (kb/dict.txt), plus the documents' regions
    places: set[str] = set()
    path = Path(index.settings.kb_dir) / "dict.txt"
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            p = line.split()
            if len(p) >= 3 and p[2] == "ns":
                places.add(p[0].lower())
    names = [i.name for d in index.docs.values() for i in d.indicators]
    counts: Counter[str] = Counter(c for n in names for c in set(n))
    generic = frozenset(c for c, k in counts.items() if names and k >= max(3, 0.15 * len(names)))
    return IndexStats(
        n_units=sum(len(v) for v in index.retrievable.values()),
        vocab=vocab,
        years=years,
        places=frozenset(places),
        generic_chars=generic,
        aliases=_aliases(index, vocab),
    )


# 「挥发性有机物 (VOCs)」「细颗粒物（PM2.5）」: a term and the Latin abbreviation the text gives it
_ALIAS = re.compile(r"([\u4e00-\u9fff]{2,12})\s*[（(]\s*([A-Za-z][A-Za-z0-9.]{1,9})\s*[)）]")


def _aliases(index: Index, vocab: frozenset[str]) -> dict[str, tuple[str, ...]]:
    """Each abbreviation the documents define in brackets and go on to use on its own, both ways
    (lower case): the sentences that write only the abbreviation (加强VOCs源头控制) hold the
    term. The term is the longest tail of the characters before the bracket that the documents
    use as a word (设区城市细颗粒物 (PM2.5) → 细颗粒物). Left out: abbreviations used only once,
    where the bracket itself holds both forms."""
    pairs: dict[str, set[str]] = {}
    corpus = "\n".join(index.source_canon.values()).lower()
    for src in index.source_canon.values():
        for m in _ALIAS.finditer(src):
            head, abbr = m.group(1), m.group(2).lower()
            term = next((head[i:] for i in range(len(head) - 1) if head[i:].lower() in vocab), None)
            if term is None or not re.search(r"[a-z]", abbr) or corpus.count(abbr) < 2:
                continue
            pairs.setdefault(term.lower(), set()).add(abbr)
            pairs.setdefault(abbr, set()).add(term.lower())
    return {k: tuple(sorted(v)) for k, v in pairs.items()}


def aliases(index: Index, word: str) -> tuple[str, ...]:
    """The abbreviation the documents give a term, or the term an abbreviation stands for."""
    return of(index).aliases.get(word.lower(), ())


def vocabulary(index: Index) -> frozenset[str]:
    return of(index).vocab


def place_names(index: Index) -> frozenset[str]:
    return of(index).places


def indicator_generic_chars(index: Index) -> frozenset[str]:
    return of(index).generic_chars


def doc_years(index: Index, doc: str | None = None) -> frozenset[int]:
    ys = of(index).years
    if doc:
        return ys.get(doc, frozenset())
    return frozenset().union(*ys.values()) if ys else frozenset()


def doc_frequency(index: Index, token: str) -> int:
    """In how many retrievable units the token occurs (0 outside the vocabulary)."""
    st = of(index)
    cached = st.df.get(token)
    if cached is not None:
        return cached
    if token not in st.vocab:
        return 0
    df = 0
    for r in index.bm25.values():
        tid = r.vocab_dict.get(token)
        if tid is not None:
            indptr = r.scores["indptr"]
            df += int(indptr[tid + 1] - indptr[tid])
    st.df[token] = df  # vocabulary tokens only: questions cannot grow the cache
    return df


def idf(index: Index, token: str) -> float:
    """BM25-style IDF of a token over the retrievable units (unknown tokens: the maximum).

    A phrase the tokenizer cuts (排污单位 → 排污, 单位) occurs no more often than its rarest
    word: it gets that word's IDF, not the maximum it would get as an unknown token."""
    st = of(index)
    n = st.n_units
    df = doc_frequency(index, token)
    if not df and token not in st.vocab:
        words = [t for t in index.tokenizer(token) if t != token and t in st.vocab]
        if words:
            df = min(doc_frequency(index, t) for t in words)
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def max_idf(index: Index) -> float:
    """The IDF of a word no unit holds: the weight of the rarest possible word."""
    n = of(index).n_units
    return math.log(1 + (n + 0.5) / 0.5)


def keyness(index: Index, word: str) -> float:
    """How much more the documents use a word than general Chinese does: the log ratio of its
    share of units to its share of jieba's dictionary counts. Topic words (噪声, 秸秆, 尾矿)
    score high; words of everyday speech that a document happens to use once or twice (就是,
    办法, 一起) score low. A word the general dictionary lacks counts as specific."""
    n = max(1, of(index).n_units)
    freq, total = index.tokenizer.general_frequency(word)
    if not freq:
        return math.inf
    return math.log((doc_frequency(index, word) + 0.5) / n) - math.log((freq + 1) / max(1, total))


def sentence_tokens(index: Index, unit: Unit) -> list[tuple[str, frozenset[str]]]:
    """The unit's sentences with their token sets (computed once per unit)."""
    st = of(index)
    got = st.sentences.get(unit.id)
    if got is None:
        got = [(s, frozenset(index.tokenizer(s))) for s in split_sentences(unit.text)]
        st.sentences[unit.id] = got
    return got


def in_corpus(index: Index, word: str) -> bool:
    """Does any document use the word: as a token of its vocabulary, or (three characters and
    more) inside its text? Two characters inside the text prove nothing: 「那条」 straddles
    words in many sentences."""
    w = word.lower()
    st = of(index)
    if w in st.vocab:
        return True
    if len(w) < 3:
        return False
    return in_text(index, w)


def in_text(index: Index, word: str) -> bool:
    """Does the word stand anywhere in the documents' text (also across token boundaries)? For
    the documents' own terms from the synonym table (采砂 in 「违法采砂」), not for guesses."""
    st = of(index)
    if not st.corpus_lower:
        st.corpus_lower = "\n".join(index.source_canon.values()).lower()
    return word.lower() in st.corpus_lower


def sentence_vectors(index: Index, unit: Unit) -> Any:
    """The unit's sentences' unit vectors (rows in the order of ``sentence_tokens``), or None
    for a build without them (older builds, a unit outside the BM25 rows, a count that does
    not match). Read once per index, memory-mapped."""
    got = index.memo.get(_SENT_KEY)
    if got is None:
        with _SENT_LOCK:
            got = index.memo.get(_SENT_KEY)
            if got is None:
                got = _load_sentence_vectors(index)
                index.memo[_SENT_KEY] = got
    matrix, spans = got
    span = spans.get(unit.id)
    return None if matrix is None or span is None else matrix[span[0] : span[1]]


_SENT_KEY = "stats.sentence_vectors"
_SENT_LOCK = threading.Lock()  # not _LOCK: loading reads sentence_tokens, which may take it


def _load_sentence_vectors(index: Index) -> tuple[Any, dict[str, tuple[int, int]]]:
    import numpy as np

    from policyqa.index import SENTENCE_VECTORS

    try:
        matrix = np.load(index.path / SENTENCE_VECTORS, mmap_mode="r")
    except Exception:  # missing, truncated or foreign: answer on paragraph similarity alone
        return None, {}
    spans: dict[str, tuple[int, int]] = {}
    at = 0
    for u in index.rows:
        n = len(split_sentences(u.text))  # what sentence_tokens holds, without running jieba
        spans[u.id] = (at, at + n)
        at += n
    if at != len(matrix):
        return None, {}
    return matrix, spans
