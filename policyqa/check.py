"""The citation checker: is every claim of an answer backed by a verbatim quote from the library,
found where the answer says it is?

Works on any answer in the contract — ours, an LLM's, another RAG system's or a person's:
``{"question", "answer" (Markdown with [n] markers), "citations": [{"n", "quote", "id"?, "label"?,
"location"?}]}``. ``id``, ``label`` and ``location`` are optional; what is given is checked.

This module also holds the statement splitting and support rule of the evaluation
(:func:`split_statements`, :func:`statement_markers`, :func:`numbers`, :func:`supports`,
:func:`citation_scores`, ALCE-style): ``eval/metrics.py`` imports them from here, so the checker
and the evaluation judge support by one rule (and ``policyqa`` never imports ``eval``).

Problem kinds (:data:`KINDS`), per answer:

* ``quote_not_found`` — the quote is not verbatim in any library document (after
  ``policyqa.text.canon``: PDF repair, whitespace removed).
* ``wrong_location`` — the quote is verbatim, but not in the unit ``id`` names, not in the
  document / chapter / section / 专栏 / indicator / article that ``location`` numbers name, or not
  under the 章/节/专栏/条 references its ``label`` contains; or ``id`` names no unit.
* ``unsupported_number`` — a number of a sentence that none of its cited quotes holds.
* ``unsupported_sentence`` — numbers are fine but the cited quotes do not cover the wording
  (:func:`supports`).
* ``uncited_sentence`` — a sentence with no ``[n]``.
* ``dangling_marker`` — an ``[n]`` with no citation n.
* ``unused_citation`` — a citation no marker uses.

Refusals: when ``outcome`` is ``not_covered`` or ``invalid`` (or, without ``outcome``,
``answerable`` is false) the answer's sentences say the documents do not cover the question; they
need no citation and are not judged for support. Their citations (the nearest sections) are still
checked: verbatim, at the location given, each used, each marker resolving. With ``outcome``
``partial`` uncited sentences are allowed (one of them says what the plan does not cover; which
one is not decided from the wording), cited ones are judged as usual.

Left out: location *titles* (only numbers and ids are compared), whether a quote is the best
one, paraphrase and cross-language support (the support rule is a surface rule, see
:func:`supports`), and anything outside the library (a quote from another plan is not found).
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policyqa.errors import InputError
from policyqa.refs import ARTICLE, CHAPTER, COLUMN, INDICATOR, SECTION, find_refs
from policyqa.text import CJK, canon, repair, to_simplified

if TYPE_CHECKING:
    from policyqa.index import Index
    from policyqa.models import Document, Unit

# ---------------------------------------------------------------------------------------------
# Statements and support (the evaluation's rule; eval/metrics.py re-exports these)
# ---------------------------------------------------------------------------------------------

# Full-width ASCII variants (！ … ～, incl. ％ （ ） ０-９ Ａ-Ｚ) → ASCII. Done by hand rather
# than NFKC, because NFKC also rewrites ① → 1 and Ⅲ → III, which would create false numbers.
FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_WS = re.compile(r"\s+")


def as_dict(obj: Any) -> Mapping[str, Any]:
    """Accept both the JSON form and the dataclass (anything with ``to_dict``)."""
    if obj is None:
        return {}
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return obj


def norm_spaced(text: str) -> str:
    """Repaired (PDF spaces next to CJK dropped, PM_{2.5} → PM2.5), full-width folded,
    simplified, case-folded; spaces between Latin words/numbers are kept."""
    return to_simplified(repair(text).translate(FULLWIDTH)).casefold()


def is_refusal(answer: Mapping[str, Any]) -> bool:
    """Did the system decline to answer? Uses the contract's ``answerable`` flag only
    (``answerable is False``); the wording of the answer is not inspected."""
    return as_dict(answer).get("answerable") is False


# [1]  [1][2]  [1,2]  [1，2]  [1、2]  [1-3]
MARKER = re.compile(r"\[\s*(\d+(?:\s*[-–]\s*\d+)?(?:\s*[,，、]\s*\d+(?:\s*[-–]\s*\d+)?)*)\s*\]")
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
    return bool(_CONTENT.search(MARKER.sub("", text)))


def _claim_lines(answer_markdown: str) -> Iterable[tuple[bool, str]]:
    """(is_heading, line) for the lines before the sources list, source entries left out."""
    for raw_line in (answer_markdown or "").splitlines():
        if _SOURCES_HEAD.match(raw_line):
            break
        if _RULE.match(raw_line) or _TABLE_SEP.match(raw_line) or _SOURCE_ENTRY.match(raw_line):
            continue
        yield bool(_HEADING.match(raw_line)), raw_line


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
    for heading, raw_line in _claim_lines(answer_markdown):
        if heading:
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
            elif line_statements and MARKER.search(piece):
                line_statements[-1] = line_statements[-1].rstrip() + piece.strip()
        statements.extend(line_statements)
    return statements


def _marker_numbers(group: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"[,，、]", group):
        bounds = [int(x) for x in re.split(r"[-–]", part.strip()) if x.strip()]
        nums = range(bounds[0], bounds[-1] + 1) if len(bounds) == 2 and bounds[0] <= bounds[1] else bounds[:1]
        out.extend(nums)
    return out


def statement_markers(statement: str) -> list[int]:
    """The citation numbers a statement carries: ``[1]``, ``[1][2]``, ``[1,2]``, ``[1，2]``,
    ``[1、2]`` and ranges ``[1-3]``. Order of first appearance, duplicates dropped."""
    out: list[int] = []
    for m in MARKER.finditer(statement or ""):
        for n in _marker_numbers(m.group(1)):
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


def numbers(text: str) -> tuple[set[Decimal], set[Decimal]]:
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


def tokens(text: str) -> set[str]:
    """Content tokens: character bigrams inside CJK runs, plus Latin words of 2+ letters.

    Single CJK characters between punctuation are left out: they are mostly function words.
    """
    out: set[str] = set()
    for run in _CJK_RUN.findall(text):
        out.update(run[i : i + 2] for i in range(len(run) - 1))
    out.update(_LATIN_WORD.findall(text))
    return out


def statement_body(statement: str) -> str:
    """What a statement claims, in the form :func:`supports` compares: markers and
    :data:`STOP_PHRASES` cut out, normalised (:func:`norm_spaced`)."""
    return _STOP_RE.sub("，", norm_spaced(MARKER.sub(" ", statement or "")))


def missing_numbers(statement: str, quote: str) -> set[Decimal]:
    """The statement's numbers that ``quote`` does not hold — step 1 of :func:`supports`.

    Years (``2025年``) only count when the quote states some year itself (see :func:`supports`).
    """
    s_nums, s_years = numbers(statement_body(statement))
    q_nums, q_years = numbers(norm_spaced(quote or ""))
    to_check = s_nums if q_years else s_nums - s_years
    return to_check - q_nums


def coverage(statement: str, quote: str) -> float | None:
    """Share of the statement's content tokens found in the quote — step 2 of :func:`supports`;
    None when the statement has no tokens left."""
    s_tokens = tokens(_WS.sub("", statement_body(statement)))
    if not s_tokens:
        return None
    q_tokens = tokens(_WS.sub("", norm_spaced(quote or "")))
    return len(s_tokens & q_tokens) / len(s_tokens)


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
       character bigrams and Latin words, see :func:`tokens`) occur in the quote.

    A statement with neither numbers nor tokens left is not supported (nothing to verify).
    Left out (the price of being deterministic): paraphrase and synonymy, negation, and
    support across languages — an English statement is not supported by a Chinese quote.
    """
    if missing_numbers(statement, quote):
        return False
    share = coverage(statement, quote)
    if share is None:
        return bool(numbers(statement_body(statement))[0])
    return share >= threshold


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
    recall/precision are None, so the aggregates leave them out of citation recall and
    precision — a correct refusal has nothing to cite, and refusal quality is measured by the
    refusal metrics instead.
    """
    a = as_dict(answer)
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
    quotes_by_n = _quotes_by_n(a)
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


def _quotes_by_n(answer: Mapping[str, Any]) -> dict[int, str]:
    cits = answer.get("citations") or ()  # a foreign answer may say "citations": null
    return {int(c["n"]): str(c.get("quote") or "") for c in (as_dict(c) for c in cits)}


# ---------------------------------------------------------------------------------------------
# The library: each document's canonical text and its units with locations
# ---------------------------------------------------------------------------------------------

# location keys that are compared (numbers and the document); titles are not
LOCATION_KEYS = ("doc", "chapter_no", "section_no", "column_no", "indicator_no", "article_no")
_REF_KEY = {
    CHAPTER: "chapter_no",
    SECTION: "section_no",
    COLUMN: "column_no",
    INDICATOR: "indicator_no",
    ARTICLE: "article_no",
}


@dataclass(frozen=True)
class LibraryDoc:
    """One document as the checker sees it: ``text`` is ``canon`` of the units joined in source
    order (the units tile the source), ``starts[i]`` is where ``units[i]`` begins in it;
    ``source`` is ``canon`` of the file itself where it was read (else equal to ``text``)."""

    id: str
    text: str
    starts: tuple[int, ...]
    units: tuple[Unit, ...]
    source: str

    def units_at(self, start: int, end: int) -> list[Unit]:
        """The units overlapping ``text[start:end]`` (units with no text never do)."""
        i = max(bisect.bisect_right(self.starts, start) - 1, 0)
        out = []
        while i < len(self.units) and self.starts[i] < end:
            stop = self.starts[i + 1] if i + 1 < len(self.starts) else len(self.text)
            if stop > max(start, self.starts[i]):
                out.append(self.units[i])
            i += 1
        return out


@dataclass(frozen=True)
class Library:
    """The documents a quote may come from, and every unit by id."""

    docs: Mapping[str, LibraryDoc]
    units: Mapping[str, Unit] = field(default_factory=dict)


def library_from_documents(docs: Iterable[Document], sources: Mapping[str, str] | None = None) -> Library:
    """A Library from parsed documents; ``sources`` maps doc id → source text (raw or canon)."""
    lib: dict[str, LibraryDoc] = {}
    units: dict[str, Unit] = {}
    for d in docs:
        starts, pieces, pos = [], [], 0
        for u in d.units:
            c = canon(u.text)
            starts.append(pos)
            pieces.append(c)
            pos += len(c)
            units[u.id] = u
        text = "".join(pieces)
        src = canon(sources[d.id]) if sources and d.id in sources else text
        lib[d.id] = LibraryDoc(id=d.id, text=text, starts=tuple(starts), units=tuple(d.units), source=src)
    return Library(docs=lib, units=units)


def load_library(kb_dir: Path) -> Library:
    """Parse kb/ (no index needed) and read each document's source file."""
    from ingest.load import load_kb, source_text

    docs = load_kb(Path(kb_dir))
    return library_from_documents(docs, {d.id: source_text(d) for d in docs})


