"""References to the parts of a document: one grammar for 章 / 节 / 专栏 / 指标 / 条.

A ``Ref`` names a part (``kind`` and number, a section's chapter, optionally the document);
``find_refs`` reads references out of running text (a question, an answer), ``heading_ref`` reads
a heading line of a document, ``local_id`` / ``unit_id`` give the id the parser stores the part's
heading under. The parser, question analysis, follow-ups and the citation checker all use these
functions, so 「第十二章」, 「chapter 12」 and the heading line 「第十二章 深化改革创新」 agree.

Scope: Chinese numerals up to 九百九十九 and Arabic digits; English "chapter/section/column/box/
indicator/article N"; ranges (「第三至五章」「专栏2至专栏9」 refer to every part between).
Left out: ranges of indicators, 「上一章」 and other relative references (follow-ups resolve those against history).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from policyqa.text import cn_number, to_cn_number

CHAPTER, SECTION, COLUMN, INDICATOR, ARTICLE = "chapter", "section", "column", "indicator", "article"
KINDS = (CHAPTER, SECTION, COLUMN, INDICATOR, ARTICLE)

_NUM = r"[一二三四五六七八九十百零〇两\d]{1,6}"
# Each pattern's first group is the numeral. Order matters only for overlaps (none today).
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (CHAPTER, re.compile(rf"第\s*({_NUM})\s*章")),
    (SECTION, re.compile(rf"第\s*({_NUM})\s*节")),
    # 「专栏一共…」 counts the columns (「专栏9共…」 is 专栏9)
    (COLUMN, re.compile(r"专栏\s*(\d{1,2}|[一二三四五六七八九十]{1,3}(?!共))")),
    (ARTICLE, re.compile(rf"第\s*({_NUM})\s*条")),
    # 第17项指标 / 第十七个指标 / 指标17 / 17号指标 — but not 「指标2020年」
    (INDICATOR, re.compile(rf"第\s*({_NUM})\s*(?:项|个)?\s*指标")),
    (INDICATOR, re.compile(r"指标\s*(?:第\s*)?(\d{1,2})(?![\d.年%])\s*(?:项|号)?")),
    (INDICATOR, re.compile(r"(\d{1,2})\s*号指标")),
    (CHAPTER, re.compile(r"\bchapter\s+(\d{1,3})\b", re.I)),
    (SECTION, re.compile(r"\bsection\s+(\d{1,3})\b", re.I)),
    (COLUMN, re.compile(r"\b(?:column|box)\s+(\d{1,2})\b", re.I)),
    (INDICATOR, re.compile(r"\bindicator\s+(?:no\.?\s*)?(\d{1,2})\b", re.I)),
    (ARTICLE, re.compile(r"\barticle\s+(\d{1,3})\b", re.I)),
)
# A range of parts of one kind: its two numerals; the parts between are referred to too.
_TO = r"\s*(?:至|到|—|-|~|～)\s*"
_RANGES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (CHAPTER, re.compile(rf"第\s*({_NUM})\s*章?{_TO}第?\s*({_NUM})\s*章")),
    (SECTION, re.compile(rf"第\s*({_NUM})\s*节?{_TO}第?\s*({_NUM})\s*节")),
    # not 「专栏1到2025年」: the second numeral begins no year
    (
        COLUMN,
        re.compile(
            rf"专栏\s*(\d{{1,2}}|[一二三四五六七八九十]{{1,3}}){_TO}(?:专栏)?\s*(\d{{1,2}}|[一二三四五六七八九十]{{1,3}})(?![\d年])"
        ),
    ),
    (ARTICLE, re.compile(rf"第\s*({_NUM})\s*条?{_TO}第?\s*({_NUM})\s*条")),
)
MAX_RANGE = 30  # a wider range is read as its two ends only
# A heading line: the ref at the very start, then the title.
_HEADINGS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (CHAPTER, re.compile(rf"^第({_NUM})章(?:\s+|(?=[^\s]))(.*)$")),
    (SECTION, re.compile(rf"^第({_NUM})节(?:\s+|(?=[^\s]))(.*)$")),
    (COLUMN, re.compile(r"^专栏\s*(\d{1,2}|[一二三四五六七八九十]{1,3})\s*(.*)$")),
    (ARTICLE, re.compile(rf"^第({_NUM})条(?:\s+|(?=[^\s])|$)(.*)$")),
)
_ID_PREFIX = {CHAPTER: "ch", SECTION: "s", COLUMN: "col", INDICATOR: "ind", ARTICLE: "art"}


@dataclass(frozen=True, order=True)
class Ref:
    """A part of a document. ``chapter`` is set for a section whose chapter is known."""

    kind: str
    no: int
    chapter: int | None = None
    doc: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown ref kind {self.kind!r}; known: {', '.join(KINDS)}")

    @property
    def label(self) -> str:
        """How the document itself writes the reference: 第七章第三节, 专栏3, 第17项指标, 第十二条."""
        if self.kind == CHAPTER:
            return f"第{to_cn_number(self.no)}章"
        if self.kind == SECTION:
            head = f"第{to_cn_number(self.chapter)}章" if self.chapter else ""
            return f"{head}第{to_cn_number(self.no)}节"
        if self.kind == COLUMN:
            return f"专栏{self.no}"
        if self.kind == INDICATOR:
            return f"第{self.no}项指标"
        return f"第{to_cn_number(self.no)}条"

    def local_id(self) -> str:
        """The id of the part's heading unit within its document (``ch07``, ``ch07.s03``, ``col3``)."""
        if self.kind == CHAPTER:
            return f"ch{self.no:02d}"
        if self.kind == SECTION:
            return f"ch{self.chapter or 0:02d}.s{self.no:02d}"
        if self.kind == COLUMN:
            return f"col{self.no}"
        width = 3 if self.kind == ARTICLE else 2
        return f"{_ID_PREFIX[self.kind]}{self.no:0{width}d}"

    def unit_id(self, doc: str | None = None) -> str:
        d = doc or self.doc
        if not d:
            raise ValueError("a unit id needs the document")
        return f"{d}:{self.local_id()}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "no": self.no}
        if self.chapter is not None:
            d["chapter"] = self.chapter
        if self.doc:
            d["doc"] = self.doc
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Ref:
        return cls(kind=d["kind"], no=int(d["no"]), chapter=d.get("chapter"), doc=d.get("doc"))


