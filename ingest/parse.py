"""Text of a Chinese plan document → a typed tree (``Document``), with pure functions.

Reads the shapes common to Chinese government plans: a 通知 header before the plan title,
第X章 / 第X节 headings (Chinese numerals up to 九十九), 一、 and （一） sub-headings, boxed
columns 「专栏N 标题」 whose items read 「item title：text」, and an indicator table whose rows are
tab-separated (number, name (unit), 2020 value, 2025 target, 约束性/预期性) with footnote
markers ①–⑩ and the footnotes after it.

Repairs what PDF extraction did: paragraphs broken by a page break are joined, spaces inside
CJK runs and ``<p>`` tags are removed (see ``policyqa.text.repair``). Every unit keeps the
character spans it came from, and the units tile the source: nothing is dropped.

Left out: tables other than the indicator table are kept as text rows; footnotes in prose;
images. A document with no 第X章 headings is read as paragraphs only, with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from policyqa.errors import DocumentError
from policyqa.models import (
    KIND_COLUMN,
    KIND_HEADER,
    KIND_HEADING,
    KIND_INDICATOR,
    KIND_ITEM,
    KIND_NOTE,
    KIND_PARAGRAPH,
    KIND_TABLE_HEAD,
    KIND_TITLE,
    Chapter,
    Column,
    ColumnItem,
    Document,
    Indicator,
    IndicatorRow,
    Location,
    Note,
    Section,
    Unit,
    Value,
)
from policyqa.text import cn_number, repair, to_cn_number

_NUM = r"[一二三四五六七八九十零〇两\d]{1,4}"
RE_CHAPTER = re.compile(rf"^第({_NUM})章\s*(.*)$")
RE_SECTION = re.compile(rf"^第({_NUM})节\s*(.*)$")
RE_COLUMN = re.compile(r"^专栏\s*(\d{1,2}|[一二三四五六七八九十]{1,3})\s*(.*)$")
RE_SUBHEADING = re.compile(r"^(?:[一二三四五六七八九十]{1,3}、|（[一二三四五六七八九十]{1,3}）)")
RE_ITEM = re.compile(r"^([^。：:；;，,]{2,40})[：:]")
RE_INDICATOR_CELL = re.compile(r"^(\d{1,2})[.．、]\s*([^\d\s].*)$")
RE_MARKS = re.compile(r"[①②③④⑤⑥⑦⑧⑨⑩]")
RE_DATE = re.compile(r"^\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日$")
SENTENCE_END = tuple("。！？；!?;：:”’）)」』")
ATTRIBUTES = ("约束性", "预期性")
BASE_YEAR, TARGET_YEAR = 2020, 2025


@dataclass
class Line:
    no: int  # 1-based line number
    start: int
    end: int
    raw: str

    @property
    def text(self) -> str:
        return self.raw.strip()


def split_lines(source: str) -> list[Line]:
    """Source → lines with their character offsets (end excludes the newline)."""
    out, pos = [], 0
    for i, raw in enumerate(source.split("\n"), 1):
        out.append(Line(i, pos, pos + len(raw), raw))
        pos += len(raw) + 1
    return out


def line_span(line: Line) -> tuple[int, int]:
    """The span of a line's non-blank text."""
    lead = len(line.raw) - len(line.raw.lstrip())
    return (line.start + lead, line.start + len(line.raw.rstrip()))


def ends_sentence(text: str) -> bool:
    t = re.sub(r"</?p\s*>", "", text).rstrip()
    return not t or t.endswith(SENTENCE_END)


def lead_phrase(text: str) -> str | None:
    """The bold topic sentence opening a paragraph: a short first sentence with no comma."""
    m = re.match(r"^(?:——)?([^。！？]{2,40}[。！？])", text)
    if not m or re.search(r"[，,；;：:]", m.group(1)):
        return None
    return m.group(1)