def library_from_index(index: Index) -> Library:
    """The Library of an opened index (its documents and their canonical texts)."""
    return library_from_documents(index.docs.values(), index.source_canon)


# ---------------------------------------------------------------------------------------------
# Problems and results
# ---------------------------------------------------------------------------------------------

QUOTE_NOT_FOUND = "quote_not_found"
WRONG_LOCATION = "wrong_location"
UNSUPPORTED_NUMBER = "unsupported_number"
UNSUPPORTED_SENTENCE = "unsupported_sentence"
UNCITED_SENTENCE = "uncited_sentence"
DANGLING_MARKER = "dangling_marker"
UNUSED_CITATION = "unused_citation"
KINDS = (
    QUOTE_NOT_FOUND,
    WRONG_LOCATION,
    UNSUPPORTED_NUMBER,
    UNSUPPORTED_SENTENCE,
    UNCITED_SENTENCE,
    DANGLING_MARKER,
    UNUSED_CITATION,
)
KIND_NAMES = {
    QUOTE_NOT_FOUND: "引文不在知识库原文中",
    WRONG_LOCATION: "出处位置不符",
    UNSUPPORTED_NUMBER: "数字无引文依据",
    UNSUPPORTED_SENTENCE: "引文不支持该句",
    UNCITED_SENTENCE: "句子未标出处",
    DANGLING_MARKER: "标记没有对应引文",
    UNUSED_CITATION: "引文未被引用",
}
OPEN, CLOSE = "【", "】"  # how offending text is marked in ``Problem.marked``


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an answer. ``n`` is the citation number concerned, ``sentence`` the
    statement (as split by :func:`split_statements`); ``marked`` is that sentence or the quote
    with the offending part in 【】."""

    kind: str
    detail: str
    n: int | None = None
    sentence: str | None = None
    marked: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.n is not None:
            d["n"] = self.n
        if self.sentence is not None:
            d["sentence"] = self.sentence
        d["kind"] = self.kind
        d["detail"] = self.detail
        if self.marked is not None:
            d["marked"] = self.marked
        return d


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one answer; ``scores`` (ALCE counts, :func:`citation_scores`) feed the
    summary and are not part of the JSON line."""

    question: str
    problems: tuple[Problem, ...]
    scores: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "ok": self.ok, "problems": [p.to_dict() for p in self.problems]}


