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
  :func:`supports`, :func:`citation_scores`. ALCE judges support with an NLI model; here
  :func:`supports` is a deterministic surface rule (numbers + character bigrams), so it can be
  run offline and unit-tested, at the price of missing paraphrases and cross-language support.
* **Quotes** — :func:`quote_valid` (the quote really is in the source, whitespace aside).
* **Aggregation** — :func:`score_question` (one question → one row), :func:`percentile`,
  :func:`aggregate` (rows → the metric table, overall and by type / split).

Not covered: answer fluency, completeness beyond the key facts, and multi-document gold sets
(gold entries name no document; see :func:`location_matches`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from policyqa.text import CJK, canon, quote_in_source, repair, to_simplified

# ---------------------------------------------------------------------------------------------
# Locations
# ---------------------------------------------------------------------------------------------

GOLD_KEYS = frozenset({"doc", "chapter", "section", "column", "indicator"})


def _as_dict(obj: Any) -> Mapping[str, Any]:
    """Accept both the JSON form and the dataclass (anything with ``to_dict``)."""
    if obj is None:
        return {}
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return obj


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

# Full-width ASCII variants (！ … ～, incl. ％ （ ） ０-９ Ａ-Ｚ) → ASCII. Done by hand rather
# than NFKC, because NFKC also rewrites ① → 1 and Ⅲ → III, which would create false numbers.
_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_WS = re.compile(r"\s+")


def _norm_spaced(text: str) -> str:
    """Repaired (PDF spaces next to CJK dropped, PM_{2.5} → PM2.5), full-width folded,
    simplified, case-folded; spaces between Latin words/numbers are kept."""
    return to_simplified(repair(text).translate(_FULLWIDTH)).casefold()


def normalise(text: str) -> str:
    """The comparison form for key facts: ``policyqa.text.canon`` (repaired, whitespace removed),
    then full-width folded, simplified and case-folded.

    Traditional → simplified is included so that an answer written in 繁體 still contains the
    (simplified) key fact; it is applied to both sides, so it can only merge, never split, facts.
    """
    return to_simplified(canon(text).translate(_FULLWIDTH)).casefold()


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


def is_refusal(answer: Mapping[str, Any]) -> bool:
    """Did the system decline to answer? Uses the contract's ``answerable`` flag only
    (``answerable is False``); the wording of the answer is not inspected."""
    return _as_dict(answer).get("answerable") is False


# ---------------------------------------------------------------------------------------------
# Citations (ALCE-style)
# ---------------------------------------------------------------------------------------------

# [1]  [1][2]  [1,2]  [1，2]  [1、2]  [1-3]
_MARKER = re.compile(r"\[\s*(\d+(?:\s*[-–]\s*\d+)?(?:\s*[,，、]\s*\d+(?:\s*[-–]\s*\d+)?)*)\s*\]")
_LEADING_MARKERS = re.compile(r"^\s*((?:\[\s*\d+(?:\s*[-–,，、]\s*\d+)*\s*\]\s*)+)")
_SENT_END = re.compile(r"(?<=[。！？；!?;])|(?<=\.)\s+")
_HEADING = re.compile(r"^\s*#{1,6}(\s|$)")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_LIST_MARK = re.compile(
    r"^\s*(?:>\s*)*(?:[-*+•·]\s+|\d+[.)]\s+|\d+、|[（(]\d+[)）]\s*|[一二三四五六七八九十]+、)"
)
# A line that opens the sources list: 「出处」「**出处：**」「### 引文出处」「Sources:」…
_SOURCES_HEAD = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:[*_]{1,3}\s*)?(?:出处|引文出处|引用出处|参考出处|引用|引文|来源|参考来源|sources?|references?)"
    r"\s*(?:[*_]{1,3})?\s*(?:[:：]|$)",
    re.I,
)
# A line that *starts* with a marker is a source-list entry ("[1] 第五章… 「…」"), not a claim.
_SOURCE_ENTRY = re.compile(r"^\s*(?:[-*+]\s+)?\[\s*\d+\s*\]")
_EMPHASIS = re.compile(r"\*\*|__|`")
_CONTENT = re.compile(rf"[0-9A-Za-z{CJK}]")


def _has_content(text: str) -> bool:
    return bool(_CONTENT.search(_MARKER.sub("", text)))


