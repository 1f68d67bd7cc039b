"""Pure metric functions for evaluating policyqa against the gold set in ``eval/questions.jsonl``.

Everything here is deterministic and does no I/O: the caller runs the system, then passes the
answer contract (``Answer.to_dict()``), the ranked retrieval locations and the latency in.

Metric families:

* **Locations** — :func:`location_matches`, :func:`hit_at_k`, :func:`reciprocal_rank`,
  :func:`location_accuracy`, :func:`first_citation_at_gold`. Gold entries are
  ``{"chapter": c}``, ``{"chapter": c, "section": s}``, ``{"column": n}`` or ``{"indicator": n}``.
* **Answers** — :func:`key_fact_hit`, :func:`is_refusal`.
* **Citations** — adapted from ALCE (Gao et al., 2023, "Enabling Large Language Models to
  Generate Text with Citations"): :func:`split_statements`, :func:`statement_markers`,
  :func:`supports`, :func:`citation_scores`, defined in ``policyqa.check`` (the citation checker
  uses the same rule) and re-exported here. ALCE judges support with an NLI model; here
  :func:`supports` is a deterministic surface rule (numbers + character bigrams), so it can be
  run offline and unit-tested, at the price of missing paraphrases and cross-language support.
* **Quotes** — :func:`quote_valid` (the quote really is in the source, whitespace aside).
* **Aggregation** — :func:`score_question` (one question → one row), :func:`percentile`,
  :func:`aggregate` (rows → the metric table, overall and by type / split).

Not covered: answer fluency, completeness beyond the key facts, and multi-document gold sets
(gold entries name no document; see :func:`location_matches`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from policyqa.check import (
    FULLWIDTH,
    STOP_PHRASES,
    SUPPORT_THRESHOLD,
    citation_scores,
    is_refusal,
    numbers,
    split_statements,
    statement_markers,
    supports,
    tokens,
)
from policyqa.check import as_dict as _as_dict
from policyqa.text import canon, quote_in_source, to_simplified

__all__ = [
    "STOP_PHRASES",
    "SUPPORT_THRESHOLD",
    "aggregate",
    "citation_scores",
    "first_citation_at_gold",
    "hit_at_k",
    "is_refusal",
    "key_fact_hit",
    "location_accuracy",
    "location_matches",
    "normalise",
    "numbers",
    "percentile",
    "quote_valid",
    "reciprocal_rank",
    "score_question",
    "split_statements",
    "statement_markers",
    "supports",
    "tokens",
]

# ---------------------------------------------------------------------------------------------
# Locations
# ---------------------------------------------------------------------------------------------

GOLD_KEYS = frozenset({"doc", "chapter", "section", "column", "indicator", "article"})


def location_matches(location: Mapping[str, Any], gold: Mapping[str, Any]) -> bool:
    """Does a unit's ``location`` fall at one ``gold`` entry?

    ``location`` is the answer contract's location dict (``doc``, ``chapter_no``, ``chapter``,
    ``section_no``, ``section``, ``column_no``, ``column``, ``indicator_no``, ``indicator``;
    numbers are ints or None). Rules, per key present in ``gold`` (all present keys must hold):

    * ``chapter`` matches ``chapter_no``; with ``section`` also ``section_no`` must match. So a
      chapter/section gold matches *every* unit placed there, including 专栏 items and the
      indicator rows that sit inside that section (专栏1 is in 第二章第三节). A chapter-only gold
      also matches the chapter's intro paragraphs (``section_no`` None); a section gold does not.
    * ``column`` matches ``column_no`` — every item of that 专栏; for 专栏1 that is every
      indicator row and the table's footnotes.
    * ``indicator`` matches ``indicator_no`` — that row of the indicator table only.
    * ``doc`` (optional) matches ``doc``; without it the document is not checked, because the
      gold set is written for one plan.

    An empty gold entry, unknown keys, or ``section`` without ``chapter`` never match: a
    malformed gold entry should fail loudly in the gold-set tests rather than match everything.
    """
    loc = _as_dict(location)
    if not gold or set(gold) - GOLD_KEYS or ("section" in gold and "chapter" not in gold):
        return False
    fields = {
        "doc": "doc",
        "chapter": "chapter_no",
        "section": "section_no",
        "column": "column_no",
        "indicator": "indicator_no",
        "article": "article_no",
    }
    return all(loc.get(fields[k]) == v for k, v in gold.items())


def _at_gold(location: Mapping[str, Any], gold: Sequence[Mapping[str, Any]]) -> bool:
    return any(location_matches(location, g) for g in gold)


def hit_at_k(
    ranked_locations: Sequence[Mapping[str, Any]], gold: Sequence[Mapping[str, Any]], k: int
) -> bool:
    """Is any of the top ``k`` retrieved locations at a gold location? (False for k <= 0.)"""
    return k > 0 and any(_at_gold(loc, gold) for loc in list(ranked_locations)[:k])


def reciprocal_rank(
    ranked_locations: Sequence[Mapping[str, Any]], gold: Sequence[Mapping[str, Any]]
) -> float:
    """1 / rank of the first retrieved location at gold (ranks from 1); 0.0 when none is."""
    for i, loc in enumerate(ranked_locations, 1):
        if _at_gold(loc, gold):
            return 1.0 / i
    return 0.0


# ---------------------------------------------------------------------------------------------
# Text normalisation shared by key facts and support
# ---------------------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """The comparison form for key facts: ``policyqa.text.canon`` (repaired, whitespace removed),
    then full-width folded, simplified and case-folded.

    Traditional → simplified is included so that an answer written in 繁體 still contains the
    (simplified) key fact; it is applied to both sides, so it can only merge, never split, facts.
    """
    return to_simplified(canon(text).translate(FULLWIDTH)).casefold()


# ---------------------------------------------------------------------------------------------
# Answers
# ---------------------------------------------------------------------------------------------


def key_fact_hit(answer_text: str, key_facts: Sequence[Sequence[str]]) -> bool:
    """Does the answer contain at least one alternative of *every* key-fact group?

    Both sides go through :func:`normalise` (whitespace removed, full-width ％（）and digits
    folded to ASCII, traditional → simplified, case-folded), then a plain substring test.
    Scope: exact surface facts (numbers, names, titles). Left out: paraphrases, Chinese
    numerals written differently (八 vs 8), and number boundaries — "90" is found inside "90.6",
    so a gold fact should be specific enough to make that harmless. An empty ``key_facts``
    list is vacuously satisfied; an empty group can never be.
    """
    text = normalise(answer_text or "")
    return all(any(normalise(alt) and normalise(alt) in text for alt in group) for group in key_facts)


# ---------------------------------------------------------------------------------------------
# Citations (ALCE-style): the rule lives in policyqa.check, so the citation checker
# (`policyqa check`) and this evaluation judge support the same way
# ---------------------------------------------------------------------------------------------


def _citations(answer: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [_as_dict(c) for c in _as_dict(answer).get("citations", ())]


def location_accuracy(answer: Mapping[str, Any], gold: Sequence[Mapping[str, Any]]) -> bool:
    """Is any citation of the answer at a gold location? (False when there are none.)"""
    return any(_at_gold(c.get("location") or {}, gold) for c in _citations(answer))


def first_citation_at_gold(answer: Mapping[str, Any], gold: Sequence[Mapping[str, Any]]) -> bool:
    """Is the *first* citation at a gold location?

    "First" is the citation named by the first marker in the answer text that resolves to a
    citation; when the text has no such marker, the citation with the lowest ``n``.
    """
    cits = _citations(answer)
    if not cits:
        return False
    by_n = {int(c["n"]): c for c in cits}
    first = next((by_n[m] for m in statement_markers(_as_dict(answer).get("answer", "")) if m in by_n), None)
    if first is None:
        first = by_n[min(by_n)]
    return _at_gold(first.get("location") or {}, gold)


def quote_valid(quote: str, source_canon: str) -> bool:
    """Is the quote verbatim in the source (``canon(source_text)``), whitespace aside?

    Delegates to :func:`policyqa.text.quote_in_source`, the same check the system applies, so
    the evaluation and the product agree on what "verbatim" means. Empty quotes are invalid.
    """
    return quote_in_source(quote, source_canon)


# ---------------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------------


def percentile(values: Iterable[float | None], p: float) -> float | None:
    """The p-th percentile (0–100) with linear interpolation between closest ranks (numpy's
    default). None values are ignored; None when nothing is left."""
    xs = sorted(float(v) for v in values if v is not None)
    if not xs:
        return None
    if not 0 <= p <= 100:
        raise ValueError(f"percentile p must be in [0, 100], got {p}")
    pos = (len(xs) - 1) * p / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def score_question(
    question: Mapping[str, Any],
    answer: Mapping[str, Any] | None = None,
    ranked_locations: Sequence[Mapping[str, Any]] | None = None,
    latency_ms: float | None = None,
    source_canon: str | Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One gold question plus what the system did → one row for :func:`aggregate`.

    ``question`` is a line of ``questions.jsonl``. ``answer`` (the contract dict),
    ``ranked_locations`` (retrieval order) and ``latency_ms`` are optional; metrics whose input
    is missing are simply absent from the row. ``source_canon`` is ``canon(plan_text)``, or a
    mapping doc id → canon text, for :func:`quote_valid`.

    Retrieval and answer-content metrics are only computed for answerable questions; refusal
    correctness only for unanswerable ones. A refused answerable question gets key_fact and
    location False (it gave neither).
    """
    answerable = bool(question.get("answerable", True))
    gold = question.get("gold", [])
    row: dict[str, Any] = {
        "id": question.get("id"),
        "type": question.get("type"),
        "split": question.get("split"),
        "answerable": answerable,
    }
    if ranked_locations is not None and answerable:
        locs = [_as_dict(x) for x in ranked_locations]
        row["hit1"] = hit_at_k(locs, gold, 1)
        row["hit5"] = hit_at_k(locs, gold, 5)
        row["rr"] = reciprocal_rank(locs, gold)
    if answer is not None:
        a = _as_dict(answer)
        refused = is_refusal(a)
        row["refused"] = refused
        if answerable:
            row["key_fact"] = (not refused) and key_fact_hit(
                a.get("answer", ""), question.get("key_facts", [])
            )
            row["location_ok"] = (not refused) and location_accuracy(a, gold)
            row["first_citation_ok"] = (not refused) and first_citation_at_gold(a, gold)
        else:
            row["refusal_correct"] = refused
        row["citation"] = citation_scores(a)
        if source_canon is not None:
            cits = _citations(a)
            valid = 0
            for c in cits:
                src = source_canon
                if isinstance(source_canon, Mapping):
                    src = source_canon.get((c.get("location") or {}).get("doc") or "", "")
                valid += quote_valid(str(c.get("quote") or ""), src)
            row["quotes_total"] = len(cits)
            row["quotes_valid"] = valid
    if latency_ms is not None:
        row["latency_ms"] = float(latency_ms)
    return row