@dataclass(frozen=True)
class RefMatch:
    ref: Ref
    start: int
    end: int


def _number(s: str) -> int | None:
    try:
        n = cn_number(s)
    except ValueError:
        return None
    return n if n > 0 else None


def find_refs(text: str, doc: str | None = None) -> list[RefMatch]:
    """The references in running text, in order. A section right after a chapter
    (「第二章第三节」) becomes one section ref carrying its chapter."""
    found: list[RefMatch] = []
    taken: list[tuple[int, int]] = []
    for kind, pat in _RANGES:
        for m in pat.finditer(text):
            a, b = _number(m.group(1)), _number(m.group(2))
            if a is None or b is None or not a < b <= a + MAX_RANGE:
                continue
            # every part of the range shares the range's span (strip_refs blanks it once)
            found += [RefMatch(Ref(kind, n, doc=doc), m.start(), m.end()) for n in range(a, b + 1)]
            taken.append((m.start(), m.end()))
    for kind, pat in _PATTERNS:
        for m in pat.finditer(text):
            if any(s < m.end() and m.start() < e for s, e in taken):
                continue
            n = _number(m.group(1))
            if n is None:
                continue
            found.append(RefMatch(Ref(kind, n, doc=doc), m.start(), m.end()))
            taken.append((m.start(), m.end()))
    found.sort(key=lambda r: r.start)
    out: list[RefMatch] = []
    for r in found:
        prev = out[-1] if out else None
        if (
            r.ref.kind == SECTION
            and prev is not None
            and prev.ref.kind == CHAPTER
            and not text[prev.end : r.start].strip(" 的之、，,")
        ):
            out[-1] = RefMatch(Ref(SECTION, r.ref.no, chapter=prev.ref.no, doc=doc), prev.start, r.end)
            continue
        out.append(r)
    return out


def heading_ref(line: str, chapter: int | None = None) -> tuple[Ref, str] | None:
    """A heading line → (its ref, its title), or None. ``chapter`` is the chapter a section sits in."""
    t = line.strip()
    for kind, pat in _HEADINGS:
        m = pat.match(t)
        if m:
            n = _number(m.group(1))
            if n is None:
                return None
            return Ref(kind, n, chapter=chapter if kind == SECTION else None), m.group(2).strip()
    return None


def strip_refs(text: str) -> str:
    """The text with its references blanked out (they are no topic words)."""
    out = text
    for start, end in sorted({(r.start, r.end) for r in find_refs(text)}, reverse=True):
        out = out[:start] + " " + out[end:]
    return out