def joins_word(before: str, after: str) -> bool:
    """Does a dictionary word straddle the break (「因地制宜选」+「择合适」 → 选择)?

    Page breaks in these PDFs fall mid-word as often as not; a straddling word is strong
    evidence that the two lines are one paragraph, even when the second line looks like a
    paragraph opening (「择合适的农村污水处理方式。」 is short and has no comma).
    """
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    a, b = before[-4:], after[:4]
    pos = 0
    for w in jieba.cut(a + b, HMM=False):
        if pos < len(a) < pos + len(w):
            return True
        pos += len(w)
    return False


def starts_new_paragraph(text: str, in_column: bool) -> bool:
    """Does this line open a paragraph (rather than continue one broken by a page break)?"""
    if in_column:
        return bool(RE_ITEM.match(text))
    return text.startswith("——") or lead_phrase(text) is not None or bool(RE_SUBHEADING.match(text))


def is_continuation(before: str, after: str, in_column: bool) -> bool:
    """Is ``after`` (the next non-blank line) the rest of ``before``, broken by a page break?

    ``before`` must not end a sentence and must not be a short title-like line.
    """
    if ends_sentence(before) or (len(before) <= 30 and not re.search(r"[，。；、]", before)):
        return False
    if classify(after) != "text":
        return False
    return not starts_new_paragraph(after, in_column) or joins_word(before, after)


def classify(text: str) -> str:
    if "\t" in text:
        return "table"
    t = text.strip()
    if len(t) <= 60 and not t.endswith("。"):
        if RE_CHAPTER.match(t):
            return "chapter"
        if RE_SECTION.match(t):
            return "section"
        if RE_COLUMN.match(t):
            return "column"
    if len(t) <= 40 and RE_SUBHEADING.match(t) and not re.search(r"[。；]", t[:-1]):
        return "subheading"
    return "text"


def is_note_line(text: str) -> bool:
    t = re.sub(r"</?p\s*>", "", text).strip()
    return bool(re.match(r"^(注\s*[：:])?\s*[①②③④⑤⑥⑦⑧⑨⑩]", t))


# --------------------------------------------------------------------------- indicator table


def split_value(cell: str) -> tuple[str | None, list[str], str | None]:
    """「100①(按52个国家考核断面)」 → ("100", ["①"], "按52个国家考核断面")."""
    if not cell:
        return None, [], None
    remark = None
    m = re.search(r"[（(]([^（）()]+)[）)]\s*$", cell)
    if m and not re.match(r"^[（(]", cell):
        remark, cell = m.group(1), cell[: m.start()]
    marks = RE_MARKS.findall(cell)
    value = RE_MARKS.sub("", cell).strip() or None
    return value, marks, remark


def split_name(cell: str) -> tuple[str, str | None, list[str]]:
    """「近岸海域优良水质比例③(%)」 → ("近岸海域优良水质比例", "%", ["③"])."""
    marks = RE_MARKS.findall(cell)
    cell = RE_MARKS.sub("", cell).strip()
    m = re.search(r"[（(]([^（）()]+)[）)]\s*$", cell)
    if m:
        return cell[: m.start()].strip(), m.group(1).strip(), marks
    return cell, None, marks


@dataclass
class _RowDraft:
    no: int
    category: str | None
    name: str
    unit: str | None
    marks: list[str]
    baseline: str | None = None
    target: str | None = None
    attribute: str | None = None
    remark: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)


def _cells(line: Line) -> list[str]:
    return [repair(c) for c in line.raw.split("\t")]