def split_statements(answer_markdown: str) -> list[str]:
    """Split a Markdown answer into the statements that each need support.

    Splits on sentence ends 。！？；(and ``!?;``, and ``.`` followed by a space, for English)
    and on line breaks, so every Markdown list item is its own statement. Dropped: headings
    (``#``), horizontal rules, table separator rows, empty pieces, and the sources list — the
    first line that reads like a 出处/来源/Sources heading and everything after it, plus any line
    that starts with a ``[n]`` marker. List markers, blockquote ``>`` and emphasis are removed.

    Markers that follow the sentence end (「…62.6%。[1]」) belong to the sentence before: they are
    moved back onto it. Returned statements keep their markers (see :func:`statement_markers`).
    Not handled: sentences split across lines without punctuation (each line is a statement).
    """
    statements: list[str] = []
    for raw_line in (answer_markdown or "").splitlines():
        if _SOURCES_HEAD.match(raw_line):
            break
        if _HEADING.match(raw_line) or _RULE.match(raw_line) or _TABLE_SEP.match(raw_line):
            continue
        if _SOURCE_ENTRY.match(raw_line):
            continue
        line = _EMPHASIS.sub("", _LIST_MARK.sub("", raw_line, count=1)).replace("|", " ").strip()
        if not line:
            continue
        pieces = [p for p in _SENT_END.split(line) if p and p.strip()]
        line_statements: list[str] = []
        for piece in pieces:
            lead = _LEADING_MARKERS.match(piece)
            if lead and line_statements:
                # 「…。[1]下一句」: the markers close the previous sentence.
                line_statements[-1] = line_statements[-1].rstrip() + lead.group(1).strip()
                piece = piece[lead.end() :]
            if _has_content(piece):
                line_statements.append(piece.strip())
            elif line_statements and _MARKER.search(piece):
                line_statements[-1] = line_statements[-1].rstrip() + piece.strip()
        statements.extend(line_statements)
    return statements


def statement_markers(statement: str) -> list[int]:
    """The citation numbers a statement carries: ``[1]``, ``[1][2]``, ``[1,2]``, ``[1，2]``,
    ``[1、2]`` and ranges ``[1-3]``. Order of first appearance, duplicates dropped."""
    out: list[int] = []
    for m in _MARKER.finditer(statement or ""):
        for part in re.split(r"[,，、]", m.group(1)):
            bounds = [int(x) for x in re.split(r"[-–]", part.strip()) if x.strip()]
            nums = (
                range(bounds[0], bounds[-1] + 1)
                if len(bounds) == 2 and bounds[0] <= bounds[1]
                else bounds[:1]
            )
            for n in nums:
                if n not in out:
                    out.append(n)
    return out


SUPPORT_THRESHOLD = 0.6

# Phrases that say where a statement comes from or frame a table value rather than claim
# anything: they are cut out of the statement (never out of the quote) before the bigram
# coverage is measured, so that 「根据规划，2025年目标为62.6%」 is judged on what it claims.
# The 2020年/2025年 framings are here because an indicator-table row carries its values but
# not the years — those are in the table head.
STOP_PHRASES: tuple[str, ...] = (
    "根据规划",
    "按照规划",
    "规划提出",
    "规划要求",
    "规划明确",
    "规划指出",
    "规划规定",
    "规划显示",
    "本规划",
    "该规划",
    "其中",
    "以及",
    "此外",
    "另外",
    "同时",
    "并且",
    "具体包括",
    "主要包括",
    "包括",
    "分别为",
    "分别是",
    "如下",
    "2020年基数为",
    "2020年的值为",
    "2020年数值为",
    "2020年为",
    "2020年是",
    "2025年的目标为",
    "2025年目标为",
    "2025年的目标是",
    "2025年目标是",
    "目标值为",
    "目标为",
    "目标是",
    "指标属性为",
    "属性为",
    "属于",
)
_STOP_RE = re.compile("|".join(re.escape(p) for p in sorted(STOP_PHRASES, key=len, reverse=True)))
# A number not glued to a Latin name on its left (PM2.5, CO2 are names, not quantities).
_NUMBER = re.compile(r"(?<![A-Za-z\d.])\d+(?:\.\d+)?")
_CJK_RUN = re.compile(f"[{CJK}]+")
_LATIN_WORD = re.compile(r"[a-z]{2,}")


def _numbers(text: str) -> tuple[set[Decimal], set[Decimal]]:
    """(all numbers, the years among them) in already-normalised, space-preserving text.

    A year is a number 1900–2099 directly followed by 年. ``%`` is ignored (97.7% ≡ 97.7), and
    values compare numerically (62.60 ≡ 62.6). Chinese numerals are not read.
    """
    nums: set[Decimal] = set()
    years: set[Decimal] = set()
    for m in _NUMBER.finditer(text):
        try:
            value = Decimal(m.group(0))
        except InvalidOperation:  # pragma: no cover - the regex only yields decimals
            continue
        nums.add(value)
        if text[m.end() : m.end() + 1] == "年" and 1900 <= value <= 2099 and "." not in m.group(0):
            years.add(value)
    return nums, years


def _tokens(text: str) -> set[str]:
    """Content tokens: character bigrams inside CJK runs, plus Latin words of 2+ letters.

    Single CJK characters between punctuation are left out: they are mostly function words.
    """
    tokens: set[str] = set()
    for run in _CJK_RUN.findall(text):
        tokens.update(run[i : i + 2] for i in range(len(run) - 1))
    tokens.update(_LATIN_WORD.findall(text))
    return tokens


