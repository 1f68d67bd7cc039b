"""Sentence-level evidence, and the decision it supports: answered, partly covered, not covered.

Each candidate sentence (from the top retrieved units, and for a question that names a place,
every sentence naming it) gets:

- ``coverage``: the IDF-weighted share of the question's terms it holds, each term matched by
  itself or by the documents' terms for it (kb/synonyms.tsv);
- ``subject``: whether it holds the question's heaviest topic term;
- ``dense``: the dense similarity of its unit to the question (paraphrase the words miss);
- ``attribute``: whether it carries what is asked (a figure for 多少, a year for 什么时候).

``decide`` turns the best evidence into an ``Outcome`` with the thresholds in ``THRESHOLDS`` —
the one place they live, fitted on the dev split (eval/fit_evidence.py). Left out: a trained
cross-encoder (a ``st:`` reranker could replace ``dense``), negation inside a sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from policyqa import stats
from policyqa.lexicon import Lexicon, lexicon_for
from policyqa.models import KIND_HEADING, KIND_INDICATOR, KIND_TABLE_HEAD, KIND_TITLE, Hit, Unit
from policyqa.query import Ask, Query, Term, asked_clauses
from policyqa.tokenize import Tokenizer

if TYPE_CHECKING:
    from policyqa.index import Index


@dataclass(frozen=True)
class Thresholds:
    answer: float = 0.5  # coverage for a full answer (with the subject term)
    partial: float = 0.33  # coverage for a partly covered topic
    dense_floor: float = 0.86  # dense similarity that counts as evidence of the topic on its own
    dense_weight: float = 0.6
    rank_weight: float = 0.15
    attribute_weight: float = 0.3
    # a sentence's own similarity to the question, above the floor, picks among sentences that
    # tie on words (a colloquial question shares one word with a whole paragraph)
    sentence_weight: float = 6.0
    sentence_floor: float = 0.8
    lead: float = 0.2  # coverage of a best sentence that carries the question alone (_leads)
    # share of that sentence's heaviest word below which a word the evidence holds elsewhere is
    # a remark, not a second topic it must hold too (_leads)
    lead_second: float = 0.7
    about: float = 0.75  # coverage at which a sentence is about the question, not a passing mention
    keep: float = 0.7  # a further sentence must score this share of the best one
    row_margin: float = 0.15  # coverage a prose sentence needs above a name-matched table row
    clause_chars: int = 90  # sentences longer than this are quoted by their relevant clauses
    # rarity (Term.rarity: IDF as a share of the rarest word's) of a word particular enough
    # that a sum asked of it is a measure's cost the documents leave out (partly covered), not
    # a budget they never state (_specific)
    specific: float = 0.5


THRESHOLDS = Thresholds()
SUBJECT_TOP = 5
RARE_TERM_UNITS = 4  # a documents' term written in this few units is looked up, not searched  # the subject is the heaviest term these best sentences hold (see subject_term)

_YEAR_TOKEN = re.compile(r"(?:19|20)\d\d\s*年?")
_FIGURE = re.compile(r"\d|[一二三四五六七八九十两百千万]+(?:级|个|项|类|条|种|家|座|批|次|倍|成|轮)|分之")
_CLAUSE_END = re.compile(r"(?<=[，；：,;:])")


class Outcome(StrEnum):
    ANSWERED = "answered"
    PARTIAL = "partial"
    NOT_COVERED = "not_covered"


@dataclass(frozen=True)
class Evidence:
    unit: Unit
    sentence: str
    rank: int
    coverage: float
    subject: bool
    dense: float
    attribute: bool
    score: float
    found: frozenset[str] = frozenset()  # the question's terms it holds
    unplaced: bool = False  # the question names a place this sentence does not


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    detail: str = ""
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)


def foreign_years(index: Index, q: Query) -> list[str]:
    """Years the question asks about that are neither in the documents' own period nor a
    column of their indicator tables (「2015年的森林覆盖率」): the evidence must name them."""
    if not q.years:
        return []
    per_doc = index.memo.get("evidence.own_years")
    if per_doc is None:
        per_doc = {}
        for d in index.docs.values():
            own: set[int] = set()
            meta = d.meta or {}
            start, end = meta.get("start_year"), meta.get("end_year")
            if isinstance(start, int) and isinstance(end, int):
                own.update(range(start, end + 1))
            for i in d.indicators:
                own.update(v.year for v in (i.baseline, i.target) if v.year)
            per_doc[d.id] = frozenset(own)
        index.memo["evidence.own_years"] = per_doc
    all_years = index.memo.get("evidence.all_years")
    if all_years is None:
        all_years = frozenset().union(*per_doc.values()) if per_doc else frozenset()
        index.memo["evidence.all_years"] = all_years
    own_years = per_doc.get(q.doc, frozenset()) if q.doc else all_years
    return [str(y) for y in q.years if y not in own_years]


def has_figure(sentence: str) -> bool:
    """A number that is not a year (「2025年」 is no answer to 多少)."""
    return bool(_FIGURE.search(_YEAR_TOKEN.sub("", sentence)))


def carries_attribute(q: Query, sentence: str, money: re.Pattern[str] | None = None) -> bool:
    """Does the sentence carry what is asked: for 多少, a figure in a clause that holds one of
    the question's words, or the clause after it (a long sentence's figures may be of other
    things: 「…加大资金投入，污染防治攻坚战取得阶段性胜利」 holds 资金 and, clauses away, 8 年).
    A sum of money asked (``money``: asks.yaml ``money_figure``) is carried by a sum only: 「29项
    指标」 is no 投资."""
    if q.has(Ask.AMOUNT) or q.has(Ask.COMPARE):
        if not has_figure(sentence):
            return False
        if money is not None and q.has(Ask.MONEY) and not money.search(sentence):
            return False
        clauses = [c for c in _CLAUSE_END.split(sentence) if c] or [sentence]
        if len(clauses) == 1 or not q.terms:
            return True
        low = [c.lower() for c in clauses]
        # the question's main words pick the clauses: 生态 beside 「29项指标」 is no 资金
        main = [t for t in q.terms if t.known and not t.place] or list(q.terms)
        top = max(t.weight for t in main)
        main = [t for t in main if t.weight >= top / 2]
        named = [i for i, c in enumerate(low) if any(t.found_in(c) for t in main)]
        if not named:
            return True  # the sentence is the heading's (「专栏2 › 锅炉整治」): its figures are the topic's
        return any(has_figure(clauses[j]) for i in named for j in (i, i + 1) if j < len(clauses))
    if q.has(Ask.WHEN):
        return bool(_YEAR_TOKEN.search(sentence))
    return True


def subject_term(q: Query, evidence: list[Evidence] | None = None) -> Term | None:
    """The heaviest topic term the documents know (a word they never use cannot be the subject),
    among those the question asks about rather than tells in its story. Given the evidence, the
    heaviest such term its sentences hold: an everyday word the documents write once elsewhere
    (「放到」「类别」) weighs most by IDF, yet the retrieved sentences are about another word."""
    pool = [t for t in (q.topic or q.terms) if not t.story] or list(q.topic or q.terms)
    topic = [t for t in pool if t.known] or pool
    if evidence and topic:
        # the best-scored sentences first (their order does not depend on the subject), then all
        ranked = sorted(evidence, key=lambda e: -e.score)
        for pool_ev in (ranked[:SUBJECT_TOP], ranked):
            held = set().union(*(e.found for e in pool_ev))
            if any(t.word in held for t in topic):
                topic = [t for t in topic if t.word in held]
                break
    # a unit or a numeral (微克, 百分点) is how the question asks, not what about
    topic = [t for t in topic if not Tokenizer.names_no_thing(t.word)] or topic
    if not topic:
        return None
    # equal weights are common (every word the documents use once has the top IDF): the one more
    # of the best sentences hold is what they are about (废料 in four, 刺鼻 in one)
    best = sorted(evidence or [], key=lambda e: -e.score)[:SUBJECT_TOP]
    return max(topic, key=lambda t: (t.weight, sum(t.word in e.found for e in best)))


def score_terms(q: Query, text: str) -> tuple[float, frozenset[str]]:
    """The IDF-weighted share of the question's words the text holds. Words no document uses
    that the text lacks count once, as the heaviest of them: a rambling question's colour
    (「门口」「大马路」「半夜三更」) is one missing thing, not eight."""
    low = text.lower()
    found = frozenset(t.word for t in q.terms if t.found_in(low))
    have = sum(t.weight for t in q.terms if t.word in found)
    colour = [t.weight for t in q.terms if not t.named and t.word not in found]
    total = sum(t.weight for t in q.terms if t.named or t.word in found) + max(colour, default=0.0)
    if not total:
        return 0.0, frozenset()
    return have / total, found


def shared_weight(q: Query, e: Evidence) -> float:
    """The weight of the question's topic words (no places) the sentence holds."""
    return sum(t.weight for t in q.terms if not t.place and t.word in e.found)


