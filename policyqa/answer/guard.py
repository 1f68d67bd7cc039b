"""Refusals as types: what the documents cannot answer, decided before and after retrieval.

``before_search`` reads the ``Query`` alone: requests that are no questions about the documents
(instructions to the system, small talk, writing, weather, personal advice — cue phrases in
kb/lexicon/guard.yaml), parts the documents do not have (「专栏12」「第二十章」), and scope
conflicts taken from the documents' metadata and text: another five-year period, a year no
document mentions, another region (kb/lexicon/regions.tsv) than the documents'. ``after_search``
lets a named region through when a retrieved sentence names it together with the question's
topic (a plan may speak of a neighbouring province), and then refuses firms and office holders
no document names (asks.yaml ``organization``, ``person_asked``). Evidence-based refusals (the topic is not
covered) come from ``policyqa.answer.evidence``.

A ``Refusal`` carries its kind and a detail; ``message`` renders the user's text from
kb/lexicon/messages.yaml. No control flow depends on display strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from policyqa import stats
from policyqa.lexicon import Lexicon
from policyqa.models import Hit
from policyqa.query import RE_PERIOD, Ask, Query, asked_clauses, document_names
from policyqa.refs import ARTICLE, CHAPTER, COLUMN, INDICATOR, SECTION
from policyqa.text import split_sentences, to_cn_number

if TYPE_CHECKING:
    from policyqa.index import Index


NATIONAL = ("全国", "中华人民共和国")  # how metadata names a country-wide document's region


class RefusalKind(StrEnum):
    INSTRUCTION = "instruction"
    SMALLTALK = "smalltalk"
    CREATIVE = "creative"
    WEATHER = "weather"
    ADVICE = "advice"
    OPINION = "opinion"
    MARKET = "market"
    NO_TEXT = "no_text"
    MISSING_PART = "missing_part"
    OTHER_PERIOD = "other_period"
    OTHER_YEAR = "other_year"
    OTHER_REGION = "other_region"
    OTHER_DOCUMENT = "other_document"
    CITED_DOCUMENT = "cited_document"
    NOT_COVERED = "not_covered"


# kinds after which the nearest sections are worth showing (the question was about the topic)
SHOWS_NEAREST = frozenset(
    {RefusalKind.NOT_COVERED, RefusalKind.OTHER_REGION, RefusalKind.OTHER_YEAR, RefusalKind.OTHER_PERIOD}
)


@dataclass(frozen=True)
class Refusal:
    kind: RefusalKind
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind.value, "detail": self.detail}


def docs_in_scope(q: Query, index: Index) -> list[str]:
    if q.doc and q.doc in index.docs:
        return [q.doc]
    return [d for d in q.scope if d in index.docs] or list(index.docs)


def docs_phrase(index: Index, docs: list[str]) -> str:
    """How messages name the documents: 《short title》 for one, 「文件库」 for many."""
    if len(docs) == 1:
        d = index.docs[docs[0]]
        return f"《{(d.meta or {}).get('short_title') or d.title}》"
    return "文件库中的文件"


def examples(index: Index) -> str:
    """Example questions from the documents' structure (its first indicator, a 专栏, a chapter)."""
    out = []
    for d in index.docs.values():
        if d.indicators:
            ind = d.indicators[0]
            out.append(f"「{ind.name}的目标是多少？」")
        if d.columns:
            out.append(f"「专栏{d.columns[-1].no}包括哪些内容？」")
        if d.chapters:
            out.append(f"「第{to_cn_number(d.chapters[-1].no)}章讲什么？」")
        if out:
            break
    return "".join(out[:3])


def message(r: Refusal, q: Query, index: Index, lex: Lexicon) -> str:
    docs = docs_in_scope(q, index)
    metas = [index.docs[d].meta or {} for d in docs]
    return lex.message(
        f"refusal.{r.kind.value}",
        detail=r.detail,
        docs=docs_phrase(index, docs),
        examples=examples(index),
        own_region="、".join(dict.fromkeys(m.get("region") or "" for m in metas if m.get("region")))
        or "本地区",
        own_period="、".join(dict.fromkeys(f"“{p}”" for p in (doc_period(index, d) for d in docs) if p))
        or "本",
    )