def parse_table_rows(lines: list[Line]) -> tuple[Line | None, list[_RowDraft]]:
    """Tab-separated table lines → header line and indicator drafts (notes unresolved)."""
    head: Line | None = None
    drafts: list[_RowDraft] = []
    category: str | None = None
    for line in lines:
        cells = _cells(line)
        k = next((i for i, c in enumerate(cells) if RE_INDICATOR_CELL.match(c)), None)
        if k is None:
            filled = [c for c in cells if c]
            if not drafts:
                head = line
                continue
            d = drafts[-1]
            d.lines.append(line)
            if not filled:
                continue
            if len(filled) == 1 and not re.search(r"\d", filled[0]) and d.rows:
                d.rows[-1]["scope"] += filled[0]  # 「设区」+「城市」 split across lines
            elif len(filled) >= 2:
                v_b, m_b, _ = split_value(filled[1])
                v_t, m_t, _ = split_value(filled[2]) if len(filled) > 2 else (None, [], None)
                d.rows.append({"scope": filled[0], "baseline": v_b, "target": v_t, "marks": m_b + m_t})
            continue
        before = "".join(c for c in cells[:k] if c)
        if before:
            category = before
        m = RE_INDICATOR_CELL.match(cells[k])
        assert m
        name, unit, marks = split_name(m.group(2))
        d = _RowDraft(int(m.group(1)), category, name, unit, marks, lines=[line])
        rest = [c for c in cells[k + 1 :] if c]
        if rest and rest[-1] in ATTRIBUTES:
            d.attribute = rest.pop()
        if len(rest) == 3 and d.attribute is None:
            # scope, baseline, target: the row is split by scope over the next lines
            v_b, m_b, _ = split_value(rest[1])
            v_t, m_t, _ = split_value(rest[2])
            d.rows.append({"scope": rest[0], "baseline": v_b, "target": v_t, "marks": m_b + m_t})
        else:
            if rest:
                d.baseline, mb, d.remark = split_value(rest[0])
                d.marks += mb
            if len(rest) > 1:
                d.target, mt, _ = split_value(rest[1])
                d.marks += mt
        drafts.append(d)
    return head, drafts


def build_indicator(d: _RowDraft, notes: dict[str, str]) -> Indicator:
    row_marks = [m for r in d.rows for m in r["marks"]]
    markers = list(dict.fromkeys(d.marks + row_marks))
    return Indicator(
        no=d.no,
        category=d.category,
        name=d.name,
        unit=d.unit,
        baseline=Value(BASE_YEAR, None if d.rows else d.baseline),
        target=Value(TARGET_YEAR, None if d.rows else d.target),
        attribute=d.attribute,
        notes=tuple(Note(m, notes[m]) for m in markers if m in notes),
        rows=tuple(
            IndicatorRow(
                scope=r["scope"],
                baseline=Value(BASE_YEAR, r["baseline"]),
                target=Value(TARGET_YEAR, r["target"]),
                notes=tuple(r["marks"]),
            )
            for r in d.rows
        ),
        remark=d.remark,
    )


def split_note_line(line: Line) -> list[tuple[int, int]]:
    """A line may hold several 「<p>②…</p>」 notes: one span per note."""
    starts = [m.start() for m in re.finditer(r"<p>", line.raw)] or [0]
    starts[0] = 0
    ends = starts[1:] + [len(line.raw)]
    spans = []
    for s, e in zip(starts, ends, strict=True):
        piece = line.raw[s:e]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((line.start + s + lead, line.start + s + len(piece.rstrip())))
    return spans


# --------------------------------------------------------------------------- document


@dataclass
class _Block:
    """A run of source lines that becomes one unit."""

    kind: str
    lines: list[Line]
    spans: list[tuple[int, int]]

    def text(self, source: str, sep: str = "") -> str:
        return sep.join(repair(source[s:e]) for s, e in self.spans)


def blocks(lines: list[Line]) -> Iterator[_Block]:
    """Group lines into blocks, joining paragraphs that a page break split.

    A text line that does not end a sentence is joined with the next non-blank text line when
    that line does not itself open a paragraph (a lead phrase, 「——」, or an item title inside a
    专栏). Table lines are grouped into one block until a non-table, non-note line.
    """
    in_column = False
    in_table = False
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        t = line.text
        if not t:
            i += 1
            continue
        kind = classify(line.raw)
        if kind in ("chapter", "section"):
            in_column = in_table = False
        if kind == "column":
            in_column, in_table = True, False
        if kind == "table" and not is_note_line(t):
            in_table = True
            yield _Block("table", [line], [line_span(line)])
            i += 1
            continue
        if in_table and is_note_line(t):
            for sp in split_note_line(line):
                yield _Block("note", [line], [sp])
            i += 1
            continue
        if kind != "text":
            in_table = False if kind != "subheading" else in_table
            yield _Block(kind, [line], [line_span(line)])
            i += 1
            continue
        in_table = False
        group = [line]
        while True:
            j = i + 1
            while j < n and not lines[j].text:
                j += 1
            if j >= n or not is_continuation(group[-1].text, lines[j].text, in_column):
                break
            nxt = lines[j]
            group.append(nxt)
            i = j
        yield _Block("text", group, [line_span(x) for x in group])
        i += 1