# ---------------------------------------------------------------------------------------------
# Checking one answer
# ---------------------------------------------------------------------------------------------

_NOT_CLAIMING = ("not_covered", "invalid")


def judged_for_support(answer: Mapping[str, Any]) -> bool:
    """Do the answer's sentences claim something that needs support? False for a refusal
    (``outcome`` not_covered / invalid; without ``outcome``, ``answerable`` false)."""
    outcome = answer.get("outcome")
    if outcome:
        return outcome not in _NOT_CLAIMING
    return answer.get("answerable") is not False


def _mark(text: str, start: int, end: int) -> str:
    return f"{text[:start]}{OPEN}{text[start:end]}{CLOSE}{text[end:]}"


def _longest_prefix(q: str, texts: Sequence[str]) -> int:
    """Length of the longest prefix of ``q`` found in one of ``texts`` (monotone: binary search)."""
    lo, hi = 0, len(q)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if any(q[:mid] in t for t in texts):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _mark_not_found(q: str, texts: Sequence[str]) -> str:
    """The canonical quote with the part that is in no document marked: what lies between the
    longest prefix and the longest suffix that are (the junction, if those two meet)."""
    pre = _longest_prefix(q, texts)
    suf = _longest_prefix(q[::-1], [t[::-1] for t in texts])
    # where prefix and suffix meet (two real pieces glued), mark the first character after the join
    end = min(len(q), max(pre + 1, len(q) - suf))
    return _mark(q, pre, end)


