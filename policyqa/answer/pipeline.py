"""``ask(index, question, history) → Answer``: the answerer as plain steps.

1. ``check_input`` — empty / too long / no text → ``invalid``.
2. ``followup.standalone`` — a follow-up becomes a standalone question.
3. ``analyze`` — one ``Query`` (policyqa.query).
4. ``guard.before_search`` — requests that are no questions, missing parts, unknown years.
5. ``search`` — hybrid retrieval; ``guard.after_search`` — other periods and regions.
6. ``intent.choose``; for topic intents, ``evidence.gather`` + ``evidence.decide``
   → answered / partly covered / not covered.
7. ``compose`` by intent; ``finish`` numbers citations and checks the contract.

A contract violation is a bug: it is logged and counted (``CONTRACT_VIOLATIONS``), and the
question is answered as not covered rather than with a broken answer. With an LLM the same
evidence goes to the model (policyqa.llm) and its answer is checked the same way.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from policyqa.answer import evidence, followup, guard
from policyqa.answer.compose.free import compose_evidence, compose_where, nearest_sections
from policyqa.answer.compose.indicator import compose_compare, compose_indicator
from policyqa.answer.compose.structure import (
    compose_article,
    compose_column,
    compose_document,
    compose_navigation,
    compose_outline,
    compose_table,
)
from policyqa.answer.intent import STRUCTURAL, Intent, choose
from policyqa.cite import Citations, contract_problems, renumber
from policyqa.lexicon import Lexicon, lexicon_for
from policyqa.models import (
    OUTCOME_ANSWERED,
    OUTCOME_INVALID,
    OUTCOME_NOT_COVERED,
    OUTCOME_PARTIAL,
    Answer,
    Hit,
)
from policyqa.query import Query, analyze
from policyqa.retrieve import SearchTrace, search

History = Sequence[dict[str, Any]]
log = logging.getLogger(__name__)
_LOCK = threading.Lock()
CONTRACT_VIOLATIONS = {"count": 0}


def check_input(question: str, max_chars: int) -> str | None:
    """A message for input that cannot be a question, else None."""
    q = (question or "").strip()
    if not q:
        return "请输入问题。"
    if len(q) > max_chars:
        return f"问题太长（{len(q)} 字），请精简到 {max_chars} 字以内。"
    if not re.search(r"[\u4e00-\u9fffA-Za-z0-9]", q):
        return "没有读到可以检索的文字，请用中文提问。"
    return None


def _vector(trace: SearchTrace, q: Query) -> list[float] | None:
    """The vector retrieval embedded for this question's text, if it did."""
    return trace.vector if trace.query_text == q.normalized else None