def in_scope(u: Unit, q: Query) -> bool:
    """Is the unit inside the chapter / section / 专栏 the question names (True if none)?"""
    loc = u.location
    if q.column_no is not None and loc.column_no != q.column_no:
        return False
    if q.chapter_no is not None and loc.chapter_no != q.chapter_no:
        return False
    return q.section_no is None or loc.section_no == q.section_no


def units_naming(index: Index, place: str) -> list[Unit]:
    """The retrievable units whose text names the place, found once per place (the gazetteer
    bounds the memo) rather than by reading the library on every question."""
    key = ("evidence.units_naming", place)
    got = index.memo.get(key)
    if got is None:
        got = [u for units in index.retrievable.values() for u in units if place in u.text]
        index.memo[key] = got
    return got


def units_of_part(index: Index, q: Query, docs: list[str]) -> list[Unit]:
    """The units of the 专栏 or chapter the question names, from the index's lookup tables."""
    if q.column_no is not None:
        units = [u for d in docs for u in index.by_column.get((d, q.column_no), ())]
    else:
        key = ("evidence.chapter_units", q.chapter_no)
        by_doc = index.memo.get(key)
        if by_doc is None:
            by_doc = {}
            for d, units in index.retrievable.items():
                by_doc[d] = [u for u in units if u.location.chapter_no == q.chapter_no]
            index.memo[key] = by_doc
        units = [u for d in docs for u in by_doc.get(d, ())]
    return [u for u in units if in_scope(u, q)]