def _occurrences(text: str, q: str) -> Iterable[int]:
    i = text.find(q)
    while i >= 0:
        yield i
        i = text.find(q, i + 1)


def _claims(citation: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, int, str]]]:
    """(location keys with values, label refs as (location key, number, how written))."""
    loc = as_dict(citation.get("location"))
    wanted = {k: loc[k] for k in LOCATION_KEYS if loc.get(k) is not None}
    refs = []
    for r in find_refs(str(citation.get("label") or "")):
        refs.append((_REF_KEY[r.ref.kind], r.ref.no, r.ref.label))
        if r.ref.kind == SECTION and r.ref.chapter is not None:
            refs.append(("chapter_no", r.ref.chapter, r.ref.label))
    return wanted, refs


def _unit_fits(u: Unit, doc: str, wanted: Mapping[str, Any], refs: Sequence[tuple[str, int, str]]) -> bool:
    loc = u.location.to_dict()
    loc["doc"] = doc
    return all(loc.get(k) == v for k, v in wanted.items()) and all(loc.get(k) == v for k, v, _ in refs)


_KEY_NAMES = {
    "doc": "文档",
    "chapter_no": "章",
    "section_no": "节",
    "column_no": "专栏",
    "indicator_no": "指标",
    "article_no": "条",
}


