"""Typed, immutable result objects shared by every stage.

Each object has exactly one JSON form (``to_dict``) and can be rebuilt from it
(``from_dict``). Nothing here does I/O; the objects are plain data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

# Unit kinds. Only RETRIEVABLE kinds are indexed; headings and the table header
# exist so that the units tile the whole source (nothing is lost).
KIND_HEADER = "header"  # the 通知 before the plan title
KIND_TITLE = "title"
KIND_HEADING = "heading"  # 第X章 / 第X节 / 一、 / （一） lines
KIND_PARAGRAPH = "paragraph"
KIND_COLUMN = "column"  # the 专栏N title line
KIND_ITEM = "item"  # one 专栏 item: 「title：text」
KIND_TABLE_HEAD = "table_head"
KIND_INDICATOR = "indicator"
KIND_NOTE = "note"  # a footnote of the indicator table
KIND_ARTICLE = "article"  # one 第X条 of a regulation: its heading and all its 款/项 in one unit
RETRIEVABLE = frozenset({KIND_HEADER, KIND_PARAGRAPH, KIND_ITEM, KIND_INDICATOR, KIND_NOTE, KIND_ARTICLE})
# The keys of ``Document.meta`` (read from the text, overridden by ``<id>.meta.json``).
META_KEYS = (
    "title",
    "short_title",
    "doc_number",
    "office",
    "date",
    "region",
    "period",
    "start_year",
    "end_year",
    "kind",
)


@dataclass(frozen=True)
class Location:
    """Where a unit sits in a document. Numbers are ints or None."""

    doc: str
    chapter_no: int | None = None
    chapter: str | None = None
    section_no: int | None = None
    section: str | None = None
    column_no: int | None = None
    column: str | None = None
    indicator_no: int | None = None
    indicator: str | None = None
    article_no: int | None = None  # 第X条 of a regulation
    article: str | None = None  # the article's own title, where the document gives one
    doc_title: str | None = None  # the document's short title, for labels across a library

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Location:
        return cls(**{f.name: d.get(f.name) for f in fields(cls)})


@dataclass(frozen=True)
class Value:
    """One cell of the indicator table: the year and the text as printed (after repair).

    ``year`` comes from the table's header row; None when the header names no year.
    """

    year: int | None
    value: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"year": self.year, "value": self.value}


@dataclass(frozen=True)
class Note:
    marker: str  # ① ② ③ ④
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"marker": self.marker, "text": self.text}


@dataclass(frozen=True)
class IndicatorRow:
    """A sub-row of an indicator that the table splits by scope (e.g. 设区城市 / 县级)."""

    scope: str
    baseline: Value
    target: Value
    notes: tuple[str, ...] = ()  # markers

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "baseline": self.baseline.to_dict(),
            "target": self.target.to_dict(),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Indicator:
    """One row of the indicator table (专栏1) as typed data.

    ``attribute`` is None where the table gives none (it never is guessed).
    ``notes`` holds the footnotes whose markers appear anywhere in the row.
    """

    no: int
    category: str | None
    name: str
    unit: str | None
    baseline: Value
    target: Value
    attribute: str | None
    notes: tuple[Note, ...] = ()
    rows: tuple[IndicatorRow, ...] = ()
    remark: str | None = None  # e.g. 「按52个国家考核断面」

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "no": self.no,
            "category": self.category,
            "name": self.name,
            "unit": self.unit,
            "baseline": self.baseline.to_dict(),
            "target": self.target.to_dict(),
            "attribute": self.attribute,
            "notes": [n.to_dict() for n in self.notes],
        }
        if self.remark:
            d["remark"] = self.remark
        if self.rows:
            d["rows"] = [r.to_dict() for r in self.rows]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Indicator:
        return cls(
            no=d["no"],
            category=d.get("category"),
            name=d["name"],
            unit=d.get("unit"),
            baseline=Value(**d["baseline"]),
            target=Value(**d["target"]),
            attribute=d.get("attribute"),
            notes=tuple(Note(**n) for n in d.get("notes", [])),
            rows=tuple(
                IndicatorRow(
                    scope=r["scope"],
                    baseline=Value(**r["baseline"]),
                    target=Value(**r["target"]),
                    notes=tuple(r.get("notes", [])),
                )
                for r in d.get("rows", [])
            ),
            remark=d.get("remark"),
        )

    @property
    def display_name(self) -> str:
        return f"{self.name}（{self.unit}）" if self.unit else self.name


@dataclass(frozen=True)
class Unit:
    """The smallest citable piece of a document: a paragraph, a 专栏 item, an indicator row...

    ``text`` is the repaired text (page breaks joined, PDF spaces removed); ``spans`` are the
    [start, end) character offsets of the raw pieces in the source file it was made from.
    """

    id: str
    doc: str
    kind: str
    text: str
    label: str
    location: Location
    spans: tuple[tuple[int, int], ...] = ()
    lead: str | None = None  # the bold topic sentence opening a paragraph
    title: str | None = None  # heading / column / item title
    subheading: str | None = None  # the 一、/（一） heading a paragraph sits under
    indicator: Indicator | None = None
    truncated: bool = False  # the source breaks off here (text lost in the PDF)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "doc": self.doc,
            "kind": self.kind,
            "label": self.label,
            "location": self.location.to_dict(),
            "text": self.text,
            "spans": [list(s) for s in self.spans],
        }
        for k in ("lead", "title", "subheading"):
            if getattr(self, k):
                d[k] = getattr(self, k)
        if self.indicator:
            d["indicator"] = self.indicator.to_dict()
        if self.truncated:
            d["truncated"] = True
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Unit:
        return cls(
            id=d["id"],
            doc=d["doc"],
            kind=d["kind"],
            text=d["text"],
            label=d["label"],
            location=Location.from_dict(d["location"]),
            spans=tuple(tuple(s) for s in d.get("spans", [])),  # type: ignore[misc]
            lead=d.get("lead"),
            title=d.get("title"),
            subheading=d.get("subheading"),
            indicator=Indicator.from_dict(d["indicator"]) if d.get("indicator") else None,
            truncated=bool(d.get("truncated", False)),
        )


@dataclass(frozen=True)
class Section:
    no: int
    title: str
    id: str
    unit_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Chapter:
    no: int
    title: str
    id: str
    sections: tuple[Section, ...] = ()
    intro_ids: tuple[str, ...] = ()  # paragraphs before the first section


@dataclass(frozen=True)
class ColumnItem:
    id: str
    title: str | None
    text: str


@dataclass(frozen=True)
class Column:
    no: int
    title: str
    id: str
    chapter_no: int | None
    section_no: int | None
    items: tuple[ColumnItem, ...] = ()


@dataclass(frozen=True)
class Document:
    """A parsed plan. ``units`` are in source order and tile the whole text."""

    id: str
    title: str
    meta: dict[str, Any]
    source: str  # path of the file it was read from
    sha256: str
    units: tuple[Unit, ...]
    chapters: tuple[Chapter, ...] = ()
    columns: tuple[Column, ...] = ()
    indicators: tuple[Indicator, ...] = ()
    warnings: tuple[str, ...] = ()
    # the text the units' spans point into: the file's text, or for PDF/DOCX/HTML the extracted
    # and repaired text (what quotes are checked against; the index stores it beside the build)
    text: str = field(default="", repr=False, compare=False)

    def unit(self, unit_id: str) -> Unit:
        for u in self.units:
            if u.id == unit_id:
                return u
        raise KeyError(unit_id)

    def outline(self) -> dict[str, Any]:
        """The ``policyqa outline --json`` form of this document."""
        by_id = {u.id: u for u in self.units}
        return {
            "id": self.id,
            "title": self.title,
            "meta": self.meta,
            "chapters": [
                {
                    "no": c.no,
                    "title": c.title,
                    "sections": [
                        {"no": s.no, "title": s.title, "units": len(s.unit_ids)} for s in c.sections
                    ],
                }
                for c in self.chapters
            ],
            "columns": [
                {
                    "no": col.no,
                    "title": col.title,
                    "chapter_no": col.chapter_no,
                    "section_no": col.section_no,
                    "items": [{"title": i.title, "text": i.text} for i in col.items],
                }
                for col in self.columns
            ],
            "indicators": [i.to_dict() for i in self.indicators],
            "units": sum(1 for u in by_id.values() if u.kind in RETRIEVABLE),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Hit:
    """A retrieved unit with its score (higher is better; the scale depends on the retriever)."""

    unit: Unit
    score: float
    sources: tuple[str, ...] = ()  # which retrievers found it: "bm25", "dense", "route"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.unit.id,
            "score": round(float(self.score), 6),
            "label": self.unit.label,
            "location": self.unit.location.to_dict(),
            "text": self.unit.text,
        }


@dataclass(frozen=True)
class Citation:
    n: int
    id: str
    label: str
    location: Location
    quote: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "id": self.id,
            "label": self.label,
            "location": self.location.to_dict(),
            "quote": self.quote,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Citation:
        return cls(
            n=d["n"],
            id=d["id"],
            label=d["label"],
            location=Location.from_dict(d["location"]),
            quote=d["quote"],
        )


# What the library could say to a question (``Answer.outcome``). ``answerable`` stays the
# contract's yes/no: partly covered is answerable.
OUTCOME_ANSWERED = "answered"
OUTCOME_PARTIAL = "partial"  # 「规划没有写明……；相关的规定是……」
OUTCOME_NOT_COVERED = "not_covered"  # a refusal; its citations point at the nearest sections
OUTCOME_INVALID = "invalid"  # empty, too long, no text
OUTCOMES = (OUTCOME_ANSWERED, OUTCOME_PARTIAL, OUTCOME_NOT_COVERED, OUTCOME_INVALID)


@dataclass(frozen=True)
class Answer:
    """The answer contract used by the CLI, the app and the evaluation.

    ``answer`` is Markdown with inline ``[n]`` markers, each resolving to ``citations[n-1]``.
    ``mode`` says how it was made: "extractive", "llm", "llm-fallback:<reason>", "refusal",
    "invalid". ``outcome`` is one of ``OUTCOMES``; a not-covered answer may still carry
    citations (the nearest sections, for the reader to check).
    """

    question: str
    answer: str
    answerable: bool
    citations: tuple[Citation, ...] = ()
    mode: str = "extractive"
    timings_ms: dict[str, float] = field(default_factory=dict)
    standalone_question: str | None = None  # the follow-up rewritten with its history
    notice: str | None = None  # a short line for the UI (e.g. why the LLM was not used)
    outcome: str = ""  # one of OUTCOMES; empty means derived from ``answerable`` and ``mode``

    def __post_init__(self) -> None:
        if not self.outcome:
            derived = (
                OUTCOME_INVALID
                if self.mode == "invalid"
                else OUTCOME_ANSWERED
                if self.answerable
                else OUTCOME_NOT_COVERED
            )
            object.__setattr__(self, "outcome", derived)
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "question": self.question,
            "answer": self.answer,
            "answerable": self.answerable,
            "outcome": self.outcome,
            "citations": [c.to_dict() for c in self.citations],
            "mode": self.mode,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }
        if self.standalone_question and self.standalone_question != self.question:
            d["standalone_question"] = self.standalone_question
        if self.notice:
            d["notice"] = self.notice
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Answer:
        return cls(
            question=d["question"],
            answer=d["answer"],
            answerable=d["answerable"],
            citations=tuple(Citation.from_dict(c) for c in d.get("citations", [])),
            mode=d.get("mode", "extractive"),
            timings_ms=dict(d.get("timings_ms", {})),
            standalone_question=d.get("standalone_question"),
            notice=d.get("notice"),
            outcome=d.get("outcome") or "",
        )