def _candidates(index: Index, q: Query, hits: list[Hit], limit: int) -> list[tuple[int, Unit]]:
    out = [(r, h.unit) for r, h in enumerate(hits[:limit])]
    scoped = q.column_no is not None or q.chapter_no is not None
    docs = [q.doc] if q.doc else list(q.scope or index.retrievable)
    if scoped:
        # a question about a named part is answered from that part
        seen = {u.id for _, u in out}
        out = [(r, u) for r, u in out if in_scope(u, q)]
        out += [(limit, u) for u in units_of_part(index, q, docs) if u.id not in seen]
    if q.places:
        # every unit naming the place (a city may be named in many measures across chapters)
        seen = {u.id for _, u in out}
        wanted = set(docs)
        for p in q.places:
            for u in units_naming(index, p):
                if u.id not in seen and u.doc in wanted:
                    out.append((limit, u))
                    seen.add(u.id)
    # the documents' own term the synonym table gives for a word of the question (毒气 → 有毒有害
    # 气体): the few units that write it with another word of the question (化工园区), which a
    # rambling question's other words may rank low
    seen = {u.id for _, u in out}
    for term in q.topic:
        if not term.known or term.place or term.story:
            continue
        others = [t for t in q.topic if t is not term and t.known]
        for v in term.variants[1:]:
            us = [u for u in units_naming(index, v) if u.doc in docs and (not scoped or in_scope(u, q))]
            if len(us) > RARE_TERM_UNITS:
                continue
            us = [u for u in us if u.id not in seen and any(t.found_in(u.text.lower()) for t in others)]
            out += [(limit, u) for u in us]
            seen.update(u.id for u in us)
    return [(r, u) for r, u in out if u.kind not in (KIND_HEADING, KIND_TABLE_HEAD, KIND_TITLE)]


def _question_vector(index: Index, q: Query, vector: list[float] | None = None) -> Any:
    """The question's unit vector: the one retrieval computed when given, else the embedder's
    (from the query cache when it holds the text)."""
    import numpy as np

    from policyqa.retrieve import query_vector

    try:
        v = np.asarray(vector if vector is not None else query_vector(index, q.normalized), dtype=np.float32)
    except Exception:  # an embedder that fails here failed retrieval's dense half already
        return None
    return v / max(float(np.linalg.norm(v)), 1e-9)