def ask(
    index: Any,
    question: str,
    history: History = (),
    *,
    llm: Any = None,
    on_token: Callable[[str], None] | None = None,
    k: int = 8,
    doc: str | None = None,
) -> Answer:
    """Answer from the documents. Never raises for any input string; ``doc`` limits the
    answer to one document (the caller checks that it exists)."""
    t0 = time.perf_counter()
    problem = check_input(question, index.settings.max_question_chars)
    if problem:
        return Answer(question=question or "", answer=problem, answerable=False, mode="invalid")
    lex = lexicon_for(index.settings.kb_dir)
    history = followup.clean_history(history)
    # 「你好，…」「谢谢！那…呢？」: the question is what follows the greeting
    standalone = followup.standalone(lex.strip_greeting(question), history, index, lex)
    q = analyze(standalone, index, lex)
    if doc:
        q = replace(q, doc=doc)
    trace = SearchTrace()
    refusal = guard.before_search(q, index, lex)
    hits: list[Hit] = []
    set_aside: dict[str, guard.Refusal] = {}
    if refusal is None or refusal.kind in guard.SHOWS_NEAREST:
        hits = search(index, q, k=k, trace=trace)
    q_all, hits_all = q, hits  # before the documents set aside for region or period
    if refusal is None:
        refusal, left, set_aside = guard.after_search(q, index, lex, hits)
        if refusal is None and len(left) < len(guard.docs_in_scope(q, index)):
            # some documents cannot answer for this region or period: search the others only
            rows_left = any(i.no in q.indicator_nos for d in left for i in index.docs[d].indicators)
            q = replace(q, scope=tuple(left), indicator_nos=q.indicator_nos if rows_left else ())
            hits = search(index, q, k=k, trace=trace)
    timings = {f"search.{n}": v for n, v in trace.timings_ms.items()}
    timings["search"] = (time.perf_counter() - t0) * 1000
    if refusal is not None:
        return _refuse(index, q, refusal, hits, lex, question, standalone, timings, t0)
    intent = choose(q, index)
    if intent in STRUCTURAL and not q.doc:
        q = replace(q, scope=_kind_scope(index, q, lex) or q.scope)
    elif not q.doc:
        # 「规划里说…」 in a library of plans and regulations: what the plans say
        named = _kind_scope(index, q, lex, "kind_named")
        if named and len(named) < len(guard.docs_in_scope(q, index)):
            q = replace(q, scope=named)
            hits = [h for h in hits if h.unit.doc in named]
            if len(hits) < 3:
                hits = search(index, q, k=k, trace=trace)
    decision = None
    if intent in (Intent.INDICATOR, Intent.COMPARE):
        ev = evidence.gather(index, q, hits, dict(trace.dense), vector=_vector(trace, q))
        if evidence.foreign_years(index, q):
            intent = Intent.FREE  # a row's columns are its own years: 2015 is no column of it
        elif evidence.sub_regions(q, lex) and not q.explicit_indicator:
            intent = Intent.FREE  # a row is the whole region's: a place's figure is the text's or none
        elif not q.explicit_indicator and not (q.names_table and (q.chapter_no or q.section_no)):
            # (a question naming both the table and a part of the text reads both)
            intent = _row_or_prose(q, ev, intent)
        if intent != Intent.FREE:
            decision = evidence.Decision(evidence.Outcome.ANSWERED, "", tuple(_prose_for_row(q, ev)))
    if intent not in STRUCTURAL and decision is None:
        dense = dict(trace.dense)
        ev = evidence.gather(index, q, hits, dense, vector=_vector(trace, q))
        # a claim's wrong year is part of the claim to correct, not a reason to refuse
        years = evidence.foreign_years(index, q) if intent != Intent.PREMISE else []
        decision = evidence.decide(q, ev, index_years=years, lex=lex)
        if decision.outcome == evidence.Outcome.NOT_COVERED and not q.refs:
            if set_aside:  # the set-aside documents' reason, in their words and sections
                return _refuse_set_aside(
                    index, q_all, set_aside, hits_all, lex, question, standalone, timings, t0
                )
            refusal = guard.Refusal(guard.RefusalKind.NOT_COVERED, decision.detail)
            return _refuse(index, q, refusal, hits, lex, question, standalone, timings, t0)
    t1 = time.perf_counter()
    try:
        text, cites = compose(index, q, intent, hits, decision, lex, _vector(trace, q))
    except ContractError:
        with _LOCK:
            CONTRACT_VIOLATIONS["count"] += 1
        log.exception("answer failed its citation check: %r", standalone)
        text, cites = "", ()
    timings["compose"] = (time.perf_counter() - t1) * 1000
    if not text:
        if set_aside:
            return _refuse_set_aside(
                index, q_all, set_aside, hits_all, lex, question, standalone, timings, t0
            )
        refusal = guard.Refusal(guard.RefusalKind.NOT_COVERED, "这一问题的具体内容")
        return _refuse(index, q, refusal, hits, lex, question, standalone, timings, t0)
    outcome = (
        OUTCOME_PARTIAL if decision and decision.outcome == evidence.Outcome.PARTIAL else OUTCOME_ANSWERED
    )
    if q.english:
        text = "#### Answer from the documents (in Chinese), with citations\n" + text
    answer = Answer(question, text, True, cites, "extractive", timings, standalone, outcome=outcome)
    if llm is not None:
        answer = _try_llm(index, answer, standalone, hits, llm, history, on_token)
    timings["total"] = (time.perf_counter() - t0) * 1000
    return replace(answer, timings_ms=timings)