def _mismatches(
    u: Unit, doc: str, unit_id: str | None, wanted: Mapping[str, Any], refs: Sequence[tuple[str, int, str]]
) -> list[str]:
    """What the citation says about its place that ``u`` (where the quote is) contradicts."""
    loc = u.location.to_dict()
    loc["doc"] = doc
    out = [f"id 为 {unit_id}，实际为 {u.id}"] if unit_id and unit_id != u.id else []
    out += [
        f"location.{k}={v}，实际为 {loc.get(k)}（{_KEY_NAMES[k]}）"
        for k, v in wanted.items()
        if loc.get(k) != v
    ]
    out += [f"标签写「{how}」，实际{_KEY_NAMES[k]}为 {loc.get(k)}" for k, v, how in refs if loc.get(k) != v]
    return out


def check_quote(n: int, citation: Mapping[str, Any], library: Library) -> list[Problem]:
    """quote_not_found / wrong_location for one citation."""
    quote = str(citation.get("quote") or "")
    q = canon(quote)
    sources = [t for d in library.docs.values() for t in (d.text, d.source)]
    if not q or not any(q in t for t in sources):
        marked = _mark_not_found(q, sources) if q else f"{OPEN}{CLOSE}"
        what = "引文为空" if not q else "引文不是知识库中任何文档的原文（已忽略空白）"
        return [Problem(QUOTE_NOT_FOUND, f"[{n}] {what}：「{marked}」", n=n, marked=marked)]
    unit_id = citation.get("id") or None
    wanted, refs = _claims(citation)
    if not unit_id and not wanted and not refs:
        return []
    if unit_id and unit_id not in library.units:
        return [Problem(WRONG_LOCATION, f"[{n}] 出处 id「{unit_id}」不是知识库中的单元", n=n)]
    first: tuple[Unit, str] | None = None
    for d in library.docs.values():
        for start in _occurrences(d.text, q):
            units = d.units_at(start, start + len(q))
            first = first or (units[0], d.id)
            if unit_id and unit_id not in {u.id for u in units}:
                continue
            if all(_unit_fits(u, d.id, wanted, refs) for u in units):
                return []
    if first is None:
        return []  # only in the raw source (not in any unit's text): its place cannot be told
    u, doc = first
    why = "；".join(_mismatches(u, doc, unit_id, wanted, refs)) or "引文跨越多个单元，不全在所标位置"
    return [Problem(WRONG_LOCATION, f"[{n}] 引文是原文，但不在所标出处：{why}（引文位于「{u.label}」）", n=n)]


def _mark_markers(sentence: str, ns: set[int]) -> str:
    """The sentence with each marker group that names one of ``ns`` in 【】."""
    out, last = [], 0
    for m in MARKER.finditer(sentence):
        if ns & set(_marker_numbers(m.group(1))):
            out += [sentence[last : m.start()], OPEN, m.group(0), CLOSE]
            last = m.end()
    return "".join(out) + sentence[last:]


def _mark_numbers(sentence: str, missing: set[Decimal]) -> str:
    """The sentence with the numbers in ``missing`` in 【】 (markers themselves left alone)."""
    # full-width folding maps one character to one, so offsets stay those of ``sentence``
    hidden = MARKER.sub(lambda m: " " * len(m.group(0)), sentence).translate(FULLWIDTH)
    spans = [(m.start(), m.end()) for m in _NUMBER.finditer(hidden) if Decimal(m.group(0)) in missing]
    for s, e in reversed(spans):
        sentence = _mark(sentence, s, e)
    return sentence