def _mean(values: Iterable[float | bool | None]) -> float | None:
    xs = [float(v) for v in values if v is not None]
    return sum(xs) / len(xs) if xs else None


def _table(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    ans = [r for r in rows if r.get("answerable", True)]
    oos = [r for r in rows if not r.get("answerable", True)]
    cit = [r["citation"] for r in rows if r.get("citation") and not r["citation"]["refusal"]]
    quotes_total = sum(r.get("quotes_total", 0) for r in rows)
    return {
        "n": len(rows),
        "n_answerable": len(ans),
        "n_out_of_scope": len(oos),
        "hit@1": _mean(r.get("hit1") for r in ans),
        "hit@5": _mean(r.get("hit5") for r in ans),
        "mrr": _mean(r.get("rr") for r in ans),
        "key_fact_accuracy": _mean(r.get("key_fact") for r in ans),
        "refusal_accuracy": _mean(r.get("refusal_correct") for r in oos),
        "false_refusal_rate": _mean(r.get("refused") for r in ans),
        # Macro averages over non-refusal answers, as in ALCE.
        "citation_recall": _mean(c["recall"] for c in cit),
        "citation_precision": _mean(c["precision"] for c in cit),
        "location_accuracy": _mean(r.get("location_ok") for r in ans),
        "first_citation_accuracy": _mean(r.get("first_citation_ok") for r in ans),
        # Micro: over all citations, since each quote is checked on its own.
        "quote_validity": (sum(r.get("quotes_valid", 0) for r in rows) / quotes_total)
        if quotes_total
        else None,
        "latency_p50_ms": percentile((r.get("latency_ms") for r in rows), 50),
        "latency_p95_ms": percentile((r.get("latency_ms") for r in rows), 95),
    }


def aggregate(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-question rows (from :func:`score_question`) → the metric table.

    Returns ``{"overall": {...}, "by_type": {type: {...}}, "by_split": {split: {...}}}``; each
    table holds n counts, hit@1, hit@5, MRR (answerable questions with retrieval results),
    key-fact accuracy and false-refusal rate (answerable), refusal accuracy (out of scope),
    citation recall/precision (macro over non-refusal answers), location and first-citation
    accuracy (answerable), quote validity (micro over citations) and latency p50/p95.
    A metric is None when no row provides its input (e.g. no out-of-scope question in a type).
    """
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    by_split: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_type.setdefault(str(r.get("type")), []).append(r)
        by_split.setdefault(str(r.get("split")), []).append(r)
    return {
        "overall": _table(rows),
        "by_type": {t: _table(rs) for t, rs in sorted(by_type.items())},
        "by_split": {s: _table(rs) for s, rs in sorted(by_split.items())},
    }