def _kind_scope(index: Any, q: Query, lex: Lexicon, cue: str = "kind") -> tuple[str, ...]:
    """「规划第一章讲什么」 in a library of plans and regulations: the documents of the kind the
    question names (kind words in kb/lexicon/asks.yaml, ``<cue>_<kind>``), when it names one
    kind. ``kind_named`` cues name the document as the source (「规划里说」), not a topic word
    (「规划环评」)."""
    kinds = {d.meta.get("kind") for d in index.docs.values() if d.meta} - {None}
    named = [k for k in kinds if lex.ask_matches(f"{cue}_{k}", q.asked)]
    if len(named) != 1:
        return ()
    docs = guard.docs_in_scope(q, index)
    return tuple(d for d in docs if (index.docs[d].meta or {}).get("kind") == named[0])


def _row_or_prose(q: Query, ev: list[evidence.Evidence], intent: Intent) -> Intent:
    """A row matched by name answers only if no sentence of the text holds more of the
    question: 「完成整治的水源地环境问题有多少个」 names a row's words but asks a prose figure."""
    rows = [e for e in ev if e.unit.location.indicator_no in q.indicator_nos and e.unit.indicator is not None]
    # a prose figure of another year (2020年…为26) does not answer for the year asked (2025)
    prose = [
        e
        for e in ev
        if e.unit.indicator is None
        and e.attribute
        and (not q.years or any(str(y) in e.sentence for y in q.years))
    ]
    row_cov = max((e.coverage for e in rows), default=0.0)
    if prose and prose[0].coverage > row_cov + evidence.THRESHOLDS.row_margin and prose[0].subject:
        return Intent.FREE
    return intent


def _prose_for_row(q: Query, ev: list[evidence.Evidence]) -> list[evidence.Evidence]:
    """The text's own sentence stating the row's measure with a figure (the review chapter
    often gives the same measure, sometimes by another method), at most one. A question that
    names the table and a part of the text takes that part's best sentence with a figure for
    its year."""
    if q.names_table and (q.chapter_no or q.section_no):
        for e in ev:
            loc = e.unit.location
            if e.unit.indicator is None and loc.chapter_no == (q.chapter_no or loc.chapter_no):
                if (
                    e.subject
                    and any(f"{y}年" in e.sentence for y in q.years)
                    and evidence.has_figure(e.sentence)
                ):
                    return [e]
    for e in ev:
        if e.unit.indicator is None and e.subject and evidence.has_figure(e.sentence):
            if e.coverage >= evidence.THRESHOLDS.answer:
                return [e]
    return []


class ContractError(AssertionError):
    """An answer whose markers, citations or quotes break the contract (a composer bug)."""


def compose(
    index: Any,
    q: Query,
    intent: Intent,
    hits: list[Hit],
    decision: Any,
    lex: Lexicon,
    vector: list[float] | None = None,
) -> tuple[str, tuple]:
    """The extractive answer and its citations ("" when nothing fits); ``vector`` is the
    question's, as retrieval embedded it."""
    cites = Citations()
    docs = guard.docs_phrase(index, guard.docs_in_scope(q, index))
    lines: list[str] = []
    if intent in (Intent.INDICATOR, Intent.COMPARE):
        prose = list(decision.evidence) if decision else []
        lines = compose_compare(index, q, cites, lex, prose) if intent == Intent.COMPARE else []
        lines = lines or compose_indicator(index, q, cites)
        for e in decision.evidence if decision else ():
            quote = evidence.quote_span(e.sentence, q)
            lines.append(f"正文：{quote.rstrip('。；，')}{cites.marks(cites.cite(e.unit, quote))}。")
    elif intent == Intent.COLUMN:
        lines = compose_column(index, q, cites)
    elif intent == Intent.NAVIGATION:
        lines = compose_navigation(index, q, cites)
    elif intent == Intent.ARTICLE:
        lines = compose_article(index, q, cites)
    elif intent == Intent.TABLE:
        lines = compose_table(index, q, cites)
    elif intent == Intent.OUTLINE:
        lines = compose_outline(index, q, cites)
    elif intent == Intent.DOCUMENT:
        lines = compose_document(index, q, cites)
    elif intent == Intent.WHERE and decision is not None:
        lines = compose_where(index, q, hits, decision, cites)
    if not lines and decision is None:
        # a structural intent found nothing (a part named with a topic): read the evidence
        decision = evidence.decide(q, evidence.gather(index, q, hits, {}, vector=vector), lex=lex)
        if decision.outcome == evidence.Outcome.NOT_COVERED:
            decision = evidence.Decision(evidence.Outcome.ANSWERED, "", decision.evidence)
    if not lines and decision is not None:
        lines = compose_evidence(index, q, decision, intent, cites, lex, docs)
    if not lines:
        return "", ()
    text, final = renumber("\n".join(lines), cites.items)
    problems = contract_problems(text, final, index.source_canon)
    if problems:
        raise ContractError("; ".join(problems))
    return text, final