def supports(statement: str, quote: str, threshold: float = SUPPORT_THRESHOLD) -> bool:
    """Deterministic support rule: does ``quote`` back ``statement``?

    Both are normalised (PDF repair, full-width folding, traditional → simplified, case-fold);
    ``[n]`` markers and :data:`STOP_PHRASES` are cut out of the statement. Then:

    1. **Numbers**: every number in the statement occurs among the quote's numbers (compared as
       values, with digit boundaries, so 62.6 is not found in 162.65 and 97.7% matches 97.7).
       Exception: a year (``2025年``) is only checked when the quote states some year itself;
       a quote with no year at all — an indicator-table row — can neither confirm nor contradict
       one. Known gap: 「2025年为62.5%」 is therefore accepted against the row 「62.5 62.6」.
    2. **Wording**: at least ``threshold`` of the statement's distinct content tokens (CJK
       character bigrams and Latin words, see :func:`_tokens`) occur in the quote.

    A statement with neither numbers nor tokens left is not supported (nothing to verify).
    Left out (the price of being deterministic): paraphrase and synonymy, negation, and
    support across languages — an English statement is not supported by a Chinese quote.
    """
    body = _STOP_RE.sub("，", _norm_spaced(_MARKER.sub(" ", statement or "")))
    quote_spaced = _norm_spaced(quote or "")

    s_nums, s_years = _numbers(body)
    q_nums, q_years = _numbers(quote_spaced)
    to_check = s_nums if q_years else s_nums - s_years
    if not to_check <= q_nums:
        return False

    s_tokens = _tokens(_WS.sub("", body))
    if not s_tokens:
        return bool(s_nums)
    q_tokens = _tokens(_WS.sub("", quote_spaced))
    return len(s_tokens & q_tokens) / len(s_tokens) >= threshold


def citation_scores(answer: Mapping[str, Any], threshold: float = SUPPORT_THRESHOLD) -> dict[str, Any]:
    """ALCE-style citation recall and precision counts for one answer.

    ``answer`` is the contract dict: ``answer`` (Markdown with inline ``[n]``) and
    ``citations`` (each with ``n``, ``quote``, ``location``); marker ``[n]`` refers to the
    citation whose ``n`` is n.

    * ``statements``: pieces from :func:`split_statements`.
    * ``supported`` (recall numerator): statements whose cited quotes, joined, support them
      (:func:`supports`). A statement without markers is ``uncited`` and unsupported.
    * ``citations_used`` (precision denominator): (statement, marker) pairs, including
      ``dangling`` markers that name no citation.
    * ``citations_supporting`` (precision numerator), as in ALCE: only for a supported
      statement, a citation counts if it supports the statement alone, or if the statement is
      no longer supported without it; otherwise it is an over-citation. Dangling markers
      never count.

    ``recall`` = supported / statements; ``precision`` = supporting / used (0.0 when there
    are statements but no citations, as in ALCE); both None when there are no statements.

    Refusals (``answerable`` False) are excluded: every count is 0, ``refusal`` is True and
    recall/precision are None, so :func:`aggregate` leaves them out of citation recall and
    precision — a correct refusal has nothing to cite, and refusal quality is measured by the
    refusal metrics instead.
    """
    a = _as_dict(answer)
    out: dict[str, Any] = {
        "refusal": is_refusal(a),
        "statements": 0,
        "supported": 0,
        "uncited": 0,
        "citations_used": 0,
        "citations_supporting": 0,
        "dangling": 0,
        "recall": None,
        "precision": None,
    }
    if out["refusal"]:
        return out
    quotes_by_n = {
        int(c["n"]): str(c.get("quote") or "") for c in (_as_dict(c) for c in a.get("citations", ()))
    }
    for statement in split_statements(a.get("answer", "")):
        out["statements"] += 1
        marks = statement_markers(statement)
        if not marks:
            out["uncited"] += 1
            continue
        out["citations_used"] += len(marks)
        cited = {m: quotes_by_n[m] for m in marks if m in quotes_by_n}
        out["dangling"] += len(marks) - len(cited)
        joint = bool(cited) and supports(statement, "\n".join(cited.values()), threshold)
        if not joint:
            continue
        out["supported"] += 1
        for m, quote in cited.items():
            if supports(statement, quote, threshold):
                out["citations_supporting"] += 1
                continue
            rest = [q for k, q in cited.items() if k != m]
            if not rest or not supports(statement, "\n".join(rest), threshold):
                out["citations_supporting"] += 1  # needed: the others alone do not support
    if out["statements"]:
        out["recall"] = out["supported"] / out["statements"]
        used = out["citations_used"]
        out["precision"] = out["citations_supporting"] / used if used else 0.0
    return out


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