def _fmt_numbers(values: Iterable[Decimal]) -> str:
    return "、".join(format(v, "f") for v in sorted(values))


def check_answer(answer: Mapping[str, Any], library: Library) -> CheckResult:
    """Check one answer (the contract dict, validated by :func:`validate_answer`) against the
    library. Problems come in order: citations (quote, location), then sentences in answer
    order, then unused citations."""
    a = as_dict(answer)
    citations = [as_dict(c) for c in a.get("citations") or ()]
    by_n = {int(c["n"]): c for c in citations}
    quotes = _quotes_by_n(a)
    problems: list[Problem] = []
    for c in citations:
        problems += check_quote(int(c["n"]), c, library)

    judged = judged_for_support(a)
    partial = a.get("outcome") == "partial"
    text = str(a.get("answer") or "")
    for s in split_statements(text):
        marks = statement_markers(s)
        dangling = [m for m in marks if m not in by_n]
        for m in dangling:
            problems.append(
                Problem(
                    DANGLING_MARKER,
                    f"标记 [{m}] 没有对应的引文（引文编号为 {sorted(by_n) or '无'}）",
                    n=m,
                    sentence=s,
                    marked=_mark_markers(s, {m}),
                )
            )
        if not judged:
            continue
        if not marks:
            if not partial:
                problems.append(
                    Problem(UNCITED_SENTENCE, "这句话没有标注出处", sentence=s, marked=f"{OPEN}{s}{CLOSE}")
                )
            continue
        cited = [m for m in marks if m in by_n]
        if not cited:
            continue  # only dangling markers: reported above
        joined = "\n".join(quotes[m] for m in cited)
        refs = "".join(f"[{m}]" for m in cited)
        missing = missing_numbers(s, joined)
        if missing:
            problems.append(
                Problem(
                    UNSUPPORTED_NUMBER,
                    f"数字 {_fmt_numbers(missing)} 不在所引引文 {refs} 中",
                    n=cited[0],
                    sentence=s,
                    marked=_mark_numbers(s, missing),
                )
            )
        elif not supports(s, joined):
            share = coverage(s, joined)
            why = (
                f"字面重合 {share:.0%}，低于 {SUPPORT_THRESHOLD:.0%}"
                if share is not None
                else "句中没有可核对的文字或数字"
            )
            problems.append(
                Problem(
                    UNSUPPORTED_SENTENCE,
                    f"所引引文 {refs} 不支持这句话（{why}）",
                    n=cited[0],
                    sentence=s,
                    marked=f"{OPEN}{s}{CLOSE}",
                )
            )

    used = {m for _, line in _claim_lines(text) for m in statement_markers(line)}
    for n in sorted(set(by_n) - used):
        problems.append(Problem(UNUSED_CITATION, f"引文 [{n}] 没有被回答中的任何标记引用", n=n))
    return CheckResult(
        question=str(a.get("question") or ""), problems=tuple(problems), scores=citation_scores(a)
    )


# ---------------------------------------------------------------------------------------------
# Input and summary
# ---------------------------------------------------------------------------------------------


class CheckInputError(InputError):
    """Answers that cannot be read as the contract (the message names the line or item)."""


