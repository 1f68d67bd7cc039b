"""Answers read from a document's structure: a 专栏's items, a chapter's or section's outline,
the whole outline, the indicator table, an article, the notice that issued a document. Each statement cites the heading or unit it
reads. With several documents in scope, each document that has the part answers in turn under
its own short title.

Left out: tables other than indicator tables (their rows are answered as text).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from policyqa.answer.intent import range_parts
from policyqa.cite import Citations, mark_each_sentence
from policyqa.models import KIND_HEADER, KIND_INDICATOR, Document, Unit
from policyqa.query import Ask, Query
from policyqa.refs import COLUMN
from policyqa.text import split_sentences, to_cn_number

if TYPE_CHECKING:
    from policyqa.index import Index


def _strip_lead(s: str) -> str:
    return s[2:] if s.startswith("——") else s


def doc_head(index: Index, doc: Document, docs: list[str]) -> list[str]:
    """A document's title line, only when several documents answer."""
    if len(docs) <= 1:
        return []
    return [f"#### 《{(doc.meta or {}).get('short_title') or doc.title}》"]


def scoped_docs(q: Query, index: Index) -> list[Document]:
    if q.doc and q.doc in index.docs:
        return [index.docs[q.doc]]
    return [index.docs[d] for d in q.scope if d in index.docs] or list(index.docs.values())


# a structure question that several documents could answer (「第一章讲什么」 in a library of 100)
# shows this many of them in full and names the rest: the answer's size stays bounded
MAX_DOCS_SHOWN = 3


def shown(docs: list[Document]) -> tuple[list[Document], list[str]]:
    """The documents to answer from in full, and the other matching documents' short titles."""
    rest = [f"《{(d.meta or {}).get('short_title') or d.title}》" for d in docs[MAX_DOCS_SHOWN:]]
    return docs[:MAX_DOCS_SHOWN], rest


def more_line(rest: list[str]) -> list[str]:
    if not rest:
        return []
    names = "".join(rest[:10]) + ("等" if len(rest) > 10 else "")
    # ours, not the documents': a heading, not a cited statement
    return [f"#### 另有{len(rest)}份文件也有这一部分：{names}（请在问题中写明文件名，或在页面上选择文件）"]


def article_nos(index: Index, doc: Document) -> frozenset[int]:
    """The article numbers a document has, read once per document."""
    key = ("structure.article_nos", doc.id)
    got = index.memo.get(key)
    if got is None:
        got = frozenset(u.location.article_no for u in doc.units if u.location.article_no is not None)
        index.memo[key] = got
    return got


def compose_column(index: Index, q: Query, cites: Citations) -> list[str]:
    lines: list[str] = []
    docs, rest = shown([d for d in scoped_docs(q, index) if any(c.no == q.column_no for c in d.columns)])
    for doc in docs:
        col = next(c for c in doc.columns if c.no == q.column_no)
        col_unit = index.units[col.id]
        items = col.items
        if q.places and items:
            # narrowed to a place: the items that name it (none: the evidence answers instead)
            named = [t for t in q.terms if t.place and not t.story]
            items = [i for i in col.items if any(t.found_in(index.units[i.id].text.lower()) for t in named)]
            if not items:
                continue
        lines += doc_head(index, doc, [d.id for d in docs])
        if not col.items:  # an indicator table: its rows by category
            rows = [u for u in doc.units if u.kind == KIND_INDICATOR and u.location.column_no == col.no]
            lines.append(f"#### 专栏{col.no}「{col.title}」（共{len(rows)}项指标）")
            lines.append(f"{col_unit.text}{cites.marks(cites.cite(col_unit))}")
            cats: dict[str, list[Unit]] = {}
            for u in rows:
                cats.setdefault((u.indicator.category if u.indicator else None) or "其他", []).append(u)
            for cat, us in cats.items():
                names = "、".join(u.indicator.display_name for u in us if u.indicator)
                lines.append(f"- {cat}：{names}{cites.marks(*(cites.cite(u) for u in us))}")
            continue
        if items is not col.items:
            lines.append(f"#### 专栏{col.no}「{col.title}」中提到{'、'.join(q.places)}的有{len(items)}项")
        else:
            lines.append(f"#### 专栏{col.no}「{col.title}」（共{len(col.items)}项）")
        for item in items:
            u = index.units[item.id]
            quote = item_quote(u.text) if items is col.items else _naming(u.text, q)
            mark = cites.marks(cites.cite(u, quote))
            lines.append("- " + mark_each_sentence(quote, mark, "。；"))
    return lines + more_line(rest) if lines else lines