def _heading_no(numeral: str, line: Line) -> int:
    try:
        return cn_number(numeral)
    except ValueError:
        raise DocumentError(f"第{line.no}行的编号「{numeral}」不是有效的数字：{line.text[:30]}") from None


def _label_chapter(no: int, title: str) -> str:
    return f"第{to_cn_number(no)}章 {title}".strip()


def _label_section(no: int, title: str) -> str:
    return f"第{to_cn_number(no)}节 {title}".strip()


def parse_document(source: str, doc_id: str, meta: dict[str, Any] | None = None, path: str = "") -> Document:
    """Parse a plan's text. Pure: no I/O. ``meta`` may give the title (else it is detected)."""
    import hashlib

    meta = dict(meta or {})
    lines = split_lines(source)
    all_blocks = list(blocks(lines))
    warnings: list[str] = []

    # ---- header (通知) and title: everything before the plan title line
    title = meta.get("title")
    title_idx = None
    first_structural = next(
        (i for i, b in enumerate(all_blocks) if b.kind in ("chapter", "column")), len(all_blocks)
    )
    for i, b in enumerate(all_blocks[:first_structural]):
        t = repair(b.lines[0].text)
        if title and t == title:
            title_idx = i
            break
    if title_idx is None:
        for i, b in enumerate(all_blocks[:first_structural]):
            t = repair(b.lines[0].text)
            if (
                b.kind == "text"
                and len(t) <= 40
                and not ends_sentence(t)
                and not RE_DATE.match(t)
                and not t.startswith(("(", "（"))
                and "通知" not in t
            ):
                title_idx = i
                break
    if not title:
        title = repair(all_blocks[title_idx].lines[0].text) if title_idx is not None else doc_id

    units: list[Unit] = []
    chapters: list[dict[str, Any]] = []
    columns: list[dict[str, Any]] = []
    ind_drafts: list[_RowDraft] = []
    note_units: list[tuple[int, str, Unit]] = []  # (index in units, marker, unit)

    def uid(local: str) -> str:
        return f"{doc_id}:{local}"

    loc0 = Location(doc=doc_id)
    if title_idx:
        hdr = all_blocks[:title_idx]
        spans = [sp for b in hdr for sp in b.spans]
        units.append(
            Unit(
                id=uid("header"),
                doc=doc_id,
                kind=KIND_HEADER,
                text="\n".join(b.text(source) for b in hdr),
                label="印发通知",
                location=loc0,
                spans=tuple(spans),
            )
        )
    rest_blocks = all_blocks[(title_idx + 1) if title_idx is not None else 0 :]
    if title_idx is not None:
        tb = all_blocks[title_idx]
        units.append(
            Unit(uid("title"), doc_id, KIND_TITLE, tb.text(source), title, loc0, tuple(tb.spans), title=title)
        )

    ch: dict[str, Any] | None = None
    sec: dict[str, Any] | None = None
    col: dict[str, Any] | None = None
    subheading: str | None = None
    counters: dict[str, int] = {}
    table_lines: list[Line] = []

    def location() -> Location:
        return Location(
            doc=doc_id,
            chapter_no=ch["no"] if ch else None,
            chapter=ch["title"] if ch else None,
            section_no=sec["no"] if sec else None,
            section=sec["title"] if sec else None,
            column_no=col["no"] if col else None,
            column=col["title"] if col else None,
        )

    def place_label() -> str:
        parts = []
        if ch:
            parts.append(_label_chapter(ch["no"], ch["title"]))
        if sec:
            parts.append(_label_section(sec["no"], sec["title"]))
        return " › ".join(parts) or title

    def scope_prefix() -> str:
        if ch and sec:
            return f"ch{ch['no']:02d}.s{sec['no']:02d}"
        if ch:
            return f"ch{ch['no']:02d}"
        return "front" if chapters or any(b.kind == "chapter" for b in rest_blocks) else "body"

    def next_id(prefix: str, letter: str) -> str:
        key = f"{prefix}.{letter}"
        counters[key] = counters.get(key, 0) + 1
        return f"{key}{counters[key]:02d}"

    def flush_table() -> None:
        nonlocal table_lines
        if not table_lines or col is None:
            table_lines = []
            return
        head, drafts = parse_table_rows(table_lines)
        if head is not None:
            units.append(
                Unit(
                    uid(f"col{col['no']}.thead"),
                    doc_id,
                    KIND_TABLE_HEAD,
                    " ".join(c for c in _cells(head) if c),
                    f"专栏{col['no']} {col['title']} › 表头",
                    location(),
                    (line_span(head),),
                )
            )
        for d in drafts:
            ind_drafts.append(d)
            units.append(
                Unit(
                    uid(f"ind{d.no:02d}"),
                    doc_id,
                    KIND_INDICATOR,
                    "\n".join(" ".join(c for c in _cells(x) if c) for x in d.lines if x.text),
                    "",  # filled in when the indicator is built
                    location(),
                    tuple(line_span(x) for x in d.lines if x.text),
                )
            )
        table_lines = []

    for b in rest_blocks:
        if b.kind != "table" and table_lines:
            flush_table()
        first = b.lines[0]
        t = repair(first.text)
        if b.kind == "chapter":
            m = RE_CHAPTER.match(t)
            assert m
            ch = {
                "no": _heading_no(m.group(1), first),
                "title": m.group(2).strip(),
                "sections": [],
                "intro": [],
            }
            chapters.append(ch)
            sec = col = None
            subheading = None
            units.append(
                Unit(
                    uid(f"ch{ch['no']:02d}"),
                    doc_id,
                    KIND_HEADING,
                    t,
                    place_label(),
                    location(),
                    tuple(b.spans),
                    title=ch["title"],
                )
            )
            continue
        if b.kind == "section":
            m = RE_SECTION.match(t)
            assert m
            if ch is None:
                warnings.append(f"第{m.group(1)}节 出现在任何一章之前（第{first.no}行）")
            sec = {"no": _heading_no(m.group(1), first), "title": m.group(2).strip(), "units": []}
            if ch is not None:
                ch["sections"].append(sec)
            col = None
            subheading = None
            units.append(
                Unit(
                    uid(f"{scope_prefix()}"),
                    doc_id,
                    KIND_HEADING,
                    t,
                    place_label(),
                    location(),
                    tuple(b.spans),
                    title=sec["title"],
                )
            )
            continue
        if b.kind == "column":
            m = RE_COLUMN.match(t)
            assert m
            col = {
                "no": _heading_no(m.group(1), first),
                "title": m.group(2).strip(),
                "chapter_no": ch["no"] if ch else None,
                "section_no": sec["no"] if sec else None,
                "items": [],
            }
            columns.append(col)
            units.append(
                Unit(
                    uid(f"col{col['no']}"),
                    doc_id,
                    KIND_COLUMN,
                    t,
                    f"专栏{col['no']} {col['title']}",
                    location(),
                    tuple(b.spans),
                    title=col["title"],
                )
            )
            continue
        if b.kind == "subheading":
            subheading = t
            units.append(
                Unit(
                    uid(next_id(scope_prefix(), "h")),
                    doc_id,
                    KIND_HEADING,
                    t,
                    place_label(),
                    location(),
                    tuple(b.spans),
                    title=t,
                )
            )
            continue
        if b.kind == "table":
            table_lines.append(first)
            continue
        if b.kind == "note" and col is not None:
            text = b.text(source)
            marker = (RE_MARKS.findall(text) or ["?"])[0]
            n = len(note_units) + 1
            u = Unit(
                uid(f"col{col['no']}.note{n}"),
                doc_id,
                KIND_NOTE,
                text,
                f"专栏{col['no']} {col['title']} › 注{marker}",
                location(),
                tuple(b.spans),
                title=f"注{marker}",
            )
            note_units.append((len(units), marker, u))
            units.append(u)
            continue
        # text paragraph (or a 专栏 item)
        text = b.text(source)
        truncated = not ends_sentence(b.lines[-1].text)
        if col is not None:
            m = RE_ITEM.match(text)
            item_title = m.group(1).strip() if m else None
            n = len(col["items"]) + 1
            local = f"col{col['no']}.i{n}"
            label = f"专栏{col['no']} {col['title']}" + (f" › {item_title}" if item_title else "")
            col["items"].append((uid(local), item_title, text[m.end() :].strip() if m else text))
            units.append(
                Unit(
                    uid(local),
                    doc_id,
                    KIND_ITEM,
                    text,
                    label,
                    location(),
                    tuple(b.spans),
                    title=item_title,
                    truncated=truncated,
                )
            )
            continue
        prefix = scope_prefix()
        local = next_id(prefix, "p")
        u = Unit(
            uid(local),
            doc_id,
            KIND_PARAGRAPH,
            text,
            place_label(),
            location(),
            tuple(b.spans),
            lead=lead_phrase(text),
            subheading=subheading,
            truncated=truncated,
        )
        units.append(u)
        if sec is not None:
            sec["units"].append(u.id)
        elif ch is not None:
            ch["intro"].append(u.id)
    flush_table()

    # ---- indicators: resolve footnotes, labels and locations
    notes = {}
    for _, marker, u in note_units:
        body = re.sub(r"^(注\s*[：:])?\s*[①②③④⑤⑥⑦⑧⑨⑩]", "", u.text).strip()
        notes[marker] = body
    indicators = [build_indicator(d, notes) for d in ind_drafts]
    by_no = {i.no: i for i in indicators}
    for k, u in enumerate(units):
        if u.kind == KIND_INDICATOR:
            ind = by_no[int(u.id.rsplit(":ind", 1)[1])]
            col_no, col_title = u.location.column_no, u.location.column
            units[k] = replace(
                u,
                indicator=ind,
                title=ind.display_name,
                label=f"专栏{col_no} {col_title} › {ind.no}. {ind.display_name}",
                location=replace(u.location, indicator_no=ind.no, indicator=ind.name),
            )
    if len(by_no) != len(indicators):
        warnings.append("指标表中有重复的指标编号")

    seen: dict[str, Unit] = {}
    for u in units:
        if u.id in seen:
            line = source.count("\n", 0, u.spans[0][0]) + 1 if u.spans else 0
            raise DocumentError(
                f"{path or doc_id}：第{line}行与前文编号重复（{u.id}），请检查章、节、专栏或指标的编号。"
            )
        seen[u.id] = u
    if not chapters:
        warnings.append("未识别到“第X章”结构：全文按段落处理")
    return Document(
        id=doc_id,
        title=title,
        meta=meta,
        source=path,
        sha256=hashlib.sha256(source.encode("utf-8")).hexdigest(),
        units=tuple(units),
        chapters=tuple(
            Chapter(
                no=c["no"],
                title=c["title"],
                id=uid(f"ch{c['no']:02d}"),
                sections=tuple(
                    Section(s["no"], s["title"], uid(f"ch{c['no']:02d}.s{s['no']:02d}"), tuple(s["units"]))
                    for s in c["sections"]
                ),
                intro_ids=tuple(c["intro"]),
            )
            for c in chapters
        ),
        columns=tuple(
            Column(
                no=c["no"],
                title=c["title"],
                id=uid(f"col{c['no']}"),
                chapter_no=c["chapter_no"],
                section_no=c["section_no"],
                items=tuple(ColumnItem(i, t, x) for i, t, x in c["items"]),
            )
            for c in columns
        ),
        indicators=tuple(indicators),
        warnings=tuple(warnings),
    )