def _refuse(
    index: Any,
    q: Query,
    refusal: guard.Refusal,
    hits: list[Hit],
    lex: Lexicon,
    question: str,
    standalone: str,
    timings: dict[str, float],
    t0: float,
) -> Answer:
    """A refusal in the user's words, with the nearest sections cited where they help."""
    text = guard.message(refusal, q, index, lex)
    cites: tuple = ()
    if refusal.kind in guard.SHOWS_NEAREST and hits:
        c = Citations()
        near = nearest_sections(index, hits, c, lex)
        if near:
            text, cites = renumber(text + "\n\n" + "\n".join(near), c.items)
            if contract_problems(text, cites, index.source_canon):
                text, cites = guard.message(refusal, q, index, lex), ()
    timings["total"] = (time.perf_counter() - t0) * 1000
    return Answer(
        question=question,
        answer=text,
        answerable=False,
        citations=cites,
        mode="refusal",
        timings_ms=timings,
        standalone_question=standalone,
        outcome=OUTCOME_NOT_COVERED,
    )


def _refuse_set_aside(
    index: Any,
    q: Query,
    set_aside: dict[str, guard.Refusal],
    hits: list[Hit],
    lex: Lexicon,
    question: str,
    standalone: str,
    timings: dict[str, float],
    t0: float,
) -> Answer:
    """The other documents do not cover the topic: the refusal is the set-aside documents'
    (another region or period), named by them and citing their nearest sections."""
    docs = tuple(set_aside)
    own = [h for h in hits if h.unit.doc in docs]
    refusal = next(iter(set_aside.values()))
    return _refuse(index, replace(q, scope=docs), refusal, own, lex, question, standalone, timings, t0)


def _try_llm(
    index: Any,
    extractive: Answer,
    question: str,
    hits: list[Hit],
    llm: Any,
    history: History,
    on_token: Callable[[str], None] | None,
) -> Answer:
    from policyqa import llm as llm_mod

    notice = "大模型暂不可用，已改用原文摘录回答。"
    try:
        outcome = llm_mod.llm_answer(
            question, hits, llm, history=followup.history_pairs(history), on_token=on_token
        )
    except Exception as e:  # the LLM path must never take the answer down
        return replace(extractive, mode=f"llm-fallback:{type(e).__name__}", notice=notice)
    ans = getattr(outcome, "answer", outcome)
    reason = getattr(outcome, "reason", "unchecked")
    if ans is None:
        return replace(extractive, mode=f"llm-fallback:{reason}", notice=notice)
    if contract_problems(ans.answer, ans.citations, index.source_canon):
        return replace(
            extractive,
            mode="llm-fallback:unchecked",
            notice="大模型的回答未通过引用核验，已改用原文摘录回答。",
        )
    return replace(
        ans, question=extractive.question, standalone_question=question, outcome=extractive.outcome
    )


__all__ = ["ask", "check_input", "compose", "CONTRACT_VIOLATIONS", "OUTCOME_INVALID"]
