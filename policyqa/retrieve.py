"""Hybrid, structure-aware retrieval: BM25 + dense, fused by reciprocal rank, plus routes.

``search(index, question)`` runs in plain steps you can follow:

1. ``analyze``: normalise the question (traditional → simplified, artefact repair) and read
   explicit references from it: 第X章 / 第Y节 / 专栏N / 第N项指标, and indicator names
   (森林覆盖率 → indicator 17) when the question asks for a value or target.
2. ``bm25_ranking`` and ``dense_ranking``: candidates from each retriever.
3. ``fuse``: reciprocal-rank fusion (Cormack et al., 2009; k = 60).
4. ``apply_routes``: units the question names explicitly go first; a named chapter or
   section boosts its units.

Questions are expanded with the plan's own terms from two tables in kb/ (English terms,
everyday words) before BM25 and routing. Left out: cross-encoder reranking (a ``st:``
reranker could slot in after ``fuse``).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from policyqa.errors import BackendError
from policyqa.index import Index
from policyqa.models import KIND_INDICATOR, KIND_ITEM, KIND_NOTE, Hit, Unit
from policyqa.text import cn_number, repair, split_sentences, to_simplified

RRF_K = 60
BM25_WEIGHT = 1.0  # relative to dense; chosen on the dev split by eval/bench_retrieval.py
CANDIDATES = 40
SENTENCE_WEIGHT = 1.0  # best-sentence coverage vs normalised fused score; chosen on the dev split
RERANK = 20
ROUTE_BONUS = 10.0  # above any fused + reranked score (each ≤ 1 + SENTENCE_WEIGHT)
SCOPE_BONUS = 3.0

_NUM = r"[一二三四五六七八九十两\d]{1,3}"
RE_CHAPTER = re.compile(rf"第\s*({_NUM})\s*章")
RE_SECTION = re.compile(rf"第\s*({_NUM})\s*节")
RE_COLUMN = re.compile(r"专栏\s*(\d{1,2}|[一二三四五六七八九十]{1,3})(?!共)")  # not 「专栏一共…」
# English words that only ask (「What does chapter 7 cover?」): like 讲什么, they are no topic
RE_EN_ASKING = re.compile(
    r"\b(?:what(?:'s)?|which|does|do|did|is|are|was|the|a|an|of|in|on|about|say|says|said|cover|covers"
    r"|require|requires|contain|contains|include|includes|summari[sz]e|summary|describe|explain|tell|me"
    r"|us|plan|this|it|its|topic|topics|main|mainly|content|contents|please|chapter|section)\b",
    re.I,
)
RE_EN_CHAPTER = re.compile(r"\bchapter\s+(\d{1,2})\b", re.I)
RE_EN_SECTION = re.compile(r"\bsection\s+(\d{1,2})\b", re.I)
RE_EN_COLUMN = re.compile(r"\b(?:column|box)\s+(\d{1,2})\b", re.I)
RE_EN_INDICATOR = re.compile(r"\bindicator\s+(?:no\.?\s*)?(\d{1,2})\b", re.I)
RE_INDICATOR_NO = re.compile(
    rf"(?:第\s*({_NUM})\s*(?:项|个|条)?\s*指标|指标\s*(?:第\s*)?(\d{{1,2}})(?![\d.年])\s*(?:项|号)?|(\d{{1,2}})\s*号指标)"
)
# words that mark a question about an indicator's value, target or attribute
RE_INDICATOR_CUE = re.compile(
    r"指标|目标|20[12]\d|基准|约束性|预期性|多少|数值|数据|达到|达标率|比例|比率|覆盖率|保有率|利用率|治理率|浓度|减排量|降低|属性|值"
)
# characters of indicator names too common to identify one (「比例」「率」…)
_GENERIC = set("比例率质量重点工程设区城市单位地区生产总值的年平均")


@dataclass(frozen=True)
class Query:
    """A question as retrieval sees it."""

    text: str  # as asked
    normalized: str  # simplified, repaired
    chapter_no: int | None = None
    section_no: int | None = None
    column_no: int | None = None
    indicator_nos: tuple[int, ...] = ()
    explicit_indicator: bool = False  # 「第17项指标」 rather than a name match
    content_chars: int = 0  # CJK/alnum characters left once references are removed


def normalize_question(text: str) -> str:
    # lone surrogates (valid in JSON, not in UTF-8) crash the e5 engine; zero-width and bidi
    # marks split words invisibly (「森\u200b林」)
    t = re.sub(r"[\ud800-\udfff]", "\ufffd", text or "")
    t = re.sub(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]", "", t)
    t = to_simplified(t)
    t = re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", " ", t)
    return repair(t).strip()


def load_terms(path: Path) -> tuple[tuple[str, str], ...]:
    """A term table (``kb/glossary-en.tsv``, ``kb/synonyms.tsv``): (asked, plan terms), longest first."""
    if not path.exists():
        return ()
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#") and "\t" in line:
            asked, plan = line.split("\t", 1)
            pairs.append((asked.strip().lower(), plan.strip()))
    return tuple(sorted(pairs, key=lambda p: -len(p[0])))


_TERMS: dict[Path, tuple[int, tuple[tuple[str, str], ...]]] = {}


def _terms(path: Path) -> tuple[tuple[str, str], ...]:
    """The table at ``path``, re-read when the file changes (an admin may edit kb/ and re-ingest)."""
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = 0
    cached = _TERMS.get(path)
    if cached is None or cached[0] != stamp:
        _TERMS[path] = (stamp, load_terms(path))
    return _TERMS[path][1]


def expand_english(text: str, kb_dir: Path) -> str:
    """Append the plan's terms for English words in an English question (no Chinese at all, or
    ≥ 3 English words).

    Lets BM25 and the routes see 「森林覆盖率」 in 「What is the forest coverage target?」.
    """
    if len(re.findall(r"[A-Za-z]{3,}", text)) < 3 and re.search(r"[\u4e00-\u9fff]", text):
        return text  # a Chinese question with a Latin term or two (VOCs) needs no glossary
    low = f" {text.lower()} "
    found = []
    for en, zh in _terms(Path(kb_dir) / "glossary-en.tsv"):
        if re.search(rf"(?<![a-z]){re.escape(en)}(?![a-z])", low):
            found.append(zh)
            low = low.replace(en, " ")
    return f"{text} {' '.join(dict.fromkeys(found))}" if found else text


def term_variants(word: str, kb_dir: Path, question: str = "") -> tuple[str, ...]:
    """A word and the plan's terms for it (from kb/synonyms.tsv), e.g. 挖沙 → (挖沙, 采砂).

    The table's word may sit inside the token jieba produced (「放鞭炮」 holds 「鞭炮」), or the
    token inside the table's word as the ``question`` writes it (「广场舞」 cut as 广场 / 舞).
    """
    out = [word]
    for asked, plan in _terms(Path(kb_dir) / "synonyms.tsv"):
        if asked in word or (len(word) >= 2 and word in asked and asked in question):
            out += plan.split()
    return tuple(dict.fromkeys(out))


def expand_colloquial(text: str, kb_dir: Path) -> str:
    """Append the plan's terms for everyday words (「臭水沟」 → 黑臭水体) found in the question."""
    found = []
    rest = text.lower()  # the table's first column is lower case (pm2.5)
    for word, plan in _terms(Path(kb_dir) / "synonyms.tsv"):
        if word in rest and plan not in text:
            found.append(plan)
            rest = rest.replace(word, " ")
    return f"{text} {' '.join(dict.fromkeys(found))}" if found else text