ITEM_CHARS = 150  # a 专栏 item is quoted whole up to this length, else by its first sentences


def _naming(text: str, q: Query) -> str:
    """The item's first sentence that names a place the question asks about (the item's whole
    lead when none does on its own)."""
    named = [t for t in q.terms if t.place and not t.story]
    sents = split_sentences(text)
    return next((s for s in sents if any(t.found_in(s.lower()) for t in named)), item_quote(text))


def item_quote(text: str) -> str:
    """A 专栏 item's leading sentences up to ``ITEM_CHARS`` (its projects and places are the
    facts people ask for), at least the first; contiguous, so verbatim."""
    sents = split_sentences(text)
    out = sents[0] if sents else text
    for s in sents[1:]:
        if len(out) + len(s) > ITEM_CHARS:
            break
        out += s
    return out


def compose_navigation(index: Index, q: Query, cites: Citations) -> list[str]:
    """What a chapter or section covers: its heading, first sentence, sections and lead phrases."""
    lines: list[str] = []
    docs, rest = shown([d for d in scoped_docs(q, index) if (d.id, q.chapter_no) in index.by_chapter])
    for doc in docs:
        ch = next(c for c in doc.chapters if c.no == q.chapter_no)
        lines += doc_head(index, doc, [d.id for d in docs])
        head = index.units.get(ch.id)
        if q.section_no is not None:
            sec = next((s for s in ch.sections if s.no == q.section_no), None)
            if sec is None:
                continue
            sh = index.units.get(sec.id)
            if sh is not None:
                marks = cites.marks(
                    *(cites.cite(x) for x in (sh, head) if x is not None)
                )  # the section first: it is the place asked
                lines.append(f"{head.text if head else ''} › {sh.text}{marks}：")
            for uid in sec.unit_ids:
                u = index.units[uid]
                sent = u.lead or split_sentences(u.text)[0]
                lines.append(f"- {_strip_lead(sent).rstrip('。；')}{cites.marks(cites.cite(u, sent))}。")
            for col in doc.columns:
                if col.chapter_no == ch.no and col.section_no == sec.no:
                    cu = index.units[col.id]
                    lines.append(f"- {cu.text}{cites.marks(cites.cite(cu))}")
            continue
        if head is not None:
            if ch.sections:
                lines.append(f"#### 第{to_cn_number(ch.no)}章分{len(ch.sections)}节")
            lines.append(f"{head.text}{cites.marks(cites.cite(head))}")
        for sec in ch.sections:
            sh = index.units.get(sec.id)
            if sh is not None:
                lines.append(f"- {sh.text}{cites.marks(cites.cite(sh))}")
        if not ch.sections:
            body = [u for u in doc.units if u.location.chapter_no == ch.no and u.kind not in ("heading",)]
            for u in body[:6]:
                sent = split_sentences(u.text)[0] if split_sentences(u.text) else u.text
                lines.append(f"- {_strip_lead(sent).rstrip('。；')}{cites.marks(cites.cite(u, sent))}")
        for col in doc.columns:
            if col.chapter_no == ch.no:
                cu = index.units[col.id]
                lines.append(f"- {cu.text}{cites.marks(cites.cite(cu))}")
    return lines + more_line(rest) if lines else lines


def compose_article(index: Index, q: Query, cites: Citations) -> list[str]:
    """An article's text, cited as a whole (one unit per article)."""
    lines: list[str] = []
    nos = [r.no for r in q.refs if r.kind == "article"]
    docs, rest = shown([d for d in scoped_docs(q, index) if article_nos(index, d) & set(nos)])
    for doc in docs:
        lines += doc_head(index, doc, [d.id for d in docs])
        for u in doc.units:
            if u.location.article_no in nos and u.kind != "heading":
                # each statement of the article carries the mark, line by line (its items)
                mark = cites.marks(cites.cite(u))
                lines += [
                    mark_each_sentence(line.strip(), mark) for line in u.text.splitlines() if line.strip()
                ]
    return lines + more_line(rest) if lines else lines