def missing_part(q: Query, index: Index) -> str | None:
    """A part the question names that no document in scope has (「专栏12（规划共有专栏1—9）」)."""
    docs = [index.docs[d] for d in docs_in_scope(q, index)]
    for r in q.refs:
        if r.kind == CHAPTER and not any(c.no == r.no for d in docs for c in d.chapters):
            n = max((len(d.chapters) for d in docs), default=0)
            return f"{r.label}（共{n}章）"
        if r.kind == SECTION:
            ch_no = r.chapter or q.chapter_no
            chs = [c for d in docs for c in d.chapters if ch_no is None or c.no == ch_no]
            if not chs:
                return f"{r.label}（共{max((len(d.chapters) for d in docs), default=0)}章）"
            if not any(s.no == r.no for c in chs for s in c.sections):
                where = f"第{to_cn_number(ch_no)}章" if ch_no else ""
                return f"{where}第{to_cn_number(r.no)}节（该章共{max(len(c.sections) for c in chs)}节）"
        if r.kind == COLUMN and not any(c.no == r.no for d in docs for c in d.columns):
            n = max((len(d.columns) for d in docs), default=0)
            return f"{r.label}（共{n}个专栏）" if n else f"{r.label}（没有专栏）"
        if r.kind == INDICATOR and not any(i.no == r.no for d in docs for i in d.indicators):
            n = max((len(d.indicators) for d in docs), default=0)
            return f"{r.label}（主要指标共{n}项）"
        if r.kind == ARTICLE and not any(u.location.article_no == r.no for d in docs for u in d.units):
            return f"{r.label}"
    return None


def before_search(q: Query, index: Index, lex: Lexicon) -> Refusal | None:
    kind = lex.guard_kind(q.asked)
    if kind:
        return Refusal(RefusalKind(kind))
    part = missing_part(q, index)
    if part:
        return Refusal(RefusalKind.MISSING_PART, part)
    other = other_document(q, index, lex)
    if other:
        return other
    known_years = stats.doc_years(index, q.doc)
    unknown = [y for y in q.years if y not in known_years]
    # a claim's wrong year (「2023年底前全部淘汰」) is what the answer corrects, from the text
    if unknown and not q.has(Ask.CLAIM):
        return Refusal(RefusalKind.OTHER_YEAR, str(unknown[0]))
    return None


_BOOK_TITLE = re.compile(r"《([^《》]{2,60})》")


def other_document(q: Query, index: Index, lex: Lexicon) -> Refusal | None:
    """A document the question names in 《》 that the library neither holds nor quotes
    (「《环境保护法》里……怎么规定」): what it says cannot be answered from the library. A title
    the documents cite (《大气污染防治条例》 in a plan) is a topic of theirs, and passes — unless
    its own provisions are asked (asks.yaml ``law_named`` then ``law_provision``: 「按《…条例》要罚款
    多少」, 「按刑法要判几年」), which a plan citing it does not hold. A document the library holds passes."""
    if q.doc is not None:
        return None
    held = [n for d in index.docs for n in document_names(index, d)]

    def in_library(title: str) -> bool:
        return any(title in n or n in title for n in held)

    for m in _BOOK_TITLE.finditer(q.asked):
        title = m.group(1).strip()
        if not stats.in_corpus(index, title) and not in_library(title):
            return Refusal(RefusalKind.OTHER_DOCUMENT, f"《{title}》")
    named, provision = lex.asks.get("law_named"), lex.asks.get("law_provision")
    if named is None or provision is None:
        return None
    request = lex.request_part(q.asked)
    for m in named.finditer(request):
        title = next((g for g in m.groups() if g), "").strip()
        after = request[m.end() :]
        if not title or in_library(title) or not provision.search(after):
            continue
        if lex.ask_matches("kind_plan", after):
            continue  # 「根据…条例，规划对…有什么要求」 asks what the plan says
        # cited: the documents write the title in 《》 (a method they name, 面积法, is no law)
        cited = stats.in_text(index, f"《{title}》") or (
            not m.group(0).startswith("《") and stats.in_text(index, title + "》")
        )
        return Refusal(RefusalKind.CITED_DOCUMENT if cited else RefusalKind.OTHER_DOCUMENT, f"《{title}》")
    return None