def sentence_similarity(index: Index, u: Unit, qv: Any, n: int) -> list[float]:
    """Cosine of each of the unit's ``n`` sentences to the question; empty when the build has
    no sentence vectors (then paragraphs alone weigh)."""
    if qv is None:
        return []
    m = stats.sentence_vectors(index, u)
    if m is None or len(m) != n or m.shape[1] != len(qv):
        return []
    return [float(x) for x in m.astype("float32") @ qv]


def gather(
    index: Index,
    q: Query,
    hits: list[Hit],
    dense: dict[str, float],
    limit: int = 8,
    t: Thresholds | None = None,
    vector: list[float] | None = None,
) -> list[Evidence]:
    """Scored sentences, best first. ``vector`` is the question's, as retrieval embedded it."""
    t = t or THRESHOLDS
    years = foreign_years(index, q)
    out: list[Evidence] = []
    qv = _question_vector(index, q, vector)
    lex = lexicon_for(index.settings.kb_dir)
    money = lex.asks.get("money_figure") if money_asked(q, lex) else None
    general = money is not None and not _specific(q, t, lex)
    for rank, u in _candidates(index, q, hits, limit):
        tokened = [(u.text, frozenset())] if u.kind == KIND_INDICATOR else stats.sentence_tokens(index, u)
        sents = [s for s, _ in tokened]
        own = sentence_similarity(index, u, qv, len(sents))
        context = u.label.split(" › ")[-1].lower()
        for i, s in enumerate(sents or [u.text]):
            cov, found = score_terms(q, s)
            # the heading above a sentence says what it is about (「专栏2 › 锅炉整治」)
            ctx_cov, ctx_found = score_terms(q, context + s)
            if ctx_cov > cov:
                cov, found = (cov + ctx_cov) / 2, ctx_found
            unplaced = bool(q.places) and not names_place(q, s)
            if unplaced:
                cov *= 0.5
            if years and not any(y in s for y in years):
                cov *= 0.5
            d = dense.get(u.id, 0.0)
            attr = carries_attribute(q, s, money)
            if attr and money is not None and general and _of_another(index, q, tokened[i][1], t, lex):
                attr = False
            score = (
                cov
                + t.dense_weight * max(0.0, d - 0.75)
                + t.rank_weight / (1 + rank)
                + (t.attribute_weight if attr else 0.0)
                + (t.sentence_weight * max(0.0, own[i] - t.sentence_floor) if own else 0.0)
            )
            out.append(Evidence(u, s, rank, cov, False, d, attr, score, found, unplaced))
    subj = subject_term(q, out)
    out = [replace(e, subject=bool(subj and subj.word in e.found)) for e in out]
    out.sort(key=lambda e: -e.score)
    return place_first(q, out, limit)


def names_place(q: Query, text: str) -> bool:
    """Does the text name a place the question asks about (in any of its forms: 贺州市 as 贺州)?"""
    low = text.lower()
    return any(t.found_in(low) for t in q.terms if t.place and not t.story)


def place_first(q: Query, evidence: list[Evidence], retrieved: int) -> list[Evidence]:
    """A place the question names is a constraint: its own sentences on the question's subject
    come first (「推进崇左白头叶猴…保护廊道建设」 before a general sentence on wildlife that
    scores higher). Promoted are the place's sentences that hold the subject: one sharing a side
    word (「北海市海水入侵」 for shrimp ponds on the coast of 北海, 「石漠化综合治理」 for 南宁的
    扬尘怎么治理) is not: the place was where the asker lives, or the word is not what they
    ask about. ``retrieved`` is kept for callers; rank does not promote."""
    if not q.places:
        return evidence
    subj = subject_term(q, evidence)
    topical = {t.word for t in q.terms if not t.place}

    def promoted(e: Evidence) -> bool:
        return (
            names_place(q, e.sentence) and bool(e.found & topical) and (subj is None or subj.word in e.found)
        )

    return sorted(evidence, key=lambda e: not promoted(e))


def sub_regions(q: Query, lex: Lexicon | None) -> tuple[str, ...]:
    """The places the question constrains that the gazetteer knows as cities (柳州, 南宁市): their
    figures are their own. A sea area or river the documents name (北部湾, 漓江) may have its
    figure only region-wide, and a province is the documents' own region. A place said in a
    clause about the asker is left out. Without a lexicon, every place."""
    if lex is None:
        return q.places
    # where the asker lives or works (「我在南宁上班，…」) is no place the figure is asked for
    asked = asked_clauses(lex.request_part(q.asked), lex)
    out = []
    for p in q.places:
        if p not in asked:
            continue
        r = lex.region(p)
        if r is not None and r.kind == "city":
            out.append(p)
    return tuple(out)