def _covered(name: str, q: str) -> int:
    """How many characters of ``name`` lie in common substrings (≥ 2 chars) with ``q``."""
    covered = [False] * len(name)
    for i in range(len(name)):
        for j in range(len(name), i + 1, -1):
            if name[i:j] in q:
                for x in range(i, j):
                    covered[x] = True
                break
    return sum(1 for i, c in enumerate(covered) if c and name[i] not in _GENERIC)


def match_indicators(q: str, index: Index) -> tuple[int, ...]:
    """Indicator numbers whose names the question names well enough (best score wins).

    Score = the number of the name's distinctive characters covered by substrings shared with
    the question (share of the name breaks ties). Requires ≥ 4 covered characters and ≥ 40 %
    coverage; ties keep all.
    """
    best: list[tuple[float, int]] = []
    low = q.lower()
    for doc in index.docs.values():
        for ind in doc.indicators:
            name = ind.name
            core = sum(1 for c in name if c not in _GENERIC) or len(name)
            cov = _covered(name.lower(), low)  # 「pm2.5浓度」 names 「PM2.5」
            if cov >= min(4, core) and cov / core >= 0.4:
                best.append((cov + cov / core / 100, ind.no))  # most covered characters, then share
    if not best:
        return ()
    top = max(s for s, _ in best)
    return tuple(no for s, no in best if s >= top - 1e-9)