def compose_table(index: Index, q: Query, cites: Citations) -> list[str]:
    """An indicator table as a whole: every row, or those of one attribute or one category."""
    t = q.asked
    lines: list[str] = []
    tables = [d for d in scoped_docs(q, index) if d.indicators]
    docs, rest = shown(tables)
    for doc in docs:
        rows = [u for u in doc.units if u.kind == KIND_INDICATOR and u.indicator is not None]
        if not rows:
            continue
        col = rows[0].location.column_no
        attrs = [a for a in dict.fromkeys(u.indicator.attribute for u in rows) if a and a in t]
        cats = [c for c in dict.fromkeys(u.indicator.category for u in rows) if c and c in t]
        chosen = [
            u
            for u in rows
            if (not attrs or u.indicator.attribute in attrs) and (not cats or u.indicator.category in cats)
        ]
        what = "、".join([f"{c}类" for c in cats] + [f"属{a}" for a in attrs])
        head = f"#### 专栏{col}主要指标共{len(rows)}项" + (f"，其中{what}的有{len(chosen)}项" if what else "")
        lines += doc_head(index, doc, list(index.docs)) + [head]
        for u in chosen:
            ind = u.indicator
            attr = ind.attribute or "表中未标注属性"
            lines.append(f"- 第{ind.no}项 {ind.name}：{attr}{cites.marks(cites.cite(u))}")
    return lines + more_line(rest) if lines else lines


def compose_outline(index: Index, q: Query, cites: Citations) -> list[str]:
    """The chapters (or, asked about 专栏, the boxed columns), each heading cited."""
    lines: list[str] = []
    columns = "专栏" in q.asked
    parts = range_parts(q)
    docs, rest = shown(scoped_docs(q, index))
    for doc in docs:
        if parts:  # 「专栏2至专栏9」「第三章到第五章」: those parts only
            nos = {r.no for r in parts}
            kind_cols = parts[0].kind == COLUMN
            found = [p for p in (doc.columns if kind_cols else doc.chapters) if p.no in nos]
            heads = [u for p in found if (u := index.units.get(p.id)) is not None]
            if not heads:
                continue
            lines += doc_head(index, doc, [d.id for d in docs])
            # a range reads 「专栏2至专栏9」, parts named one by one 「第三章、第五章」
            nos = [r.no for r in parts]
            contiguous = nos == list(range(nos[0], nos[-1] + 1))
            named = (
                f"{parts[0].label}至{parts[-1].label}" if contiguous else "、".join(r.label for r in parts)
            )
            lines.append(f"#### {named}共{len(heads)}{'个专栏' if kind_cols else '章'}")
            lines += [f"- {u.text}{cites.marks(cites.cite(u))}" for u in heads]
            continue
        n_sec = sum(len(c.sections) for c in doc.chapters)
        lines += doc_head(index, doc, [d.id for d in docs])
        lines.append(f"#### 共{len(doc.chapters)}章、{n_sec}节、{len(doc.columns)}个专栏")
        if columns:
            for col in doc.columns:
                cu = index.units.get(col.id)
                if cu is not None:
                    lines.append(f"- {cu.text}{cites.marks(cites.cite(cu))}")
            continue
        for ch in doc.chapters:
            head = index.units.get(ch.id)
            if head is not None:
                # a regulation's chapters hold articles, not sections: no 「（0节）」
                count = f"（{len(ch.sections)}节）" if ch.sections else ""
                lines.append(f"- {head.text}{count}{cites.marks(cites.cite(head))}")
    return lines + more_line(rest) if lines else lines


_DATE_LINE = re.compile(r"(?:19|20)\d\d年\d{1,2}月\d{1,2}日")


def compose_document(index: Index, q: Query, cites: Citations) -> list[str]:
    """Who issued a document, under which 文号 and when: the notice printed before it (its
    header unit), quoted line by line, the line with the date first when a date is asked.
    Empty when the documents in scope carry no notice."""
    lines: list[str] = []
    docs = scoped_docs(q, index)
    for doc in docs[:1] if len(docs) > 1 and not q.doc else docs:
        head = next((u for u in index.units.values() if u.doc == doc.id and u.kind == KIND_HEADER), None)
        if head is None:
            continue
        rows = [r.strip() for r in head.text.splitlines() if r.strip()]
        meta = doc.meta or {}
        named = [
            r for r in rows if any(v and str(v) in r for v in (meta.get("doc_number"), meta.get("office")))
        ]
        dated = [r for r in rows if _DATE_LINE.search(r)]
        picked = (dated[:1] + named[:1]) if q.has(Ask.WHEN) else (named[:1] + dated[:1])
        for r in dict.fromkeys(picked):
            lines.append(f"{r.rstrip('。')}{cites.marks(cites.cite(head, r))}。")
    return lines
