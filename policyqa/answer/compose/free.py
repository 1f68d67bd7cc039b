"""Answers made of the documents' sentences, chosen by evidence: free questions, lists,
premises to confirm or correct, partly covered topics, and where a topic is treated.

The lead is the answer: the best sentence (for 多少 the best one carrying a figure), then
only sentences that hold the question's subject and score near the best. A long sentence is
quoted by its relevant clauses (verbatim). A premise is confirmed only when one sentence holds
all of its terms, its absolute words (所有、一律 …, kb/lexicon/asks.yaml) and its figures.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from policyqa.answer import evidence as ev_mod
from policyqa.answer.compose.indicator import statements
from policyqa.answer.evidence import Decision, Evidence, Outcome, has_figure, quote_span
from policyqa.answer.intent import Intent
from policyqa.cite import Citations, mark_each_sentence
from policyqa.lexicon import Lexicon
from policyqa.models import Hit, Unit
from policyqa.query import Ask, Query
from policyqa.text import split_sentences

if TYPE_CHECKING:
    from policyqa.index import Index

MAX_SENTENCES = {Intent.LIST: 6, Intent.PREMISE: 2, Intent.FREE: 3}
MAX_PER_UNIT = 2


def _strip_lead(s: str) -> str:
    return s[2:] if s.startswith("——") else s


def pick(q: Query, decision: Decision, intent: Intent) -> list[Evidence]:
    """The sentences to show, best first, each adding the question's subject."""
    ev = list(decision.evidence)
    if not ev:
        return []
    if q.has(Ask.AMOUNT) or q.has(Ask.WHEN):
        ev.sort(key=lambda e: (not (e.attribute and e.subject), -e.score))
    best = ev[0]
    limit = MAX_SENTENCES.get(intent, 3)
    if q.has(Ask.AMOUNT) and intent != Intent.LIST:
        limit = 2
    out: list[Evidence] = [best]
    per_unit: dict[str, int] = {best.unit.id: 1}
    seen = {best.sentence}
    rest = ev[1:]
    if not best.subject:
        # the first sentence that holds the subject the best one lacks comes next, before
        # further sentences like the best (「畜禽粪污资源化利用」 after 「强化畜禽养殖污染防治」)
        first = next((e for e in rest[:7] if e.subject), None)  # the evidence decide read
        if first is not None:
            rest = [first] + [e for e in rest if e is not first]
    # (a table row holds the table's words, not a second topic: rows never add one)
    facets = _facets(q) if intent in (Intent.FREE, Intent.LIST) else set()
    for e in rest:
        if len(out) >= limit:
            break
        if e.sentence in seen or per_unit.get(e.unit.id, 0) >= MAX_PER_UNIT:
            continue
        keep = ev_mod.THRESHOLDS.keep
        # ... on its score alone: its coverage may be lower, it holds what the best lacks
        completes = e.subject and not any(o.subject for o in out)
        # a second thing the question asks (「要不要禁渔？有没有人放鱼苗」) that no sentence so
        # far holds: the answer needs it, whatever place the first one named
        adds = e.unit.indicator is None and any(
            w in e.found and not any(w in o.found for o in out) for w in facets
        )
        if e.score < keep * best.score or (e.coverage < keep * best.coverage and not (completes or adds)):
            continue
        if not (e.subject or adds or (e.found and e.found >= best.found)):
            continue
        if e.unplaced and not best.unplaced and not adds:  # the place asked, once the best names it
            continue
        out.append(e)
        seen.add(e.sentence)
        per_unit[e.unit.id] = per_unit.get(e.unit.id, 0) + 1
    return out


FACET_SHARE = 0.5  # a topic word this heavy beside the heaviest is a thing the question asks


def _facets(q: Query) -> set[str]:
    """The heavy topic words the question asks about (not places, not its story's): each is a
    thing the answer should hold when the evidence does."""
    words = [t for t in q.topic if t.known and not t.place and not t.story]
    if len(words) < 2:
        return set()
    top = max(t.weight for t in words)
    return {t.word for t in words if t.weight >= FACET_SHARE * top}


def _with_development(e: Evidence, quote: str) -> str:
    """A paragraph's bare topic sentence (「严格管控扬尘和粉尘污染。」) says what, not how: the
    sentence that follows it comes along (the two are contiguous, so the quote stays verbatim)."""
    if e.unit.lead and quote == e.unit.lead:
        sents = split_sentences(e.unit.text)
        if len(sents) > 1 and sents[0] == quote:
            return sents[0] + sents[1]
    return quote


def premise_holds(q: Query, e: Evidence, lex: Lexicon) -> bool:
    """Does one sentence state the claim: all its terms, absolute words and figures?"""
    if e.coverage < 0.99:
        return False
    pat = lex.asks.get("absolute")
    if pat is not None:
        for m in pat.finditer(q.asked):
            if m.group(0) not in e.sentence:
                return False
    # every figure of the claim, years included, must stand in the sentence
    figures = re.findall(r"\d+(?:\.\d+)?", q.asked)
    return all(f in e.sentence for f in figures)