def treated(term: Term, evidence: list[Evidence]) -> bool:
    """Do the documents treat the term as a topic: named in a heading above the evidence, or
    in two different units (rather than once, in passing)?"""
    if any(term.found_in(e.unit.label.lower()) for e in evidence):
        return True
    return len({e.unit.id for e in evidence if term.word in e.found}) >= 2


def about(q: Query, e: Evidence, t: Thresholds, lex: Lexicon | None = None) -> bool:
    """Is the sentence about the question, not a passing mention of its subject: most of the
    question's weight, in at least two of its topic words (one shared word is co-occurrence),
    and the question has no topic word the documents never use (「吞吐量」 is what it asks)?"""
    topical = {x.word for x in q.terms if not x.place}
    unknown = [x for x in q.terms if not x.place and not x.known]
    if e.coverage < t.about or len(e.found & topical) < 2 or unknown:
        return False
    # asked for a figure, the sentence must state where the measure goes (进一步降低, 达到国家
    # 相关要求), not use it as an attribute of something else (「与其吞吐量相适应的设施」)
    return lex is None or lex.ask_matches("target_statement", e.sentence)


def missing_terms(q: Query, evidence: list[Evidence]) -> list[str]:
    found = set().union(*(e.found for e in evidence[:3])) if evidence else set()
    return [t.word for t in q.terms if t.word not in found]


def years_missing(q: Query, strong: list[Evidence], years: list[str]) -> bool:
    return bool(years) and not any(y in e.sentence for e in strong for y in years)