def validate_answer(obj: Any) -> str | None:
    """Why ``obj`` is not an answer in the contract (a Chinese message), or None if it is."""
    if not isinstance(obj, dict):
        return '应为 JSON 对象 {"question", "answer", "citations"}'
    if not isinstance(obj.get("answer"), str):
        return "缺少字段 answer（字符串，含 [n] 标记的回答）"
    if "question" in obj and not isinstance(obj["question"], str | type(None)):
        return "question 应为字符串"
    cits = obj.get("citations", [])
    if cits is None:
        cits = []
    if not isinstance(cits, list):
        return "citations 应为列表"
    seen: set[int] = set()
    for i, c in enumerate(cits, 1):
        if not isinstance(c, dict):
            return f"citations 第 {i} 项应为 JSON 对象"
        n = c.get("n")
        if isinstance(n, bool) or not isinstance(n, int):
            return f"citations 第 {i} 项缺少整数 n"
        if n in seen:
            return f"citations 中编号 {n} 出现了两次"
        seen.add(n)
        if not isinstance(c.get("quote"), str):
            return f"citations 第 {i} 项（n={n}）缺少字符串 quote"
        for key in ("id", "label"):
            if c.get(key) is not None and not isinstance(c[key], str):
                return f"citations 第 {i} 项（n={n}）的 {key} 应为字符串"
        if c.get("location") is not None and not isinstance(c["location"], dict):
            return f"citations 第 {i} 项（n={n}）的 location 应为 JSON 对象"
    return None


def parse_answers(text: str) -> list[dict[str, Any]]:
    """JSONL → answers. Raises CheckInputError naming the first bad line (blank lines skipped)."""
    out = []
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise CheckInputError(f"第 {no} 行不是有效的 JSON（{e.msg}，第 {e.colno} 列）。") from None
        problem = validate_answer(obj)
        if problem:
            raise CheckInputError(f"第 {no} 行：{problem}。")
        out.append(obj)
    if not out:
        raise CheckInputError("输入中没有回答（每行应为一个 JSON 回答）。")
    return out


def summarize(results: Sequence[CheckResult]) -> dict[str, Any]:
    """Counts per kind over all answers, and citation recall / precision as the evaluation
    aggregates them (macro over answers that are not refusals and have statements)."""
    counts = dict.fromkeys(KINDS, 0)
    for r in results:
        for p in r.problems:
            counts[p.kind] = counts.get(p.kind, 0) + 1
    scored = [r.scores for r in results if r.scores and r.scores.get("recall") is not None]
    recall = sum(s["recall"] for s in scored) / len(scored) if scored else None
    precision = sum(s["precision"] for s in scored) / len(scored) if scored else None
    passed = sum(r.ok for r in results)
    return {
        "answers": len(results),
        "passed": passed,
        "failed": len(results) - passed,
        "problems": counts,
        "citation_recall": recall,
        "citation_precision": precision,
        "answers_scored": len(scored),
    }


def check_answers(answers: Iterable[Mapping[str, Any]], library: Library) -> list[CheckResult]:
    return [check_answer(a, library) for a in answers]


def render_result(no: int, result: CheckResult) -> str:
    """Human-readable verdict on one answer (Chinese), offending text in 【】."""
    head = f"第 {no} 条 {'✓ 通过' if result.ok else f'✗ {len(result.problems)} 处问题'}：{result.question or '（无问题文本）'}"
    lines = [head]
    for p in result.problems:
        lines.append(f"  · {KIND_NAMES.get(p.kind, p.kind)}（{p.kind}）：{p.detail}")
        if p.sentence is not None:
            lines.append(f"      {p.marked or p.sentence}")
    return "\n".join(lines)


def render_summary(summary: Mapping[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "—" if v is None else f"{v:.3f}"

    counts = "，".join(f"{KIND_NAMES[k]} {v}" for k, v in summary["problems"].items() if k in KIND_NAMES)
    return (
        f"汇总：核对 {summary['answers']} 条回答，通过 {summary['passed']} 条，未通过 {summary['failed']} 条。\n"
        f"问题计数：{counts}。\n"
        f"引用召回 {pct(summary['citation_recall'])}，引用精确 {pct(summary['citation_precision'])}"
        f"（ALCE 式，{summary['answers_scored']} 条非拒答回答的平均）。"
    )
