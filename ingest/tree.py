"""Blocks → a typed tree (``Document``): the structure of a Chinese government document.

Reads a 印发通知 header before the title; 第X章 / 第X节 headings; outline headings 一、 （一）
1. （1） (heading units; the paragraphs under them carry the nearest one as ``subheading``);
articles 第X条 (one unit per article with its heading, 款 and 项, ``location.article_no``, id
``<doc>:art012``, inside its chapter and section); 专栏N boxes whose items read 「title：text」;
附表 boxes; tables (``ingest.table``: numbered indicator rows become ``Indicator`` objects with
the header's years); footnotes ①… after a table. Metadata comes from ``ingest.meta``.

Every unit keeps the character spans it came from; the units tile the text they were read
from (page furniture is removed before, by ``ingest.lines.strip_furniture``). Unit ids:
``header``, ``title``, ``front.p01`` / ``body.p01`` (before the first chapter / no chapters),
``ch07``, ``ch07.p01``, ``ch07.s02``, ``ch07.s02.p01``, ``ch07.s02.h01``, ``col8``, ``col8.i3``,
``col1.thead``, ``ind17``, ``col1.note1``, ``art012``.

Left out: images; tables other than indicator tables are kept as text rows; footnote markers in
prose are not linked to their notes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from typing import Any

from ingest.blocks import RE_BOX, RE_ITEM, RE_MARKS, Block, blocks, ends_sentence, lead_phrase
from ingest.cues import cues
from ingest.lines import Line, line_span, split_lines
from ingest.meta import RE_DATE, RE_DOC_NUMBER, RE_OFFICE_LINE, read_meta
from ingest.table import RowDraft, build_indicator, read_table, split_cells
from policyqa.errors import DocumentError
from policyqa.models import (
    KIND_ARTICLE,
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
    Location,
    Section,
    Unit,
)
from policyqa.refs import ARTICLE, Ref, heading_ref
from policyqa.text import cn_number, repair, to_cn_number

STRUCTURAL = ("chapter", "column", "article")
RE_ARTICLE_TITLE = re.compile(r"^[【\[]([^】\]]{1,30})[】\]]")


def _label_chapter(no: int, title: str) -> str:
    return f"第{to_cn_number(no)}章 {title}".strip()


def _label_section(no: int, title: str) -> str:
    return f"第{to_cn_number(no)}节 {title}".strip()


def find_title(front: list[Block], wanted: str | None) -> int | None:
    """Index of the title block among the blocks before the first heading.

    In order: the title ``meta.json`` gives; a short line ending with a kind word of
    ``ingest/cues.yaml`` (「…规划」「…条例」「…的通知」) that does not forward another document
    (a 印发通知 is the header); a short line that is no sentence, date, 文号 or office; the first
    line, when it is a notice itself.
    """
    c = cues()
    texts = [repair(b.lines[0].text) for b in front]
    for i, t in enumerate(texts):
        if wanted and t == wanted:
            return i

    def forwards(t: str) -> bool:
        return any(w in t for w in c.notice_words) and any(w in t for w in c.forwarding_words)

    endings = tuple(e for _, words in c.kinds for e in words)
    for i, (b, t) in enumerate(zip(front, texts, strict=True)):
        if b.kind == "text" and len(t) <= 60 and t.rstrip("》」”").endswith(endings) and not forwards(t):
            return i
    for i, (b, t) in enumerate(zip(front, texts, strict=True)):
        if (
            b.kind == "text"
            and len(t) <= 40
            and not ends_sentence(t)
            and not RE_DATE.match(t)
            and not RE_DOC_NUMBER.fullmatch(t.strip("()（）"))
            and not RE_OFFICE_LINE.match(t)
            and not t.startswith(("(", "（"))
            and not any(w in t for w in c.notice_words)
        ):
            return i
    if texts and any(w in texts[0] for w in c.notice_words):
        return 0
    return None


@dataclass
class _Box:
    kind: str  # "column" or "box"
    no: int
    title: str
    chapter_no: int | None
    section_no: int | None
    items: list[tuple[str, str | None, str]] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"col{self.no}" if self.kind == "column" else f"box{self.no}"

    @property
    def label(self) -> str:
        return (
            f"专栏{self.no} {self.title}" if self.kind == "column" else f"附表{self.no} {self.title}".strip()
        )


@dataclass
class _Builder:
    """The walk over a document's blocks: where we are (chapter, section, box) and what was read."""

    source: str
    doc_id: str
    title: str
    doc_title: str | None
    has_chapters: bool
    units: list[Unit] = field(default_factory=list)
    chapters: list[dict[str, Any]] = field(default_factory=list)
    boxes: list[_Box] = field(default_factory=list)
    drafts: list[tuple[RowDraft, tuple[int | None, int | None]]] = field(default_factory=list)
    notes: list[tuple[str, Unit]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ch: dict[str, Any] | None = None
    sec: dict[str, Any] | None = None
    box: _Box | None = None
    subheading: str | None = None
    counters: dict[str, int] = field(default_factory=dict)
    table_lines: list[Line] = field(default_factory=list)

    def uid(self, local: str) -> str:
        return f"{self.doc_id}:{local}"

    def location(self, **extra: Any) -> Location:
        ch, sec, box = self.ch, self.sec, self.box
        col = box if box is not None and box.kind == "column" else None
        return Location(
            doc=self.doc_id,
            chapter_no=ch["no"] if ch else None,
            chapter=ch["title"] if ch else None,
            section_no=sec["no"] if sec else None,
            section=sec["title"] if sec else None,
            column_no=col.no if col else None,
            column=col.title if col else None,
            doc_title=self.doc_title,
            **extra,
        )

    def place_label(self) -> str:
        parts = []
        if self.ch:
            parts.append(_label_chapter(self.ch["no"], self.ch["title"]))
        if self.sec:
            parts.append(_label_section(self.sec["no"], self.sec["title"]))
        return " › ".join(parts) or self.title

    def scope_prefix(self) -> str:
        if self.ch and self.sec:
            return f"ch{self.ch['no']:02d}.s{self.sec['no']:02d}"
        if self.ch:
            return f"ch{self.ch['no']:02d}"
        if self.sec:
            return f"ch00.s{self.sec['no']:02d}"
        return "front" if self.has_chapters else "body"

    def next_id(self, prefix: str, letter: str) -> str:
        key = f"{prefix}.{letter}"
        self.counters[key] = self.counters.get(key, 0) + 1
        return f"{key}{self.counters[key]:02d}"

    def add(self, local: str, kind: str, text: str, label: str, spans: Any, **kw: Any) -> Unit:
        loc = kw.pop("location", None) or self.location()
        u = Unit(self.uid(local), self.doc_id, kind, text, label, loc, tuple(spans), **kw)
        self.units.append(u)
        return u

    # ------------------------------------------------------------------ blocks

    def heading_no(self, numeral: str, line: Line) -> int:
        try:
            return cn_number(numeral)
        except ValueError:
            raise DocumentError(f"第{line.no}行的编号「{numeral}」不是有效的数字：{line.text[:30]}") from None

    def on_block(self, b: Block) -> None:
        if b.kind != "table" and self.table_lines:
            self.flush_table()
        getattr(self, f"on_{b.kind}")(b)

    def on_chapter(self, b: Block) -> None:
        t = repair(b.lines[0].text)
        h = heading_ref(t)
        assert h is not None
        self.ch = {"no": h[0].no, "title": repair(h[1]), "sections": [], "intro": []}
        self.chapters.append(self.ch)
        self.sec = self.box = None
        self.subheading = None
        self.add(
            f"ch{self.ch['no']:02d}", KIND_HEADING, t, self.place_label(), b.spans, title=self.ch["title"]
        )

    def on_section(self, b: Block) -> None:
        t = repair(b.lines[0].text)
        h = heading_ref(t)
        assert h is not None
        if self.ch is None:
            self.warnings.append(f"第{to_cn_number(h[0].no)}节 出现在任何一章之前（第{b.lines[0].no}行）")
        self.sec = {"no": h[0].no, "title": repair(h[1]), "units": []}
        if self.ch is not None:
            self.ch["sections"].append(self.sec)
        self.box = None
        self.subheading = None
        self.add(self.scope_prefix(), KIND_HEADING, t, self.place_label(), b.spans, title=self.sec["title"])

    def on_column(self, b: Block) -> None:
        t = repair(b.lines[0].text)
        h = heading_ref(t)
        assert h is not None
        self._open_box("column", h[0].no, repair(h[1]), t, b)

    def on_box(self, b: Block) -> None:
        t = repair(b.lines[0].text)
        m = RE_BOX.match(t)
        assert m
        self._open_box("box", self.heading_no(m.group(1), b.lines[0]), m.group(2).strip(), t, b)

    def _open_box(self, kind: str, no: int, title: str, text: str, b: Block) -> None:
        self.box = _Box(
            kind, no, title, self.ch["no"] if self.ch else None, self.sec["no"] if self.sec else None
        )
        self.boxes.append(self.box)
        kind_u = KIND_COLUMN if kind == "column" else KIND_HEADING
        self.add(self.box.prefix, kind_u, text, self.box.label, b.spans, title=title)

    def on_subheading(self, b: Block) -> None:
        t = repair(b.lines[0].text)
        self.subheading = t
        self.add(
            self.next_id(self.scope_prefix(), "h"), KIND_HEADING, t, self.place_label(), b.spans, title=t
        )

    def on_table(self, b: Block) -> None:
        self.table_lines.append(b.lines[0])

    def on_note(self, b: Block) -> None:
        text = b.text(self.source)
        marker = (RE_MARKS.findall(text) or ["?"])[0]
        owner = self.box.prefix if self.box is not None else self.scope_prefix()
        owner_label = self.box.label if self.box is not None else self.place_label()
        n = sum(1 for _, u in self.notes if u.id.startswith(self.uid(owner + ".note"))) + 1
        u = self.add(
            f"{owner}.note{n}", KIND_NOTE, text, f"{owner_label} › 注{marker}", b.spans, title=f"注{marker}"
        )
        self.notes.append((marker, u))

    def on_article(self, b: Block) -> None:
        first = b.lines[0]
        h = heading_ref(repair(first.text))
        assert h is not None and h[0].kind == ARTICLE
        no = h[0].no
        local = Ref(ARTICLE, no).local_id()
        while any(u.id == self.uid(local) for u in self.units):  # 第十条之一 after 第十条
            local += "b"
        text = "\n".join(repair(self.source[s:e]) for s, e in b.spans)
        m = RE_ARTICLE_TITLE.match(h[1])
        art_title = m.group(1) if m else None
        label = (
            f"{self.place_label()} › 第{to_cn_number(no)}条"
            if (self.ch or self.sec)
            else f"第{to_cn_number(no)}条"
        )
        u = self.add(
            local,
            KIND_ARTICLE,
            text,
            label,
            b.spans,
            location=self.location(article_no=no, article=art_title),
            title=art_title,
            subheading=self.subheading,
        )
        self._file(u)
        self.box = None

    def on_text(self, b: Block) -> None:
        text = b.text(self.source)
        truncated = not ends_sentence(b.lines[-1].text)
        box = self.box
        if box is not None and box.kind == "column":
            m = RE_ITEM.match(text)
            item_title = m.group(1).strip() if m else None
            local = f"{box.prefix}.i{len(box.items) + 1}"
            box.items.append((self.uid(local), item_title, text[m.end() :].strip() if m else text))
            label = box.label + (f" › {item_title}" if item_title else "")
            self.add(local, KIND_ITEM, text, label, b.spans, title=item_title, truncated=truncated)
            return
        local = self.next_id(self.scope_prefix(), "p")
        u = self.add(
            local,
            KIND_PARAGRAPH,
            text,
            self.place_label(),
            b.spans,
            lead=lead_phrase(text),
            subheading=self.subheading,
            truncated=truncated,
        )
        self._file(u)

    def _file(self, u: Unit) -> None:
        if self.sec is not None:
            self.sec["units"].append(u.id)
        elif self.ch is not None:
            self.ch["intro"].append(u.id)

    def flush_table(self) -> None:
        lines, self.table_lines = self.table_lines, []
        read = read_table(lines)
        self.warnings.extend(read.warnings)
        box = self.box
        owner = box.prefix if box is not None else self.scope_prefix()
        owner_label = box.label if box is not None else self.place_label()
        if read.head:
            head_text = " ".join(" ".join(c for c in split_cells(x.raw, "tab") if c) for x in read.head)
            local = f"{owner}.thead" if box is not None else self.next_id(owner, "thead")
            self.add(
                local, KIND_TABLE_HEAD, head_text, f"{owner_label} › 表头", [line_span(x) for x in read.head]
            )
        for row in read.other:
            text = "\n".join(" ".join(c for c in split_cells(x.raw, "tab") if c) for x in row)
            u = self.add(
                self.next_id(owner, "r"), KIND_PARAGRAPH, text, owner_label, [line_span(x) for x in row]
            )
            if box is None:
                self._file(u)
        for d in read.drafts:
            self.drafts.append((d, read.years))
            self.add(
                f"ind{d.no:02d}",
                KIND_INDICATOR,
                "\n".join(" ".join(c for c in split_cells(x.raw, "tab") if c) for x in d.lines if x.text),
                "",  # filled in when the indicator is built
                [line_span(x) for x in d.lines if x.text],
            )

    # ------------------------------------------------------------------ indicators

    def resolve_indicators(self) -> list[Any]:
        notes = {}
        for marker, u in self.notes:
            notes.setdefault(marker, re.sub(r"^(注\s*[：:])?\s*[①②③④⑤⑥⑦⑧⑨⑩]", "", u.text).strip())
        indicators = [build_indicator(d, notes, years) for d, years in self.drafts]
        by_no = {i.no: i for i in indicators}
        for k, u in enumerate(self.units):
            if u.kind == KIND_INDICATOR:
                ind = by_no[int(u.id.rsplit(":ind", 1)[1])]
                col_no, col_title = u.location.column_no, u.location.column
                where = f"专栏{col_no} {col_title}" if col_no else self.title
                self.units[k] = replace(
                    u,
                    indicator=ind,
                    title=ind.display_name,
                    label=f"{where} › {ind.no}. {ind.display_name}",
                    location=replace(u.location, indicator_no=ind.no, indicator=ind.name),
                )
        if len(by_no) != len(indicators):
            self.warnings.append("指标表中有重复的指标编号")
        return indicators


def parse_document(source: str, doc_id: str, meta: dict[str, Any] | None = None, path: str = "") -> Document:
    """Parse a document's text (furniture already removed). Pure: no I/O.

    ``meta`` holds ``<id>.meta.json``'s values, which override what is read from the text.
    """
    overrides = dict(meta or {})
    all_blocks = list(blocks(split_lines(source)))
    first_structural = next((i for i, b in enumerate(all_blocks) if b.kind in STRUCTURAL), len(all_blocks))
    front = all_blocks[:first_structural]
    title_idx = find_title(front, overrides.get("title"))
    title = overrides.get("title") or (
        repair(front[title_idx].lines[0].text) if title_idx is not None else doc_id
    )
    doc_meta = read_meta([b.text(source, " ") for b in front], title, overrides)
    short = doc_meta.get("short_title") or title
    builder = _Builder(
        source, doc_id, title, short, has_chapters=any(b.kind == "chapter" for b in all_blocks)
    )
    loc0 = Location(doc=doc_id, doc_title=short)
    if title_idx:
        hdr = all_blocks[:title_idx]
        builder.units.append(
            Unit(
                builder.uid("header"),
                doc_id,
                KIND_HEADER,
                "\n".join(b.text(source) for b in hdr),
                "印发通知",
                loc0,
                tuple(sp for b in hdr for sp in b.spans),
            )
        )
    if title_idx is not None:
        tb = all_blocks[title_idx]
        builder.units.append(
            Unit(
                builder.uid("title"), doc_id, KIND_TITLE, tb.text(source), title, loc0, tb.spans, title=title
            )
        )
    for b in all_blocks[(title_idx + 1) if title_idx is not None else 0 :]:
        builder.on_block(b)
    if builder.table_lines:
        builder.flush_table()
    indicators = builder.resolve_indicators()
    _check_ids(builder.units, source, path or doc_id)
    if not builder.chapters and not any(u.kind == KIND_ARTICLE for u in builder.units):
        builder.warnings.append("未识别到“第X章”结构：全文按段落处理")
    uid = builder.uid
    return Document(
        id=doc_id,
        title=title,
        meta=doc_meta,
        source=path,
        sha256=hashlib.sha256(source.encode("utf-8")).hexdigest(),
        units=tuple(builder.units),
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
            for c in builder.chapters
        ),
        columns=tuple(
            Column(
                no=c.no,
                title=c.title,
                id=uid(c.prefix),
                chapter_no=c.chapter_no,
                section_no=c.section_no,
                items=tuple(ColumnItem(i, t, x) for i, t, x in c.items),
            )
            for c in builder.boxes
            if c.kind == "column"
        ),
        indicators=tuple(indicators),
        warnings=tuple(builder.warnings),
        text=source,
    )


def _check_ids(units: list[Unit], source: str, where: str) -> None:
    seen: set[str] = set()
    for u in units:
        if u.id in seen:
            line = source.count("\n", 0, u.spans[0][0]) + 1 if u.spans else 0
            raise DocumentError(
                f"{where}：第{line}行与前文编号重复（{u.id}），请检查章、节、专栏或指标的编号。"
            )
        seen.add(u.id)
