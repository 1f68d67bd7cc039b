"""Answers from an indicator table's rows: the value, target and attribute of one row, read
field by field with the years its columns carry, and the difference between its two years (or
between a row's figure and the one the text gives for the same year, when both are named).

A row's statement cites the row alone (the years are the table's columns). A computed
difference is labelled as computed from the cited figures. Left out: sums across rows, units
other than those printed in the row.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from policyqa.cite import Citations
from policyqa.lexicon import Lexicon
from policyqa.models import KIND_INDICATOR, KIND_NOTE, Indicator, Unit, Value
from policyqa.query import Query

if TYPE_CHECKING:
    from policyqa.answer.evidence import Evidence
    from policyqa.index import Index


def _is_figure(v: str | None) -> bool:
    return v is not None and bool(re.fullmatch(r"[\d.]+", v))


def _year(value: Value, target: bool) -> str:
    """「2025年目标为62.6」 for a figure, 「2025年目标“以国家下达指标为准”」 for words."""
    head = f"{value.year}年目标" if target else f"{value.year}年"
    v = value.value
    if v is None:
        return f"{head}表中未列"
    if v == "—":
        return f"{head}表中为“—”（未列数值）"
    return f"{head}为{v}" if _is_figure(v) else f"{head}“{v}”"


def statements(ind: Indicator) -> list[str]:
    """The row read out field by field, values exactly as printed; one statement per scope."""
    attr = f"，属{ind.attribute}指标" if ind.attribute else "（表中未标注约束性/预期性）"
    if ind.rows:
        return [
            f"{ind.display_name}（{r.scope}）：{_year(r.baseline, False)}，{_year(r.target, True)}{attr}"
            for r in ind.rows
        ]
    body = f"{ind.display_name}：{_year(ind.baseline, False)}，{_year(ind.target, True)}"
    if ind.remark:
        body += f"（{ind.remark}）"
    return [body + attr]


def rows_of(index: Index, q: Query) -> list[Unit]:
    docs = [q.doc] if q.doc else list(q.scope or index.docs)
    return [
        u
        for d in docs
        for u in index.retrievable.get(d, [])
        if u.kind == KIND_INDICATOR and u.location.indicator_no in q.indicator_nos
    ]


def compose_indicator(index: Index, q: Query, cites: Citations) -> list[str]:
    lines: list[str] = []
    for u in rows_of(index, q):
        ind = u.indicator
        if ind is None:
            continue
        n = cites.cite(u)
        lines += [f"{st}{cites.marks(n)}。" for st in statements(ind)]
        doc = index.docs[u.doc]
        for note in ind.notes:
            nu = next((x for x in doc.units if x.kind == KIND_NOTE and x.title == f"注{note.marker}"), None)
            if nu is not None:
                lines.append(f"表注{note.marker}：{note.text.rstrip('。')}{cites.marks(cites.cite(nu))}。")
    return lines


def _dec(v: str | None) -> Decimal | None:
    """The one number a cell holds (「62.6」, 「不低于35」 → 35), else None."""
    nums = re.findall(r"\d+(?:\.\d+)?", v or "")
    if len(nums) != 1:
        return None
    try:
        return Decimal(nums[0])
    except InvalidOperation:
        return None


def _prose_value(sentence: str, year: int) -> Decimal | None:
    """The figure a sentence gives for a year (「其中2020年达到95.5%」 → 95.5), else None."""
    m = re.search(rf"{year}年[^。；\d]{{0,16}}?(\d+(?:\.\d+)?)", sentence)
    return Decimal(m.group(1)) if m else None


def compose_compare(
    index: Index, q: Query, cites: Citations, lex: Lexicon, prose: list[Evidence] | None = None
) -> list[str]:
    """The difference between a row's target and its baseline where both hold one number,
    then the row itself. A question that names the table and a part of the text compares the
    row's figure for its year with the figure the text's sentence (``prose``) gives for it."""
    lines: list[str] = []
    for u in rows_of(index, q):
        ind = u.indicator
        if ind is None:
            continue
        unit = "个百分点" if (ind.unit or "").strip() == "%" else (ind.unit or "")
        if q.names_table and q.years and prose:
            year = q.years[0]
            cell = next((v for v in (ind.baseline, ind.target) if v.year == year), None)
            vr = _dec(cell.value) if cell else None
            vp = next((v for v in (_prose_value(e.sentence, year) for e in prose) if v is not None), None)
            if vr is not None and vp is not None:
                diff = abs(vp - vr).normalize()
                gap = f"相差{diff:f}{unit}" if diff else "两者相同"
                lines.append(
                    f"#### {ind.name}{year}年：指标表中为{cell.value}，正文中为{vp.normalize():f}，"
                    f"{gap}{lex.message('computed')}"
                )
                continue
        pairs = [(r.scope, r.baseline, r.target) for r in ind.rows] or [(None, ind.baseline, ind.target)]
        for scope, b, t in pairs:
            vb, vt = _dec(b.value), _dec(t.value)
            if vb is None or vt is None:
                continue
            diff = vt - vb
            verb = "提高" if diff > 0 else "降低" if diff < 0 else "持平"
            amount = "" if diff == 0 else f"{abs(diff).normalize():f}{unit}"
            who = f"{ind.name}（{scope}）" if scope else ind.name
            tv = t.value if _is_figure(t.value) else f"“{t.value}”"
            # the difference is ours, computed from the cited row: a heading, not a quoted statement
            lines.append(
                f"#### {who}{t.year}年目标{tv}比{b.year}年的{b.value}{verb}{amount}{lex.message('computed')}"
            )
    return lines + compose_indicator(index, q, cites)
