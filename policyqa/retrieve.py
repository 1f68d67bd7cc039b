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

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from policyqa import stats
from policyqa.errors import BackendError
from policyqa.index import ALL, Index
from policyqa.models import KIND_INDICATOR, KIND_NOTE, Hit, Unit
from policyqa.query import Query, analyze, normalize_question  # noqa: F401 - re-exported
from policyqa.text import split_sentences

RRF_K = 60
BM25_WEIGHT = 1.0  # relative to dense; chosen on the dev split by eval/bench_retrieval.py
CANDIDATES = 40
SENTENCE_WEIGHT = 1.0  # best-sentence coverage vs normalised fused score; chosen on the dev split
RERANK = 20
ROUTE_BONUS = 10.0  # above any fused + reranked score (each ≤ 1 + SENTENCE_WEIGHT)
SCOPE_BONUS = 3.0


def _search_query(question: str | Query, index: Index) -> Query:
    return question if isinstance(question, Query) else analyze(question, index)


# ----------------------------------------------------------------------------- rankings


def _selection(index: Index, docs: list[str]) -> list[str] | None:
    """The documents to filter to, or None when ``docs`` is the whole library (no filter)."""
    if len(docs) >= len(index.docs) and set(docs) >= index.docs.keys():
        return None
    return docs


def bm25_ranking(index: Index, q: Query, docs: Iterable[str]) -> list[tuple[str, float]]:
    """The top ``CANDIDATES`` units of ``docs`` by BM25: the library's one index is scored once;
    one document is its row range, several a mask over the rows (no work per document)."""
    tokens = index.tokenizer(q.normalized)
    if not tokens or not index.rows:
        return []
    r = index.bm25[ALL]
    known = [t for t in tokens if t in r.vocab_dict]
    if not known:
        return []
    scores = r.get_scores(known)
    chosen = _selection(index, list(docs))
    offset = 0
    if chosen is not None and len(chosen) == 1:
        offset, end = index.doc_rows.get(chosen[0], (0, 0))
        scores = scores[offset:end]
    elif chosen is not None:
        allowed = np.zeros(len(index.doc_ord), dtype=bool)
        allowed[[index.doc_ord[d] for d in chosen if d in index.doc_ord]] = True
        scores = np.where(allowed[index.row_doc], scores, 0.0)
    k = min(CANDIDATES, len(scores))
    if k == 0:
        return []
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(index.rows[offset + int(i)].id, float(scores[i])) for i in top if scores[i] > 0]


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


def doc_filter(index: Index, docs: Iterable[str], where: dict | None = None) -> dict | None:
    """A Chroma ``where`` for ``docs`` (none for the whole library), and'ed with ``where``."""
    chosen = _selection(index, list(docs))
    clauses = [where] if where else []
    if chosen is not None:
        clauses.append({"doc_id": chosen[0]} if len(chosen) == 1 else {"doc_id": {"$in": chosen}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def dense_ranking(
    index: Index, q: Query, docs: Iterable[str], vector: list[float] | None = None, where: dict | None = None
) -> list[tuple[str, float]]:
    """The top ``CANDIDATES`` units of ``docs`` by cosine: one query of the library's one
    collection, the documents as a ``where`` filter on ``doc_id``."""
    vec = vector if vector is not None else query_vector(index, q.normalized)
    store = index.stores[ALL]
    try:
        results = store._collection.query(  # noqa: SLF001 - by vector, ids only: no re-embedding
            query_embeddings=[vec],
            n_results=CANDIDATES,
            where=doc_filter(index, docs, where),
            include=["distances"],
        )
    except Exception as e:  # a Chroma server gone, a vector store damaged on disk
        raise vector_store_error(index, e) from e
    out = [(i, 1.0 - float(dist)) for i, dist in zip(results["ids"][0], results["distances"][0], strict=True)]
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


idf = stats.idf
sentence_tokens = stats.sentence_tokens


def warm(index: Index) -> None:
    """Fill the sentence token sets of every retrievable unit now, so a server's first questions
    do not pay for them: read from the build's ``sentences.jsonl`` (written by ingest), computed
    with jieba only for a build without it. Then the homophone table."""
    from policyqa import spelling

    st = stats.of(index)
    loaded = _stored_sentences(index)
    for units in index.retrievable.values():
        for u in units:
            if u.id in st.sentences:
                continue
            toks = loaded.get(u.id) if loaded else None
            sents = split_sentences(u.text)
            if toks is not None and len(toks) == len(sents):
                st.sentences[u.id] = [(x, frozenset(t)) for x, t in zip(sents, toks, strict=True)]
            else:
                sentence_tokens(index, u)
    spelling.warm(index)


def _stored_sentences(index: Index) -> dict[str, list[list[str]]] | None:
    path = index.path / "sentences.jsonl"
    try:
        with path.open(encoding="utf-8") as f:
            lines = [json.loads(line) for line in f]
    except (OSError, ValueError):
        return None
    if len(lines) != len(index.rows):
        return None
    return {u.id: toks for u, toks in zip(index.rows, lines, strict=True)}


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
    """Units the question names explicitly, in reading order (looked up by (doc, number))."""
    out: list[Unit] = []
    for d in docs:
        rows = [u for no in q.indicator_nos for u in index.by_indicator.get((d, no), [])]
        out += sorted(rows, key=lambda u: index.row_of[u.id]) if len(q.indicator_nos) > 1 else rows
        if q.column_no is not None:
            out += index.by_column.get((d, q.column_no), [])
        if q.chapter_no is not None and q.content_chars <= 2:
            # a navigation question (「第七章讲什么」): the chapter's intro, then each section's lead
            ch = index.by_chapter.get((d, q.chapter_no))
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
    # the question's vector, once per ask: with the query cache off (or evicted) the evidence
    # step would otherwise embed the same text a second time
    vector: list[float] | None = None
    query_text: str = ""  # the text ``vector`` embeds
    bm25: list[tuple[str, float]] = field(default_factory=list)
    dense: list[tuple[str, float]] = field(default_factory=list)
    routed: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)


def search(
    index: Index,
    question: str | Query,
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
    q = _search_query(question, index)
    trace.query = q
    doc = doc or q.doc
    docs = [doc] if doc else list(q.scope or index.docs)
    docs = [d for d in docs if d in index.docs]
    if not q.normalized or not docs:
        return []
    t1 = time.perf_counter()
    where = {"chapter_no": chapter} if chapter is not None else None
    if mode in ("hybrid", "bm25"):
        trace.bm25 = bm25_ranking(index, q, docs)
    t2 = time.perf_counter()
    if mode in ("hybrid", "dense"):
        if trace.vector is None or trace.query_text != q.normalized:
            trace.vector, trace.query_text = query_vector(index, q.normalized), q.normalized
        trace.dense = dense_ranking(index, q, docs, vector=trace.vector, where=where)
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