def unknown_organization(q: Query, index: Index, lex: Lexicon) -> str | None:
    """A company or group the question asks about (asks.yaml ``organization``: 「…股份有限公司」
    「…集团」) whose own name no document writes: what it did is no plan's content. Its name is
    the word just before the suffix (糖业 in 南宁糖业股份有限公司; a place there is no name): a
    kind of firm the documents know (「那个化工有限公司」) passes, and so does a firm named only
    in the story told before the question."""
    pat = lex.asks.get("organization")
    if pat is None:
        return None
    request = asked_clauses(lex.request_part(q.asked), lex)

    def is_place(w: str) -> bool:
        return _is_place(index, lex, w)

    for m in pat.finditer(request):
        words: list[str] = []
        # a suffix inside a word (钢铁集团) is no part of the name
        for w in (pat.sub("", w) for w in index.tokenizer.words(request[: m.start()])):
            if not w:
                continue
            # a short name the tokenizer cuts into characters (柳钢 → 柳 / 钢) is one word again
            if len(w) == 1 and words and len(words[-1]) < 4 and not is_place(words[-1]):
                words[-1] += w
            else:
                words.append(w)
        own = [w for w in words[-2:] if len(w) >= 2 and not is_place(w)]
        if own and stats.in_text(index, own[-1]):
            # a kind of firm the documents know (石化) may follow a name they do not write
            # (「中石油广西石化公司」): the words right before it, up to a particle or a filler
            run: list[str] = []
            for w in reversed(words[-4:-1]):
                if len(w) < 2 or w in lex.fillers:
                    break
                run.append(w)
            unknown = [w for w in run if w in request[: m.start()] and _name_like(index, w)]
            if unknown:
                start = request.rfind(unknown[-1], 0, m.start())
                return "「" + request[start : m.end()] + "」"
        if (
            own
            and not stats.in_text(index, own[-1])
            and (m.group(0) != "公司" or any(_name_like(index, w) for w in own))
        ):
            # the whole name: the words before it that no document writes either (星辰 糖业),
            # and a place in front (南宁糖业), at most three words
            i = len(words) - 1 - words[::-1].index(own[-1])
            start = request.rfind(own[-1], 0, m.start())
            for w in reversed(words[max(0, i - 2) : i]):
                if not (
                    is_place(w) or (len(w) >= 2 and w not in lex.fillers and not stats.in_text(index, w))
                ):
                    break
                start = request.rfind(w, 0, start)
                if is_place(w):
                    break
            return "「" + request[start : m.end()] + "」"
    return None


NAME_FREQ = 50  # a word this frequent in jieba's general dictionary is a common word, not a name


def _name_like(index: Index, w: str) -> bool:
    """A word no document writes and the general dictionary hardly knows (中石油, not 物业):
    the name of a firm, not a kind of one."""
    return not stats.in_text(index, w) and index.tokenizer.general_frequency(w)[0] < NAME_FREQ


def unknown_person(q: Query, index: Index, lex: Lexicon) -> str | None:
    """「厅长是谁」: a person asked for by a title (asks.yaml ``person_asked``, the word just before
    it) that no document writes. Plans name departments, not office holders; a title they do
    write (河长 in 河长制) is their topic and passes."""
    pat = lex.asks.get("person_asked")
    if pat is None:
        return None
    request = asked_clauses(lex.request_part(q.asked), lex)
    for m in pat.finditer(request):
        words = [w for w in index.tokenizer.words(request[: m.start()]) if w not in lex.fillers]
        w = words[-1] if words else ""
        if len(w) >= 2 and not _is_place(index, lex, w) and not stats.in_text(index, w):
            return f"「{_title_shown(w, words[:-1], index)}」"
    return None