def analyze(question: str, index: Index) -> Query:
    kb = index.settings.kb_dir
    q = expand_colloquial(expand_english(normalize_question(question), kb), kb)
    ch = RE_CHAPTER.search(q) or RE_EN_CHAPTER.search(q)
    sec = RE_SECTION.search(q) or RE_EN_SECTION.search(q)
    col = RE_COLUMN.search(q) or RE_EN_COLUMN.search(q)
    if col and len(RE_COLUMN.findall(q)) > 1:  # 「专栏2至专栏9」: a range, not one 专栏
        col = None
    ind = RE_INDICATOR_NO.search(q) or RE_EN_INDICATOR.search(q)
    stripped = q
    for m in (ch, sec, col, ind):
        if m:
            stripped = stripped.replace(m.group(0), " ")
    ind_nos: tuple[int, ...] = ()
    explicit = False
    chapter_no = _num(ch)
    section_no = _num(sec)
    if chapter_no is None and section_no is None:
        named = section_named(q, index)
        if named:
            chapter_no, section_no = named
            stripped = stripped.replace(index_section_title(index, *named), " ")
    if chapter_no is None and re.search(r"最后一章|末章|最后一部分", q):
        chapter_no = max((c.no for d in index.docs.values() for c in d.chapters), default=None)
        stripped = re.sub(r"最后一章|末章|最后一部分", " ", stripped)
    if ind:
        try:
            ind_nos = (cn_number(next(g for g in ind.groups() if g)),)
            explicit = True
        except ValueError:
            ind_nos = ()
    elif RE_INDICATOR_CUE.search(q) and not ch and not sec and not _other_years(q):
        ind_nos = match_indicators(q, index)
        if len(ind_nos) > 2:  # names several measures at once: a narrative question
            ind_nos = ()
    content = re.sub(
        r"规划|本章|本节|一共|总共|[讲说些啥什么内容主要包括哪有关于的是了呢吗分几节章？?，,。\s]",
        "",
        RE_EN_ASKING.sub(" ", stripped),
    )
    return Query(
        text=question,
        normalized=q,
        chapter_no=chapter_no,
        section_no=section_no,
        column_no=_num(col),
        indicator_nos=ind_nos,
        explicit_indicator=explicit,
        content_chars=len(re.findall(r"[\u4e00-\u9fffA-Za-z0-9]", content)),
    )


def section_named(q: str, index: Index) -> tuple[int, int] | None:
    """(chapter, section) whose whole title (≥ 4 characters) the question contains, if exactly one."""
    found = [
        (c.no, s.no)
        for d in index.docs.values()
        for c in d.chapters
        for s in c.sections
        if len(s.title) >= 4 and s.title in q
    ]
    return found[0] if len(found) == 1 else None


def index_section_title(index: Index, chapter_no: int, section_no: int) -> str:
    for d in index.docs.values():
        for c in d.chapters:
            for s in c.sections:
                if (c.no, s.no) == (chapter_no, section_no):
                    return s.title
    return ""


def _other_years(q: str) -> bool:
    """A year other than the table's 2020 / 2025 (「比2015年下降」): not a table question."""
    return any(y not in ("2020", "2025") for y in re.findall(r"(?<!\d)(20\d\d|19\d\d)(?!\d)", q))


def _num(m: re.Match[str] | None) -> int | None:
    try:
        return cn_number(m.group(1)) if m else None
    except ValueError:
        return None


# ----------------------------------------------------------------------------- rankings