def decide(
    q: Query,
    evidence: list[Evidence],
    t: Thresholds | None = None,
    index_years: list[str] | None = None,
    lex: Lexicon | None = None,
) -> Decision:
    """answered / partly covered / not covered, from the best evidence. ``index_years`` are the
    question's years outside the documents' own (``foreign_years``)."""
    t = t or THRESHOLDS
    index_years = index_years or []
    if not q.terms or not evidence:
        return Decision(Outcome.NOT_COVERED, "这一问题")
    best = evidence[0]
    topic = [x for x in q.topic if x.known]
    if topic and not any(x.word in e.found for e in evidence[:8] for x in topic):
        # only places (or colloquial words) found: a place alone is no topic
        return Decision(Outcome.NOT_COVERED, _absent(q, [x.word for x in q.topic]), (best,))
    if not topic and q.topic:
        outside = [x.word for x in q.topic if x.outside]
        return Decision(
            Outcome.NOT_COVERED, "「" + "、".join(outside[:3]) + "」" if outside else "这一问题", (best,)
        )
    if money_asked(q, lex) and not any(e.attribute for e in evidence[:8]) and not _specific(q, t, lex):
        # a sum asked of nothing more particular than words most parts use (生态环境保护、财政、
        # 自治区): a budget or a tax the documents never state, not a measure's cost left out
        return Decision(Outcome.NOT_COVERED, f"{asked_head(q, lex) or '这笔资金'}的具体数额", (best,))
    strong = [e for e in evidence if e.coverage >= t.answer and e.subject]
    if strong and years_missing(q, strong, index_years):
        return Decision(Outcome.NOT_COVERED, f"{index_years[0]}年的情况", (best,))
    cities = sub_regions(q, lex)
    if (
        cities
        and (q.has(Ask.AMOUNT) or q.has(Ask.WHEN))
        and any(e.subject for e in evidence)
        and not any(e.subject and not e.unplaced for e in evidence)
    ):
        # a figure or date asked for a place (柳州的优良天数目标) that the documents give only for
        # the whole region or for other places: partly covered, and the answer says whose it is
        what = "具体数字" if q.has(Ask.AMOUNT) else "具体时间"
        return Decision(Outcome.PARTIAL, f"{cities[0]}的{what}", tuple(e for e in evidence if e.subject))
    strong = _dated_first(q, strong)
    if strong:
        if (q.has(Ask.AMOUNT) or q.has(Ask.WHEN)) and not any(e.attribute for e in strong):
            subj = subject_term(q, evidence)
            # the figure of what the text leaves out (「补贴」), else of the subject
            unfound = [
                x.word
                for x in q.terms
                if x.known
                and not x.place
                and x.word not in strong[0].found
                and not Tokenizer.names_no_thing(x.word)
            ]
            asked_apart = [x for x in q.terms if x.named and not x.place and x.word not in strong[0].found]
            if (
                subj is not None
                and not asked_apart
                and not treated(subj, strong)
                and not about(q, strong[0], t, lex)
                and (
                    len(strong[0].found & {x.word for x in q.topic}) < 2
                    or (lex is not None and lex.ask_matches("quantity_word", subj.word))
                )
            ):
                # the figure of a thing the text names once, in passing, and shares no other word
                # of the question with (高考 in 「重要考试期间」), or of a quantity it names without
                # its value (「与其吞吐量相适应」): nothing to be partly right about. A named measure
                # the sentence states with the question's other words (桂东…基地 总投资多少, 县县通
                # 还差多少个县) is covered, its figure not: partly covered. So is a question that
                # also asks something the sentence leaves out (每户补贴).
                return Decision(Outcome.NOT_COVERED, f"{asked_head(q, lex) or subj.word}的具体数字", (best,))
            what = "具体数字" if q.has(Ask.AMOUNT) else "具体时间"
            of_what = asked_head(q, lex) or (unfound[0] if unfound else (subj.word if subj else ""))
            return Decision(Outcome.PARTIAL, f"{of_what}的{what}", tuple(strong))
        return Decision(Outcome.ANSWERED, "", tuple(evidence))
    subj = subject_term(q, evidence)
    outside = [x for x in q.terms if x.outside]
    if outside and max(shared_weight(q, e) for e in evidence) < sum(x.weight for x in outside):
        # a subject the documents never name (学区, 户口) outweighs what the question shares with
        # them (区划, 农村): a neighbouring topic, not a partial answer
        return Decision(Outcome.NOT_COVERED, "「" + "、".join(x.word for x in outside[:3]) + "」", (best,))
    if subj is not None and subj.known and not (q.has(Ask.AMOUNT) or q.has(Ask.WHEN)):
        # the question's heaviest topic word heads the section of its best evidence: the section
        # is about it, whatever colour the question adds (「堆矿渣的坝子…」 → 尾矿库 section)
        headed = [e for e in evidence[:3] if subj.word in e.found and subj.found_in(e.unit.label.lower())]
        if headed:
            return Decision(Outcome.ANSWERED, "", tuple(headed + [e for e in evidence if e not in headed]))
    # a sentence on the topic that does not name the place asked covers the topic, if not the
    # place: its coverage before the place halved it (gather) decides covered or not
    top_cov = max(min(1.0, e.coverage * 2) if e.unplaced else e.coverage for e in evidence)
    top_dense = max(e.dense for e in evidence)
    if (top_cov >= t.partial or _leads(q, evidence, t)) and (
        any(e.subject for e in evidence[:5]) or top_dense >= t.dense_floor
    ):
        named = {t.word for t in q.terms if t.named}
        miss = [w for w in missing_terms(q, evidence) if w in named]
        unstated = _figure_unstated(q, evidence, subj, lex)
        if not miss and any(e.subject for e in evidence[:3]):
            # every word the documents know is there; what is missing is colloquial colour
            if unstated:
                return Decision(Outcome.PARTIAL, unstated, tuple(evidence))
            return Decision(Outcome.ANSWERED, "", tuple(evidence))
        # 「没有写明「X」」 only for an X no sentence on the subject holds (空气质量 further down
        # is written, just not with 柳州); a place named only in unrelated sentences (北海 in
        # 洪潮江水库) is not written for this topic
        held = set().union(*(e.found for e in evidence[:8] if e.subject))
        unwritten = [w for w in miss if w not in held and not any(t.word == w and t.story for t in q.terms)]
        if not unwritten and any(e.subject for e in evidence[:5]):
            # what the best sentences leave out, the next ones hold: the topic is covered
            if unstated:
                return Decision(Outcome.PARTIAL, unstated, tuple(evidence))
            return Decision(Outcome.ANSWERED, "", tuple(evidence))
        detail = "「" + "、".join(unwritten[:3]) + "」" if unwritten else "这一细节"
        return Decision(Outcome.PARTIAL, detail, tuple(evidence))
    return Decision(Outcome.NOT_COVERED, _absent(q, missing_terms(q, evidence)), (best,))