def _title_shown(w: str, before: list[str], index: Index) -> str:
    """The title as the user wrote it: a title whose first character repeats (局局长: 局 + 局长)
    was cut one character late, and that character ends the word before (生态环境局局长, not
    局局长). 副局长 is a title of its own."""
    if len(w) >= 3 and w[0] == w[1] and index.tokenizer.general_frequency(w[1:])[0]:
        return (before[-1] if before else "") + w
    return w


def _is_place(index: Index, lex: Lexicon, word: str) -> bool:
    """A place the documents name, or a gazetteer name written exactly (南宁, not 南宁糖业)."""
    return word in stats.place_names(index) or any(f == word for _, f in lex.regions_in(word))


def own_regions(index: Index, lex: Lexicon, docs: list[str]) -> set[str]:
    """The gazetteer names of the documents' own regions (from their metadata and titles), and
    of every region whose parent is one of them (南宁市 is a Guangxi plan's own)."""
    out: set[str] = set()
    for d in docs:
        doc = index.docs[d]
        for text in ((doc.meta or {}).get("region") or "", doc.title):
            for r, _ in lex.regions_in(text):
                out.add(r.name)
    out |= {r.name for r in lex.regions if r.parent in out}
    return out


def doc_period(index: Index, doc: str) -> str | None:
    d = index.docs[doc]
    m = RE_PERIOD.search((d.meta or {}).get("period") or d.title)
    return m.group(0) if m else None