def bm25_ranking(index: Index, q: Query, docs: Iterable[str]) -> list[tuple[str, float]]:
    tokens = index.tokenizer(q.normalized)
    if not tokens:
        return []
    out: list[tuple[str, float]] = []
    for d in docs:
        units = index.retrievable[d]
        r = index.bm25[d]
        known = [t for t in tokens if t in r.vocab_dict]
        if not known:
            continue
        ids, scores = r.retrieve([known], k=min(CANDIDATES, len(units)), show_progress=False, n_threads=1)
        out += [(units[i].id, float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]
    out.sort(key=lambda x: -x[1])
    return out[:CANDIDATES]


def query_vector(index: Index, text: str) -> list[float]:
    """The query's vector; repeated questions (the app's example buttons, a burst of people
    asking the same thing) come from ``index.query_vectors`` instead of the model."""
    cached = index.query_vectors.get(text)
    if cached is not None:
        return cached
    e = index.embedder
    v = e.embed_query_np(text) if hasattr(e, "embed_query_np") else np.asarray(e.embed_query(text))
    vec = [float(x) for x in np.asarray(v, dtype=np.float32).ravel()]
    index.query_vectors.put(text, vec)
    return vec


def dense_ranking(
    index: Index, q: Query, docs: Iterable[str], vector: list[float] | None = None, where: dict | None = None
) -> list[tuple[str, float]]:
    vec = vector if vector is not None else query_vector(index, q.normalized)
    out: list[tuple[str, float]] = []
    for d in docs:
        store = index.stores[d]
        try:
            results = store._collection.query(  # noqa: SLF001 - by vector, ids only: no re-embedding
                query_embeddings=[vec], n_results=CANDIDATES, where=where, include=["distances"]
            )
        except Exception as e:  # a Chroma server gone, a vector store damaged on disk
            raise vector_store_error(index, e) from e
        out += [
            (i, 1.0 - float(dist)) for i, dist in zip(results["ids"][0], results["distances"][0], strict=True)
        ]
    out.sort(key=lambda x: -x[1])
    return out[:CANDIDATES]


def vector_store_error(index: Index, e: Exception) -> BackendError:
    """What to tell the user when the vector store fails in the middle of a search."""
    url = index.settings.chroma_url
    if url:
        return BackendError(
            f"无法查询 Chroma 服务 {url}（{type(e).__name__}）：请确认 `chroma run` 正在运行。"
        )
    return BackendError(
        f"向量库 {index.path / 'chroma'} 无法读取（{type(e).__name__}）："
        "请运行 `policyqa ingest --force` 重建索引，然后重启服务。"
    )


def fuse(
    *rankings: list[tuple[str, float]], k: int = RRF_K, weights: tuple[float, ...] = ()
) -> dict[str, float]:
    """Reciprocal-rank fusion: score(u) = Σ w_r / (k + rank_r(u)), rank from 1, w_r = 1 by default."""
    scores: dict[str, float] = {}
    for i, ranking in enumerate(rankings):
        w = weights[i] if i < len(weights) else 1.0
        for rank, (uid, _) in enumerate(ranking, 1):
            scores[uid] = scores.get(uid, 0.0) + w / (k + rank)
    return scores


# ----------------------------------------------------------------------------- sentence coverage


def idf(index: Index, token: str) -> float:
    """BM25-style IDF of a token over the retrievable units (unknown tokens: the maximum).

    Cached per token of the index's vocabulary only, so questions cannot grow the cache.
    """
    key = ("idf", token)
    if key not in index.memo:
        if not any(token in r.vocab_dict for r in index.bm25.values()):
            n = sum(len(v) for v in index.retrievable.values())
            return math.log(1 + (n + 0.5) / 0.5)
        n = sum(len(v) for v in index.retrievable.values())
        df = 0
        for r in index.bm25.values():
            tid = r.vocab_dict.get(token)
            if tid is not None:
                indptr = r.scores["indptr"]
                df += int(indptr[tid + 1] - indptr[tid])
        index.memo[key] = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return index.memo[key]


def sentence_tokens(index: Index, unit: Unit) -> list[tuple[str, frozenset[str]]]:
    """The unit's sentences with their token sets (computed once per unit)."""
    key = ("sents", unit.id)
    if key not in index.memo:
        index.memo[key] = [(s, frozenset(index.tokenizer(s))) for s in split_sentences(unit.text)]
    return index.memo[key]


def warm(index: Index) -> None:
    """Fill the lazily computed sentence token sets of every retrievable unit now (≈ 0.5 s of
    jieba on the plan), so a server's first questions do not pay for them."""
    for units in index.retrievable.values():
        for u in units:
            sentence_tokens(index, u)


def coverage(index: Index, q_tokens: Iterable[str], unit: Unit) -> float:
    """Share of the question's IDF mass found in the unit's single best sentence (0–1)."""
    weights = {t: idf(index, t) for t in set(q_tokens)}
    total = sum(weights.values())
    if not total:
        return 0.0
    sents = sentence_tokens(index, unit) or [(unit.text, frozenset(index.tokenizer(unit.text)))]
    return max(sum(w for t, w in weights.items() if t in toks) for _, toks in sents) / total


# ----------------------------------------------------------------------------- routes


def routed_units(index: Index, q: Query, docs: Iterable[str]) -> list[Unit]:
    """Units the question names explicitly, in reading order."""
    out: list[Unit] = []
    for d in docs:
        doc = index.docs[d]
        if q.indicator_nos:
            out += [
                u
                for u in index.retrievable[d]
                if u.kind == KIND_INDICATOR and u.location.indicator_no in q.indicator_nos
            ]
        if q.column_no is not None:
            out += [
                u
                for u in index.retrievable[d]
                if u.location.column_no == q.column_no and u.kind in (KIND_ITEM, KIND_INDICATOR)
            ]
        if q.chapter_no is not None and q.content_chars <= 2:
            # a navigation question (「第七章讲什么」): the chapter's intro, then each section's lead
            ch = next((c for c in doc.chapters if c.no == q.chapter_no), None)
            if ch is not None:
                if q.section_no is not None:
                    sec = next((s for s in ch.sections if s.no == q.section_no), None)
                    ids = list(sec.unit_ids) if sec else []
                else:
                    ids = list(ch.intro_ids) + [s.unit_ids[0] for s in ch.sections if s.unit_ids]
                out += [index.units[i] for i in ids if i in index.units]
    seen: set[str] = set()
    return [u for u in out if not (u.id in seen or seen.add(u.id))]


def in_scope(u: Unit, q: Query) -> bool:
    if q.chapter_no is not None and u.location.chapter_no != q.chapter_no:
        return False
    return q.section_no is None or q.chapter_no is None or u.location.section_no == q.section_no


@dataclass
class SearchTrace:
    """What each step produced (for the benchmark and for debugging), with timings in ms."""

    query: Query | None = None
    bm25: list[tuple[str, float]] = field(default_factory=list)
    dense: list[tuple[str, float]] = field(default_factory=list)
    routed: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)