def money_asked(q: Query, lex: Lexicon | None) -> bool:
    """Is the figure asked a sum of money: money named in the request (``Ask.MONEY``), and the
    measure after the cue a sum (多少亿元) or, with none, the word the figure is of
    (``asked_head``) a money word or none read? 「对多少公顷公益林实施补助」 asks hectares,
    「补助覆盖的面积是多少」 an area."""
    if lex is None or not q.has(Ask.MONEY):
        return False
    request = asked_clauses(lex.request_part(q.asked), lex).lower()
    cue, unit = lex.asks.get("amount"), lex.asks.get("counted_follows")
    m = cue.search(request) if cue is not None else None
    measure = unit.match(request[m.end() :]) if m is not None and unit is not None else None
    if measure is not None:
        # 多少亿元 is a sum whatever it is of (总额, 估算); 多少公顷, 几个 are counts
        return lex.ask_matches(Ask.MONEY.value, measure.group(0))
    head = asked_head(q, lex)
    return head is None or lex.ask_matches(Ask.MONEY.value, head)


def _specific(q: Query, t: Thresholds, lex: Lexicon | None) -> bool:
    """Does the question name something particular besides money: a topic word the documents
    use in few parts (rarity ≥ ``Thresholds.specific``: 厕所, 储备库, 柴油货车), not a money word
    (asks.yaml ``money``) nor a place?"""
    return any(
        x.known
        and not x.place
        and not x.story
        and x.rarity >= t.specific
        and not (lex is not None and lex.ask_matches(Ask.MONEY.value, x.word))
        for x in q.terms
    )


def _of_another(index: Index, q: Query, tokens: frozenset[str], t: Thresholds, lex: Lexicon) -> bool:
    """Does the sentence name something particular the question does not (a project, a basin,
    a city: a word of rarity ≥ ``Thresholds.specific`` that is no money word)? Its sum is that
    thing's (「左右江…试点…完成投资82亿元」), not the total a general question asks."""
    asked = {v.lower() for x in q.terms for v in x.variants}
    floor = t.specific * stats.max_idf(index)
    return any(
        len(w) >= 2
        and w not in asked
        and not any(w in a or a in w for a in asked)
        and not lex.ask_matches(Ask.MONEY.value, w)
        and stats.idf(index, w) >= floor
        for w in tokens
    )


def _dated_first(q: Query, strong: list[Evidence]) -> list[Evidence]:
    """A figure asked for a year (「到2025年…要达到多少」): the sentences that say the year, when
    one covers the question as well as any undated sentence with a figure does. A figure of no
    stated year (the review's 「核准经营规模423.6万吨/年」) is then not the year's; the dated
    sentence answers, in words when it gives no figure (「满足实际需求并有一定余量」)."""
    if not (q.years and q.has(Ask.AMOUNT)):
        return strong
    dated = [e for e in strong if any(str(y) in e.sentence for y in q.years)]
    undated = [e for e in strong if e not in dated and e.attribute]
    if not dated or not undated or any(e.attribute for e in dated):
        return strong
    if max(e.coverage for e in dated) < max(e.coverage for e in undated):
        return strong
    return dated


def asked_head(q: Query, lex: Lexicon | None) -> str | None:
    """The word a figure or a date is asked of, for saying what the documents leave out — only
    where the wording marks it: the topic words right after the cue, a measure word between, the
    last of them (「多少补贴」「多少亿元生态环境保护专项资金」「多少张床位」), or the word right
    before it, a copula between
    (「税额是多少」「总投资多少」). Times and quantifiers (每年, 每吨; asks.yaml ``not_counted``)
    are no such word. None otherwise: the caller falls back to the subject."""
    if lex is None:
        return None
    request = asked_clauses(lex.request_part(q.asked), lex).lower()
    # the cue of what the answer says is missing: a figure before a date (「哪一年建成、总投资多少」)
    pat = lex.asks.get("amount" if q.has(Ask.AMOUNT) else "when")
    m = pat.search(request) if pat is not None else None
    if m is None:
        return None
    words = sorted(
        (
            t.word.lower()
            for t in q.terms
            if not t.place and not t.story and len(t.word) >= 2 and not lex.ask_matches("not_counted", t.word)
        ),
        key=len,
        reverse=True,
    )
    after = request[m.end() :]
    measure = lex.asks.get("counted_follows")
    skip = measure.match(after) if measure is not None else None
    after = after[skip.end() :] if skip else after
    # the words after it, one after another: the last is the head (生态环境保护专项资金 → 专项资金)
    head, at = None, 0
    while (w := next((w for w in words if after.startswith(w, at)), None)) is not None:
        head, at = w, at + len(w)
    if head is None:
        before = re.sub(r"(是|有|为|约|大约|大概|一共|总共|共)$", "", request[: m.start()])
        head = next((w for w in words if before.endswith(w)), None)
    return next((t.word for t in q.terms if t.word.lower() == head), None) if head else None