def compose_evidence(
    index: Index, q: Query, decision: Decision, intent: Intent, cites: Citations, lex: Lexicon, docs: str
) -> list[str]:
    chosen = pick(q, decision, intent)
    if not chosen:
        return []
    lines: list[str] = []
    if decision.outcome == Outcome.PARTIAL:
        lines.append(lex.message("partial", detail=decision.detail, docs=docs))
    elif intent == Intent.PREMISE:
        key = "premise_yes" if premise_holds(q, chosen[0], lex) else "premise_no"
        # the verdict on the claim is ours, not the text's: a heading, not a cited statement
        lines.append("#### " + lex.message(key, docs=docs))
    bullet = "- " if intent == Intent.LIST and len(chosen) > 1 else ""
    shown: list[str] = []  # quotes so far: a developed lead already holds the sentence after it
    for e in chosen:
        if e.unit.indicator is not None:  # a table row reads out field by field, citing the row
            n = cites.cite(e.unit)
            lines += [f"{bullet}{st}{cites.marks(n)}。" for st in statements(e.unit.indicator)]
            continue
        quote = quote_span(e.sentence, q)
        developed = _with_development(e, quote)
        if not any(s in developed for s in shown):  # the sentence after the lead is shown already
            quote = developed
        if any(quote in s for s in shown):
            continue
        shown.append(quote)
        mark = cites.marks(cites.cite(e.unit, quote))
        lines.append(bullet + mark_each_sentence(_strip_lead(quote), mark))
    return lines


def _heading_of(index: Index, u: Unit) -> list[Unit]:
    """The heading units that place a unit: its 专栏, or its chapter and section."""
    loc = u.location
    if loc.column_no is not None:
        ids = [f"{u.doc}:col{loc.column_no}"]
    else:
        ids = [f"{u.doc}:ch{loc.chapter_no:02d}"] if loc.chapter_no is not None else []
        if loc.chapter_no is not None and loc.section_no is not None:
            ids.append(f"{u.doc}:ch{loc.chapter_no:02d}.s{loc.section_no:02d}")
    return [index.units[i] for i in ids if i in index.units]


def compose_where(index: Index, q: Query, hits: list[Hit], decision: Decision, cites: Citations) -> list[str]:
    """Where a topic is treated: the headings that place the best evidence (each cited) and the
    sentence; a second place when the next evidence sits elsewhere."""
    lines: list[str] = []
    shown: set[str] = set()
    for e in list(decision.evidence)[:4]:
        if len(shown) >= 2:
            break
        heads = _heading_of(index, e.unit)
        if not heads or heads[-1].id in shown or (shown and not e.subject):
            continue
        # the innermost heading first (it is the place asked), its chapter after it
        inner, *outer = reversed(heads)
        place = f"{inner.text}{cites.marks(cites.cite(inner))}" + "".join(
            f"（{h.text}{cites.marks(cites.cite(h))}）" for h in outer
        )
        lines.append(f"{'另见' if shown else '在'}{place}：")
        u = e.unit
        if u.indicator is not None:
            n = cites.cite(u)
            lines += [f"{st}{cites.marks(n)}。" for st in statements(u.indicator)]
        else:
            quote = quote_span(e.sentence, q)
            lines.append(f"{_strip_lead(quote).rstrip('。；')}{cites.marks(cites.cite(u, quote))}。")
        shown.add(heads[-1].id)
    return lines


def nearest_sections(index: Index, hits: list[Hit], cites: Citations, lex: Lexicon) -> list[str]:
    """The headings of the top hits' sections, cited, for a refusal the reader can check."""
    out: list[str] = []
    seen: set[str] = set()
    for h in hits[:5]:
        loc = h.unit.location
        hid = None
        if loc.column_no is not None:
            hid = f"{h.unit.doc}:col{loc.column_no}"
        elif loc.chapter_no is not None and loc.section_no is not None:
            hid = f"{h.unit.doc}:ch{loc.chapter_no:02d}.s{loc.section_no:02d}"
        elif loc.chapter_no is not None:
            hid = f"{h.unit.doc}:ch{loc.chapter_no:02d}"
        heading = index.units.get(hid) if hid else None
        if heading is None or heading.id in seen:
            continue
        seen.add(heading.id)
        out.append(f"{heading.label}{cites.marks(cites.cite(heading))}")
        if len(out) >= 3:
            break
    if not out:
        return []
    return [lex.message("nearest") + "；".join(out)]


__all__ = ["compose_evidence", "compose_where", "nearest_sections", "has_figure", "split_sentences"]