def search(
    index: Index,
    question: str,
    k: int = 5,
    *,
    doc: str | None = None,
    chapter: int | None = None,
    mode: str = "hybrid",
    trace: SearchTrace | None = None,
) -> list[Hit]:
    """Top-``k`` units for a question. ``mode`` is "hybrid", "bm25" or "dense" (for benchmarks).

    ``doc`` and ``chapter`` restrict the candidates. An empty or unanswerable question gives [].
    """
    t0 = time.perf_counter()
    trace = trace if trace is not None else SearchTrace()
    q = analyze(question, index)
    trace.query = q
    docs = [doc] if doc else list(index.docs)
    docs = [d for d in docs if d in index.docs]
    if not q.normalized or not docs:
        return []
    t1 = time.perf_counter()
    where = {"chapter_no": chapter} if chapter is not None else None
    if mode in ("hybrid", "bm25"):
        trace.bm25 = bm25_ranking(index, q, docs)
    t2 = time.perf_counter()
    if mode in ("hybrid", "dense"):
        trace.dense = dense_ranking(index, q, docs, where=where)
    t3 = time.perf_counter()
    scores = fuse(trace.bm25, trace.dense, weights=(BM25_WEIGHT, 1.0))
    if mode == "hybrid" and scores:
        # Rerank the fused candidates by their best single sentence: the plan's paragraphs are
        # long and multi-topic, and the sentence that answers is what matters.
        q_tokens = index.tokenizer(q.normalized)
        top = max(scores.values())
        scores = {
            uid: s / top + SENTENCE_WEIGHT * coverage(index, q_tokens, index.units[uid])
            for uid, s in sorted(scores.items(), key=lambda x: -x[1])[:RERANK]
        }
    sources: dict[str, set[str]] = {}
    for name, ranking in (("bm25", trace.bm25), ("dense", trace.dense)):
        for uid, _ in ranking:
            sources.setdefault(uid, set()).add(name)
    if mode == "hybrid":
        routed = routed_units(index, q, docs)
        trace.routed = [u.id for u in routed]
        for rank, u in enumerate(routed):
            scores[u.id] = ROUTE_BONUS + 1.0 / (1 + rank) * 0.1 + scores.get(u.id, 0.0) * 0.01
            sources.setdefault(u.id, set()).add("route")
        if q.chapter_no is not None:
            for uid in list(scores):
                if in_scope(index.units[uid], q):
                    scores[uid] += SCOPE_BONUS
        # a footnote ranks just after the indicator row it annotates, not instead of it
        for uid in list(scores):
            if index.units[uid].kind == KIND_NOTE and not any(
                index.units[x].kind == KIND_INDICATOR for x in scores
            ):
                scores[uid] *= 0.5
    hits = [
        Hit(index.units[uid], s, tuple(sorted(sources.get(uid, ()))))
        for uid, s in scores.items()
        if chapter is None or index.units[uid].location.chapter_no == chapter
    ]
    hits.sort(key=lambda h: -h.score)
    t4 = time.perf_counter()
    trace.timings_ms.update(
        analyze=(t1 - t0) * 1000, bm25=(t2 - t1) * 1000, dense=(t3 - t2) * 1000, fuse=(t4 - t3) * 1000
    )
    return hits[:k]