def _figure_unstated(q: Query, evidence: list[Evidence], subj: Term | None, lex: Lexicon | None) -> str:
    """「X的具体数字」 when the question asks a figure (or a date) and no sentence on its subject
    gives one: sentences about raising funds answer no 「总投资多少」. Empty when one does, or
    when the question asks something else; a figure in the story (「几千头猪」) is not asked."""
    if not (q.has(Ask.AMOUNT) or q.has(Ask.WHEN)) or q.has(Ask.COMPARE):
        return ""
    if lex is not None:
        request = asked_clauses(lex.request_part(q.asked), lex)
        if not (lex.ask_matches("amount", request) or lex.ask_matches("when", request)):
            return ""
    if any(e.attribute for e in evidence[:5] if e.subject):
        return ""
    what = "具体数字" if q.has(Ask.AMOUNT) else "具体时间"
    head = asked_head(q, lex) or (subj.word if subj is not None else None)
    return f"{head}的{what}" if head else f"这一{what}"


def _leads(q: Query, evidence: list[Evidence], t: Thresholds) -> bool:
    """Does the best sentence carry the question on its own, though its words cover little of a
    rambling question: it holds the subject, its unit is close to the question, and every other
    topic word the evidence holds at all it holds too? 「…放到半夜…规划有没有说要严管」 asks about
    烟花爆竹 whatever else it says; 「…电池厂，环评手续齐不齐全」 asks about 环评 too, which the
    evidence holds only apart from 电池 (two topics the documents never join)."""
    lead = evidence[0]
    if not lead.subject or lead.dense < t.dense_floor or lead.coverage < t.lead:
        return False
    # a word much lighter than the lead's own (空气 beside 烟花爆竹) is a remark, not a second topic
    floor = t.lead_second * max((x.weight for x in q.topic if x.word in lead.found), default=0.0)
    topical = {x.word for x in q.topic if x.known and x.weight >= floor}
    held = set().union(*(e.found for e in evidence[:8])) & topical
    return held <= lead.found


def _absent(q: Query, words: list[str]) -> str:
    """What a refusal may say the documents do not cover: the subjects of their own among the
    words (「户口」) that the documents never use. A word they use (柳州, 工地) is never named —
    「没有涉及「柳州」」 would be false — nor a colloquial one (「泥巴」: the nearest sections may
    well be about mud); then it is 「这一问题」."""
    by_word = {t.word: t for t in q.terms}
    named = [w for w in words if w in by_word and by_word[w].outside and not by_word[w].story]
    return "「" + "、".join(named[:4]) + "」" if named else "这一问题"


def quote_span(sentence: str, q: Query, t: Thresholds | None = None) -> str:
    """The verbatim part of a long sentence that carries the question's terms: from the first
    clause holding a term to the last (a figure's clause is kept with its term)."""
    t = t or THRESHOLDS
    if len(sentence) <= t.clause_chars:
        return sentence
    clauses = [c for c in _CLAUSE_END.split(sentence) if c]
    low = [c.lower() for c in clauses]
    hit = [i for i, c in enumerate(low) if any(term.found_in(c) for term in q.terms)]
    if not hit:
        return sentence
    a, b = hit[0], hit[-1]
    if a == 1 and len(clauses[0]) <= 20:
        # a short opening clause states the measure the rest elaborates (「建立健全秸秆禁烧工作
        # 机制，以甘蔗种植集中的崇左…为重点」): the quote starts with it
        a = 0
    if (
        (q.has(Ask.AMOUNT) or q.has(Ask.COMPARE))
        and b + 1 < len(clauses)
        and not has_figure("".join(clauses[a : b + 1]))
    ):
        b += 1
    out = "".join(clauses[a : b + 1]).rstrip("，；：,;:")
    return out if len(out) >= 8 else sentence
