"""What kind of answer a question wants: an ``Intent`` chosen from the ``Query``'s features.

Features only — asks (kb/lexicon/asks.yaml), references, matched indicator rows, the amount of
topic left once references and cue phrases are removed — never the question's wording. Order
matters: a question that names a part and asks nothing more is navigation; one that also names
a topic is a free question scoped to that part.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from policyqa.lexicon import lexicon_for
from policyqa.query import Ask, Query
from policyqa.refs import ARTICLE, CHAPTER, COLUMN, Ref

if TYPE_CHECKING:
    from policyqa.index import Index

NAV_CONTENT_CHARS = 2  # topic characters a navigation question may carry (「第七章讲什么」)
COLUMN_CONTENT_CHARS = 4


class Intent(StrEnum):
    INDICATOR = "indicator"  # one row of an indicator table
    COMPARE = "compare"  # the difference between a row's two years
    TABLE = "table"  # the table as a whole, or its rows of one attribute / category
    OUTLINE = "outline"  # the document's chapters or 专栏
    COLUMN = "column"  # what a 专栏 lists
    NAVIGATION = "navigation"  # what a chapter or section covers
    ARTICLE = "article"  # what an article says
    WHERE = "where"  # where a topic is treated
    PREMISE = "premise"  # 「…是真的吗」: confirm or correct a claim
    LIST = "list"
    FREE = "free"
    DOCUMENT = "document"  # who issued a document, when, its 文号: read from its notice


def table_words(index: Index, doc: str | None) -> set[str]:
    """The words of the indicator tables' own vocabulary (categories, attributes)."""
    out = {"指标", "约束性", "预期性", "类", "主要指标"}
    for d in index.docs.values():
        if doc and d.id != doc:
            continue
        for i in d.indicators:
            if i.category:
                out.add(i.category)
                out.update(index.tokenizer.words(i.category))
            if i.attribute:
                out.add(i.attribute)
    return out


def choose(q: Query, index: Index) -> Intent:
    refs = {r.kind for r in q.refs}
    topic = [t.word for t in q.topic]
    if q.has(Ask.TABLE) and not q.explicit_indicator and refs <= {COLUMN}:
        tw = table_words(index, q.doc)
        if all(w in tw or any(w in x for x in tw) for w in topic):
            return Intent.TABLE
    if q.has(Ask.OUTLINE) and not refs and not topic:
        return Intent.OUTLINE
    if range_parts(q) and not q.places and _only_title_words(q, index, range_parts(q)):
        return Intent.OUTLINE  # 「专栏2至专栏9有哪几类工程」: the parts' headings
    if q.about_document and not refs:
        return Intent.DOCUMENT  # 「规划是哪年印发的」: nothing asked of its content
    if q.has(Ask.WHERE) and q.chapter_no is None and q.column_no is None and ARTICLE not in refs:
        return Intent.WHERE
    if ARTICLE in refs:
        return Intent.ARTICLE
    if q.indicator_nos:
        if q.has(Ask.COMPARE):
            return Intent.COMPARE
        return Intent.INDICATOR
    if q.column_no is not None and q.content_chars <= COLUMN_CONTENT_CHARS and not q.places:
        return Intent.COLUMN
    if q.column_no is not None and q.places and q.has(Ask.LIST) and _only_column_words(q, index):
        # 「专栏2里某市有哪些大气治理工程」: the 专栏's items that name the place (its other words
        # are the 专栏's own title); a topic of its own makes it a question scoped to the 专栏
        return Intent.COLUMN
    if q.chapter_no is not None and (
        q.content_chars <= NAV_CONTENT_CHARS
        or (q.section_no is not None and q.has(Ask.LIST) and q.content_chars <= COLUMN_CONTENT_CHARS)
    ):
        return Intent.NAVIGATION
    if q.has(Ask.CLAIM) and q.terms and not q.has(Ask.LIST):
        return Intent.PREMISE
    if q.has(Ask.LIST):
        return Intent.LIST
    return Intent.FREE


def range_parts(q: Query) -> list[Ref]:
    """Several chapters or several 专栏 the question names together (「第三章到第五章」
    「专栏2至专栏9」), in order; [] for one part or parts of mixed kinds."""
    parts = [r for r in q.refs if r.kind in (CHAPTER, COLUMN)]
    if len(parts) < 2 or len(parts) != len(q.refs) or len({r.kind for r in parts}) > 1:
        return []
    return sorted(set(parts), key=lambda r: r.no)


def _only_title_words(q: Query, index: Index, parts: list[Ref]) -> bool:
    """Are the question's topic words, places aside, all in the titles of the parts it names
    (or the name of their kind, 专栏 / 章, or a verb of what parts hold, asks.yaml ``part_verbs``)?"""
    nos = {r.no for r in parts}
    kind = parts[0].kind
    titles = [
        p.title
        for d in index.docs.values()
        if not q.doc or d.id == q.doc
        for p in (d.columns if kind == COLUMN else d.chapters)
        if p.no in nos
    ]
    lex = lexicon_for(index.settings.kb_dir)
    return bool(titles) and all(
        t.word in ("专栏", "章", "章节")
        or any(t.word in title for title in titles)
        or lex.ask_matches("part_verbs", t.word)
        for t in q.topic
        if not t.place
    )


def _only_column_words(q: Query, index: Index) -> bool:
    """Are the question's topic words, places aside, all in the title of the 专栏 it names?"""
    titles = [
        c.title
        for d in index.docs.values()
        if not q.doc or d.id == q.doc
        for c in d.columns
        if c.no == q.column_no
    ]
    return bool(titles) and all(any(t.word in title for title in titles) for t in q.topic if not t.place)


# intents answered from the documents' structure: no topic evidence is needed
STRUCTURAL = frozenset(
    {Intent.TABLE, Intent.OUTLINE, Intent.COLUMN, Intent.NAVIGATION, Intent.ARTICLE, Intent.DOCUMENT}
)