def _co_mentioned(
    q: Query,
    hits: list[Hit],
    forms: tuple[str, ...],
    index: Index | None = None,
    lex: Lexicon | None = None,
) -> bool:
    """Does a retrieved sentence name one of ``forms`` together with the question's topic?
    With ``index``, the form may stand anywhere in the hit's section (a plan's review of the
    previous period names the period once, at the head of the section). With ``lex``, a region
    named only as the yardstick of a ranking (「稳居全国第3位」) is not named for the topic."""
    topic = [t for t in q.topic if t.known and not any(f in t.word for f in forms)]
    if not topic:
        return False
    for h in hits[:5]:
        for s in split_sentences(h.unit.text):
            low = s.lower()
            if sum(t.found_in(low) for t in topic) < max(1, len(topic) // 2):
                continue
            context = s if index is None else _section_text(index, h)
            if any(f in context and not (lex is not None and lex.ranked_within(context, f)) for f in forms):
                return True
    return False


def _section_text(index: Index, h: Hit) -> str:
    loc = h.unit.location
    if loc.chapter_no is None:
        return h.unit.text
    return "".join(
        u.text
        for u in index.retrievable.get(h.unit.doc, [])
        if u.location.chapter_no == loc.chapter_no and u.location.section_no == loc.section_no
    )


def doc_scopes(index: Index, lex: Lexicon) -> dict[str, tuple[str | None, frozenset[str], bool]]:
    """Each document's period, gazetteer regions and whether it is national, read once per
    index and lexicon (a question never loops over the library's titles)."""
    key = ("guard.doc_scopes", id(lex))
    got = index.memo.get(key)
    if got is None:
        got = {
            d: (
                doc_period(index, d),
                frozenset(own_regions(index, lex, [d])),
                (index.docs[d].meta or {}).get("region") in NATIONAL,
            )
            for d in index.docs
        }
        index.memo[key] = got
    return got


def _wider(q: Query, names: list[str], lex: Lexicon, national: bool) -> list[str]:
    """The countries (its own or another) among the regions a regional document does not cover,
    when a figure is asked: a question that names one beside the document's own region (「全国的
    …是多少，本地比全国高多少」) asks the country's figure too, which the document states only
    with the topic. Asked how the region stands in the country (「在全国是什么水平」) it is not."""
    if national or not (q.has(Ask.AMOUNT) or q.has(Ask.COMPARE)):
        return []
    return [n for n in names if (r := lex.region(n)) is not None and r.kind == "country"]


def conflicting_docs(q: Query, index: Index, lex: Lexicon, hits: list[Hit]) -> dict[str, Refusal]:
    """The documents in scope that cannot answer for the period or region the question names:
    another five-year period than the document's own, or another region than its own (a
    national document has every region), unless the document names it with the question's topic
    (a plan reviews the previous period and speaks of neighbouring provinces; for a period the
    question must also ask no target of it). Documents whose own period and region differ are
    read from one more search limited to them (not one per document); one absent from it
    cannot name the topic."""
    if not (q.periods or q.regions):
        return {}
    from policyqa.retrieve import search

    scopes = doc_scopes(index, lex)
    suspects = []
    for d in docs_in_scope(q, index):
        period, own, national = scopes[d]
        other_period = any(period and p != period for p in q.periods)
        others = [name for name in q.regions if name not in own]
        other_region = bool(others) and (not (own & set(q.regions)) or _wider(q, others, lex, national))
        if other_region and national:
            r = lex.region(others[0])
            other_region = r is not None and r.kind == "country"
        if other_period or other_region:
            suspects.append(d)
    if not suspects:
        return {}
    by_doc: dict[str, list[Hit]] = {}
    for h in hits:
        by_doc.setdefault(h.unit.doc, []).append(h)
    crowded = [d for d in suspects if len(by_doc.get(d, [])) < 3]
    if crowded:
        # their own best units, from one search over the crowded-out documents together
        for h in search(index, replace(q, doc=None, scope=tuple(crowded)), k=max(5, 3 * len(crowded))):
            if len(by_doc.get(h.unit.doc, [])) < 5:
                by_doc.setdefault(h.unit.doc, []).append(h)
    out: dict[str, Refusal] = {}
    for d in suspects:
        period, own, national = scopes[d]
        doc_hits = by_doc.get(d, [])
        for p in q.periods:
            if period and p != period:
                if lex.ask_matches("target", q.asked) or not _co_mentioned(q, doc_hits, (p,), index):
                    out[d] = Refusal(RefusalKind.OTHER_PERIOD, f"“{p}”时期")
        if d in out:
            continue
        others = [name for name in q.regions if name not in own]
        wider = _wider(q, others, lex, national)
        if not others or (own & set(q.regions) and not wider):
            continue
        r = lex.region(wider[0] if wider else others[0])
        forms = r.forms if r else (others[0],)
        if not _co_mentioned(q, doc_hits, forms, lex=lex):
            out[d] = Refusal(RefusalKind.OTHER_REGION, forms[-1] if len(forms) > 1 else forms[0])
    return out


def after_search(
    q: Query, index: Index, lex: Lexicon, hits: list[Hit]
) -> tuple[Refusal | None, list[str], dict[str, Refusal]]:
    """(a refusal when no document in scope can answer, else None; the documents that can; the
    refusal of the documents set aside, for when the others turn out not to cover the topic:
    「广东省的PM2.5目标」 in a library of a Guangxi plan and national regulations is about the
    plan's region, not about PM2.5 missing from the regulations)."""
    docs = docs_in_scope(q, index)
    bad = conflicting_docs(q, index, lex, hits)
    left = [d for d in docs if d not in bad]
    if not left:
        return next(iter(bad.values())), [], bad
    # a firm or an office holder no document names, once the region is known to be the documents'
    # own (「北京市生态环境局局长是谁」 is about Beijing before it is about a title)
    unnamed = unknown_organization(q, index, lex) or unknown_person(q, index, lex)
    if unnamed:
        return Refusal(RefusalKind.NOT_COVERED, unnamed), left, bad
    return None, left, bad
