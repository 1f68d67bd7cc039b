"""HTML and Markdown for the web app, as plain functions over the library's result objects.

Nothing here imports gradio: every function takes ``Answer`` / ``Unit`` / ``Document`` values
and returns a string (or table rows), so the page is tested without a browser.

Safety: every piece of plan text and user text passes through ``esc`` (``html.escape``) before
it is placed in HTML; the only markup in the output is the markup written here. The chat
messages are Markdown with inline HTML (gradio's Chatbot renders Markdown and sanitises HTML
again in the browser), so text placed in a chat message goes through ``md_text`` instead: it
also writes the characters of Markdown link / image / autolink / code syntax (``! [ ] ( ) ` \\
: @`` and the dot of ``www.``) as numeric character references, which Markdown never reads as
syntax. A question or an LLM draft holding ``![](http://…)`` or ``[x](javascript:…)`` is
therefore shown as text, never fetched or linked; our own ``[n]`` citation links are written
after that (``answer_html``).

Left out: rendering Markdown ourselves (the Chatbot does it), syntax beyond what answers use.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from policyqa.models import (
    KIND_COLUMN,
    KIND_HEADER,
    KIND_HEADING,
    KIND_INDICATOR,
    KIND_ITEM,
    KIND_NOTE,
    KIND_TABLE_HEAD,
    KIND_TITLE,
    OUTCOME_INVALID,
    OUTCOME_NOT_COVERED,
    OUTCOME_PARTIAL,
    Answer,
    Citation,
    Document,
    Hit,
    Indicator,
    Location,
    Unit,
)
from policyqa.text import canon, to_cn_number

APP_TITLE = "广西生态环境保护“十四五”规划 · 政策问答"
MARKER = re.compile(r"\[(\d{1,3})\]")
QUESTION_DISPLAY_CHARS = 300  # a longer question is shown cut (the whole one is still sent to ask)
# The plan's readers are in Guangxi: times are shown as they read them there, whatever the
# server's own zone (containers run in UTC).
DISPLAY_TZ = ZoneInfo("Asia/Shanghai")

MODE_NAMES = {
    "extractive": "原文摘录",
    "llm": "大模型生成 · 引用已核验",
    "refusal": "未作答",
    "invalid": "未作答",
}


def esc(text: object) -> str:
    """HTML-escape any text (quotes included): the one way text enters our HTML."""
    return html.escape("" if text is None else str(text), quote=True)


# Markdown punctuation that builds links, images, reference definitions and code spans (and the
# backslash that escapes it), plus ":" and "@" of GFM's bare autolinks (http://…, mailto). As
# character references they display unchanged but are never syntax.
_MD_INERT = str.maketrans({c: f"&#{ord(c)};" for c in "![]()`\\:@"})
_WWW = re.compile(r"(www)\.", re.IGNORECASE)  # GFM's bare www. autolinks


def md_text(text: object) -> str:
    """``esc`` for text inside a chat message (Markdown): also no link, image, autolink or code
    syntax."""
    return _WWW.sub(r"\1&#46;", esc(text).translate(_MD_INERT))


# ----------------------------------------------------------------------------- citations


def citation_kind(loc: Location) -> str:
    """The short tag shown on a source card: 指标 / 专栏 / 节 / 章 / 前言."""
    if loc.indicator_no is not None:
        return "指标"
    if loc.column_no is not None:
        return "专栏"
    if loc.section_no is not None:
        return "节"
    if loc.chapter_no is not None:
        return "章"
    return "前言"


def locate_quote(text: str, quote: str) -> tuple[int, int] | None:
    """[start, end) of ``quote`` in ``text``: verbatim, else in canonical form (whitespace and PDF
    artefacts aside, see ``policyqa.text.canon``) mapped back to ``text``'s offsets; None if absent."""
    quote = quote.strip()
    if not quote or not text:
        return None
    i = text.find(quote)
    if i >= 0:
        return i, i + len(quote)
    kept = [(i, ch) for i, ch in enumerate(text) if not ch.isspace()]
    flat = "".join(ch for _, ch in kept)
    for needle in (canon(quote), re.sub(r"\s+", "", quote)):
        j = flat.find(needle) if needle else -1
        if j >= 0:
            return kept[j][0], kept[j + len(needle) - 1][0] + 1
    return None


def highlight_quote(text: str, quote: str) -> tuple[str, bool]:
    """``text`` as HTML with ``quote`` in ``<mark>``; (HTML, found). Not found: the quote alone."""
    span = locate_quote(text or "", quote)
    if span is None:
        return f"<mark>{esc(quote)}</mark>", False
    a, b = span
    return f"{esc(text[:a])}<mark>{esc(text[a:b])}</mark>{esc(text[b:])}", True


def highlight_quotes(text: str, quotes: Sequence[tuple[int, str]]) -> tuple[str, list[int]]:
    """``text`` as HTML with each (n, quote) in ``<mark data-n="n">``; (HTML, the n not found).

    Overlapping quotes share one mark (it carries the first n; the others are listed in
    ``data-also``), so a paragraph cited three times is still printed once."""
    spans: list[tuple[int, int, list[int]]] = []
    missing: list[int] = []
    for n, q in quotes:
        span = locate_quote(text or "", q)
        if span is None:
            missing.append(n)
        else:
            spans.append((span[0], span[1], [n]))
    spans.sort()
    merged: list[tuple[int, int, list[int]]] = []
    for a, b, ns in spans:
        if merged and a < merged[-1][1]:
            pa, pb, pns = merged[-1]
            merged[-1] = (pa, max(pb, b), pns + ns)
        else:
            merged.append((a, b, ns))
    out, pos = [], 0
    for a, b, ns in merged:
        also = f' data-also="{" ".join(map(str, ns[1:]))}"' if len(ns) > 1 else ""
        out.append(f'{esc(text[pos:a])}<mark data-n="{ns[0]}"{also}>{esc(text[a:b])}</mark>')
        pos = b
    out.append(esc((text or "")[pos:]))
    return "".join(out), missing


def cite_anchor(turn: int, n: int) -> str:
    return f"cite-{turn}-{n}"


def _marker_link(turn: int, n: int) -> str:
    return (
        f'<sup class="pq-sup"><a class="pq-marker" href="#{cite_anchor(turn, n)}" '
        f'data-turn="{turn}" data-n="{n}" title="查看出处 [{n}]">&#91;{n}&#93;</a></sup>'
    )


def link_markers(escaped: str, turn: int, valid: Iterable[int]) -> str:
    """Turn ``[n]`` in already-escaped text into superscript links to the 出处 panel.

    Markers without a citation stay plain text (the answer contract forbids them anyway)."""
    ok = set(valid)
    return MARKER.sub(
        lambda m: _marker_link(turn, int(m.group(1))) if int(m.group(1)) in ok else m.group(0), escaped
    )


def answer_html(text: str, turn: int, valid: Iterable[int]) -> str:
    """Answer text for a chat message: ``md_text`` (no Markdown links or images, whoever wrote
    the text) with each ``[n]`` that has a citation as a superscript link to the 出处 panel."""
    ok = set(valid)
    out: list[str] = []
    pos = 0
    for m in MARKER.finditer(text or ""):
        n = int(m.group(1))
        out.append(md_text(text[pos : m.start()]))
        out.append(_marker_link(turn, n) if n in ok else md_text(m.group(0)))
        pos = m.end()
    out.append(md_text((text or "")[pos:]))
    return "".join(out)


def _indicator_table_html(ind: Indicator) -> str:
    rows = ind.rows or ()
    head = "<tr><th>指标</th><th>2020年</th><th>2025年</th><th>属性</th></tr>"
    body = []
    if rows:
        for r in rows:
            body.append(
                f"<tr><td>{esc(r.scope)}</td><td>{esc(r.baseline.value or '—')}</td>"
                f"<td>{esc(r.target.value or '—')}</td><td>{esc(ind.attribute or '未标注')}</td></tr>"
            )
    else:
        body.append(
            f"<tr><td>{esc(ind.display_name)}</td><td>{esc(ind.baseline.value or '—')}</td>"
            f"<td>{esc(ind.target.value or '—')}</td><td>{esc(ind.attribute or '未标注')}</td></tr>"
        )
    notes = "".join(f'<div class="pq-footnote">{esc(n.marker)} {esc(n.text)}</div>' for n in ind.notes)
    return f'<table class="pq-mini">{head}{"".join(body)}</table>{notes}'


def render_citation_card(c: Citation, unit: Unit | None, turn: int) -> str:
    """One source card for one citation (see ``render_citation_group`` for several)."""
    return render_citation_group([c], unit, turn)


def render_citation_group(cits: Sequence[Citation], unit: Unit | None, turn: int) -> str:
    """One source card for all citations of one unit: their numbers and label, the unit's text
    printed once with every quote highlighted. The card's id is the first citation's anchor;
    each further citation gets an empty anchor inside the card (the page script and ``:target``
    resolve it to the card)."""
    first = cits[0]
    if unit is not None:
        body, missing = highlight_quotes(unit.text, [(c.n, c.quote) for c in cits])
    else:
        body, missing = "", [c.n for c in cits]
    lost = [c for c in cits if c.n in missing]
    if len(lost) == len(cits):  # nothing placed: the quotes alone, not a paragraph without them
        body = ""
    if lost:  # quotes we cannot place in the paragraph are shown alone, never dropped
        body += "".join(
            f'<div class="pq-lost"><mark data-n="{c.n}">{esc(c.quote)}</mark></div>' for c in lost
        )
    extra = ""
    if unit is not None and unit.indicator is not None:
        extra = _indicator_table_html(unit.indicator)
    note = '<div class="pq-muted">（未能在原文段落中定位，仅显示引文）</div>' if lost else ""
    anchors = "".join(
        f'<span class="pq-anchor" id="{cite_anchor(turn, c.n)}" data-n="{c.n}"></span>' for c in cits[1:]
    )
    nums = "".join(f'<span class="pq-cite-n">[{c.n}]</span>' for c in cits)
    ns = " ".join(str(c.n) for c in cits)
    return (
        f'<div class="pq-cite" id="{cite_anchor(turn, first.n)}" data-turn="{turn}" data-n="{first.n}" '
        f'data-ns="{ns}">{anchors}'
        f'<div class="pq-cite-head">{nums}'
        f'<span class="pq-kind">{esc(citation_kind(first.location))}</span>'
        f'<span class="pq-label">{esc(first.label)}</span></div>'
        f'<div class="pq-cite-body">{body}</div>{note}{extra}</div>'
    )


def group_citations(cits: Iterable[Citation]) -> list[list[Citation]]:
    """Citations grouped by unit id, in the order of each unit's first citation."""
    groups: dict[str, list[Citation]] = {}
    for c in cits:
        groups.setdefault(c.id, []).append(c)
    return list(groups.values())


# ----------------------------------------------------------------------------- chat messages


def short_question(question: str, limit: int = QUESTION_DISPLAY_CHARS) -> str:
    q = (question or "").strip()
    return q if len(q) <= limit else f"{q[:limit]}…（共 {len(q)} 字）"


def render_question(question: str) -> str:
    """The user's message as shown in the chat: escaped text, never markup (HTML or Markdown)."""
    return md_text(short_question(question))


PARTIAL_LABEL = "部分涉及"


def answer_notes(answer: Answer) -> list[tuple[str, str]]:
    """(css class, text) of the notes under an answer: not covered, invalid input, LLM fallback.

    A partial answer's label goes above it instead (``answer_banner``)."""
    notes: list[tuple[str, str]] = []
    if answer.mode == "invalid" or answer.outcome == OUTCOME_INVALID:
        notes.append(("pq-note-warn", "问题未被受理：请按提示修改后再问。"))
    elif answer.mode == "error":
        notes.append(("pq-note-warn", "服务暂时出错，未能作答。"))
    elif answer.outcome == OUTCOME_NOT_COVERED or not answer.answerable:
        text = "拒答：规划原文中没有可以回答这个问题的内容。"
        if answer.citations:
            text += "点击角标可查看规划中最接近的章节。"
        notes.append(("pq-note-refusal", text))
    if answer.mode.startswith("llm-fallback"):
        notes.append(("pq-note-fallback", answer.notice or "大模型暂不可用，已改用原文摘录回答。"))
    elif answer.notice:
        notes.append(("pq-note-info", answer.notice))
    return notes


def answer_banner(answer: Answer) -> str:
    """The label above a partly covered answer (HTML; empty for other outcomes)."""
    if answer.outcome != OUTCOME_PARTIAL:
        return ""
    return (
        f'<div class="pq-partial" role="note"><span class="pq-partial-tag">{PARTIAL_LABEL}</span>'
        "规划只涉及这个问题的一部分：下文先说明规划没有写明什么，再列出相关的规定。</div>"
    )


def render_answer(answer: Answer, turn: int) -> str:
    """The assistant message: the answer (escaped, no Markdown links or images) with ``[n]`` as
    links to ``#cite-<turn>-<n>``, then its notes and a one-line footer (mode, time). A partly
    covered answer opens with a labelled amber note (``answer_banner``)."""
    body = answer_html(answer.answer, turn, (c.n for c in answer.citations))
    banner = answer_banner(answer)
    parts = [banner, body] if banner else [body]
    for cls, note in answer_notes(answer):
        parts.append(f'<span class="pq-note {cls}">{md_text(note)}</span>')
    mode = MODE_NAMES.get(answer.mode, "原文摘录" if answer.mode.startswith("llm-fallback") else answer.mode)
    foot = [mode]
    if answer.citations:
        foot.append(f"{len(answer.citations)} 处出处")
    total = answer.timings_ms.get("total")
    if total:
        foot.append(f"用时 {total / 1000:.1f} 秒" if total >= 1000 else f"用时 {total:.0f} 毫秒")
    parts.append(f'<span class="pq-foot">{esc(" · ".join(foot))}</span>')
    return "\n\n".join(parts)


def render_partial(text: str, *, llm: bool) -> str:
    """A message still arriving. LLM tokens are unchecked, so they are shown as a draft (as text:
    no Markdown links or images)."""
    body = md_text(text) if text else "正在检索规划原文…"
    if llm:
        return f'{body}\n\n<span class="pq-note pq-note-info">正在生成，引用核验完成后显示最终回答…</span>'
    return body


def stream_chunks(text: str, parts: int = 3) -> list[str]:
    """Growing prefixes of ``text`` cut at line ends (so no ``[n]`` is split), at most ``parts``."""
    lines = text.split("\n")
    if len(lines) <= 1:
        return [text]
    step = max(1, -(-len(lines) // parts))
    return ["\n".join(lines[:i]) for i in range(step, len(lines), step)] + [text]


# ----------------------------------------------------------------------------- 出处 panel

SOURCES_EMPTY = (
    '<div class="pq-sources-empty">提问后，这里列出回答所依据的规划原文，引文以'
    "<mark>高亮</mark>标出；点击回答中的 <b>[1]</b> 等角标可定位到对应出处。</div>"
)


def render_sources(answers: Sequence[Answer], units: Mapping[str, Unit]) -> str:
    """The 出处 panel: the latest answer's sources open, earlier ones folded (turns are 1-based)."""
    title = '<div class="pq-sources-title">出处</div>'
    if not answers:
        return f'<div class="pq-sources">{title}{SOURCES_EMPTY}</div>'
    blocks = []
    for turn in range(len(answers), 0, -1):
        a = answers[turn - 1]
        cards = "".join(
            render_citation_group(g, units.get(g[0].id), turn) for g in group_citations(a.citations)
        )
        if not cards:
            cards = '<div class="pq-muted">（这一问没有引用规划原文）</div>'
        elif a.outcome == OUTCOME_NOT_COVERED:
            cards = '<div class="pq-muted pq-nearest">规划没有写到这一问；下面是最接近的章节。</div>' + cards
        q = esc(short_question(a.question, 60))
        if turn == len(answers):
            blocks.append(
                f'<section class="pq-turn pq-turn-current" data-turn="{turn}">'
                f'<div class="pq-turn-q">第 {turn} 问：{q}</div>{cards}</section>'
            )
        else:
            blocks.append(
                f'<details class="pq-turn" data-turn="{turn}"><summary>第 {turn} 问：{q}'
                f"（{len(a.citations)} 处出处）</summary>{cards}</details>"
            )
    return f'<div class="pq-sources">{title}{"".join(blocks)}</div>'


# ----------------------------------------------------------------------------- export


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def export_question(question: str) -> str:
    """The user's question as one inert line of the exported file: control characters and line
    breaks become spaces (no new headings or lists), markup is escaped as in the chat."""
    return md_text(" ".join(_CONTROLS.sub(" ", question or "").split()))


def local_time(when: datetime) -> str:
    """A time as people in Guangxi read it: 「2026年12月1日 20:30」 (Asia/Shanghai); a naive
    time is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo("UTC"))
    t = when.astimezone(DISPLAY_TZ)
    return f"{t.year}年{t.month}月{t.day}日 {t:%H:%M}"


def render_export_markdown(
    answers: Sequence[Answer], now: datetime | None = None, asked: Sequence[datetime | None] = ()
) -> str:
    """The conversation as a Markdown file: each question (with the time it was asked, when
    ``asked`` has it), its answer and its 出处 list. Times are local (``local_time``)."""
    now = now or datetime.now(DISPLAY_TZ)
    out = [f"# 对话记录 · {APP_TITLE}", "", f"导出时间：{local_time(now)}", ""]
    for turn, a in enumerate(answers, 1):
        when = asked[turn - 1] if turn <= len(asked) else None
        out += [f"## {turn}. 问：{export_question(a.question)}", ""]
        if when is not None:
            out += [f"提问时间：{local_time(when)}", ""]
        if a.outcome == OUTCOME_PARTIAL:
            out += [f"> {PARTIAL_LABEL}：规划只写到了问题的一部分。", ""]
        out += [a.answer.strip(), ""]
        for _, note in answer_notes(a):
            out += [f"> 说明：{note}", ""]
        if a.citations:
            out += ["**出处**", ""]
            for c in a.citations:
                out += [f"[{c.n}] {c.label}", "", f"> {c.quote}", ""]
    if not answers:
        out.append("（还没有对话）")
    return "\n".join(out).rstrip() + "\n"


# ----------------------------------------------------------------------------- browse


def _unit_caption(u: Unit) -> str:
    return u.label.split(" › ")[-1]


def render_unit(u: Unit) -> str:
    """One unit of the plan as HTML (escaped); its full label is the tooltip, and items, notes
    and indicator lines also show it as a caption."""
    label = esc(u.label)
    lost = '<span class="pq-muted">（原文在此处缺失）</span>' if u.truncated else ""
    if u.kind == KIND_TITLE:
        return f'<h2 class="pq-doc-title" title="{label}">{esc(u.text)}</h2>'
    if u.kind == KIND_HEADING:
        tag = "h3" if u.location.section_no is None else "h4"
        cap = _unit_caption(u)  # 「第一章 总体要求」 (spaced); an 一、 heading keeps its own text
        text = cap if canon(cap) == canon(u.text) else u.text
        return f'<{tag} class="pq-heading" title="{label}">{esc(text)}</{tag}>'
    if u.kind == KIND_COLUMN:
        return f'<div class="pq-colhead" title="{label}">{esc(_unit_caption(u))}</div>'
    if u.kind == KIND_TABLE_HEAD:
        return ""
    if u.kind == KIND_ITEM and u.title and u.text.startswith(u.title):
        body = f"<strong>{esc(u.title)}</strong>{esc(u.text[len(u.title) :])}"
    elif u.lead and u.text.startswith(u.lead):
        body = f"<strong>{esc(u.lead)}</strong>{esc(u.text[len(u.lead) :])}"
    else:
        body = esc(u.text)
    cls = {KIND_NOTE: "pq-footnote", KIND_INDICATOR: "pq-indicator-line", KIND_HEADER: "pq-header-text"}.get(
        u.kind, ""
    )
    caption = ""
    if u.kind in (KIND_NOTE, KIND_INDICATOR, KIND_HEADER):
        caption = f'<div class="pq-unit-label">{esc(_unit_caption(u))}</div>'
    return f'<div class="pq-unit {cls}" id="u-{esc(u.id)}" title="{label}">{caption}<p>{body}{lost}</p></div>'


def render_units(units: Iterable[Unit], doc: Document | None = None) -> str:
    """A run of units under a breadcrumb of their common label; with ``doc``, the indicator
    rows of 专栏1 become one real table (with its footnotes)."""
    units = list(units)
    if not units:
        return '<div class="pq-muted">（无内容）</div>'
    parts: list[str] = []
    crumbs = units[0].label.split(" › ")
    for u in units[1:]:
        other = u.label.split(" › ")
        n = 0
        while n < min(len(crumbs), len(other)) and crumbs[n] == other[n]:
            n += 1
        crumbs = crumbs[:n]
    if crumbs:
        parts.append(f'<div class="pq-crumbs">{" › ".join(esc(c) for c in crumbs)}</div>')
    sub = None
    table_done = False
    for u in units:
        if u.kind in (KIND_INDICATOR, KIND_TABLE_HEAD) and doc is not None and doc.indicators:
            if not table_done:
                parts.append(render_indicator_table(indicator_rows(doc.indicators)))
                table_done = True
            continue
        if u.subheading and u.subheading != sub:
            parts.append(f'<h5 class="pq-subheading">{esc(u.subheading)}</h5>')
        sub = u.subheading
        parts.append(render_unit(u))
    return '<div class="pq-browse">' + "".join(parts) + "</div>"


INDICATOR_HEADERS = ["类别", "指标", "2020年", "2025年", "属性", "注"]


def indicator_rows(indicators: Iterable[Indicator]) -> list[list[str]]:
    """The indicator table as rows of INDICATOR_HEADERS; an indicator split by scope (e.g. no. 6:
    设区城市 / 县级) gives one row per scope."""
    rows = []
    for i in indicators:
        name = f"{i.no}. {i.display_name}"
        markers = "".join(sorted(n.marker for n in i.notes))
        note = "；".join(x for x in (markers, i.remark) if x)
        attr = i.attribute or "未标注"
        if i.rows:
            for r in i.rows:
                r_note = "".join(r.notes)  # a scope's own footnotes (no. 6: ② is on 县级 only)
                rows.append(
                    [
                        i.category or "",
                        f"{name} · {r.scope}",
                        r.baseline.value or "—",
                        r.target.value or "—",
                        attr,
                        "；".join(x for x in (r_note, i.remark) if x),
                    ]
                )
        else:
            rows.append([i.category or "", name, i.baseline.value or "—", i.target.value or "—", attr, note])
    return rows


def filter_indicator_rows(rows: list[list[str]], category: str | None, text: str | None) -> list[list[str]]:
    """Rows of one category (None / "全部" = all) whose cells contain ``text`` (case-insensitive)."""
    t = (text or "").strip().lower()
    out = []
    for r in rows:
        if category and category != "全部" and r[0] != category:
            continue
        if t and not any(t in cell.lower() for cell in r):
            continue
        out.append(r)
    return out


def render_indicator_table(rows: list[list[str]], *, empty: str = "没有匹配的指标。") -> str:
    """The indicator rows as one table; each cell carries its column name (``data-label``) so
    that on a phone the stylesheet can show a row as a small card instead of a wide table.
    No rows: the ``empty`` line instead of bare headers."""
    if not rows:
        return f'<div class="pq-muted pq-empty">{esc(empty)}</div>'
    head = "".join(f"<th>{esc(h)}</th>" for h in INDICATOR_HEADERS)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td data-label="{esc(h)}">{esc(c)}</td>'
            if c
            else f'<td data-label="{esc(h)}" class="pq-blank"></td>'
            for h, c in zip(INDICATOR_HEADERS, r, strict=False)
        )
        + "</tr>"
        for r in rows
    )
    return f'<table class="pq-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render_indicator_notes(indicators: Iterable[Indicator]) -> str:
    seen: dict[str, str] = {}
    for i in indicators:
        for n in i.notes:
            seen.setdefault(n.marker, n.text)
    if not seen:
        return ""
    items = "".join(f'<div class="pq-footnote">{esc(m)} {esc(t)}</div>' for m, t in sorted(seen.items()))
    return f'<div class="pq-notes"><b>注：</b>{items}</div>'


# Words too common to be worth marking on their own when they are all a match consists of.
_FILLER = set("的了和与及是在有为对把被等或并也都就要将")


def term_spans(text: str, query: str, min_len: int = 2) -> list[tuple[int, int]]:
    """[start, end) spans of ``text`` that also occur in ``query`` (Latin letters in any case),
    longest match first at each position, at least ``min_len`` characters and not only filler
    characters. A plain stand-in for the search's own tokens, good enough to show a reader
    where the words they typed are."""
    t, q = (text or "").lower(), (query or "").lower()
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(t):
        best = 0
        length = min_len
        while i + length <= len(t) and _wordy(t[i : i + length]) and t[i : i + length] in q:
            best = length
            length += 1
        piece = t[i : i + best]
        if best and not set(piece) <= _FILLER:
            spans.append((i, i + best))
            i += best
        else:
            i += 1
    return spans


def _wordy(piece: str) -> bool:
    """Letters, digits and the dots and percent signs inside numbers (PM2.5, 62.5%)."""
    return all(ch.isalnum() or ch in ".%" for ch in piece)


def highlight_terms(text: str, query: str) -> str:
    """``text`` as HTML with the words it shares with ``query`` in ``<mark>`` (``term_spans``)."""
    out, pos = [], 0
    for a, b in term_spans(text, query):
        out.append(f"{esc(text[pos:a])}<mark>{esc(text[a:b])}</mark>")
        pos = b
    out.append(esc((text or "")[pos:]))
    return "".join(out)


def render_hits(question: str, hits: Sequence[Hit]) -> str:
    """Search results, best first: rank, kind, label and the text (escaped) with the searched
    words highlighted. The retriever's score is left out: its scale means nothing to a reader
    (the order already says which result fits best)."""
    if not (question or "").strip():
        return '<div class="pq-muted">请输入要检索的内容。</div>'
    if not hits:
        return f'<div class="pq-muted">没有找到与「{esc(short_question(question, 60))}」相关的原文。</div>'
    items = []
    for n, h in enumerate(hits, 1):
        body = highlight_terms(h.unit.text, question)
        found = "<mark>" in body
        tag = "" if found else '<span class="pq-score">（意思相近，未含检索词）</span>'
        items.append(
            f'<div class="pq-hit"><div class="pq-cite-head"><span class="pq-cite-n">第{n}条</span>'
            f'<span class="pq-kind">{esc(citation_kind(h.unit.location))}</span>'
            f'<span class="pq-label">{esc(h.unit.label)}</span>{tag}</div>'
            f'<div class="pq-cite-body">{body}</div></div>'
        )
    head = f'<div class="pq-hits-head">找到 {len(hits)} 条相关原文，按相关程度排列；检索词以<mark>高亮</mark>标出。</div>'
    return f'<div class="pq-hits">{head}{"".join(items)}</div>'


# ----------------------------------------------------------------------------- outline


def outline_entries(doc: Document, *, prefix_doc: bool = False) -> list[tuple[str, str]]:
    """(chapter label, key) for the chapter picker; key is "<doc>|front" or "<doc>|c<no>"."""
    pre = f"《{doc.title}》 " if prefix_doc else ""
    out = []
    if any(u.location.chapter_no is None for u in doc.units):
        out.append((f"{pre}通知与前言", f"{doc.id}|front"))
    out += [(f"{pre}第{to_cn_number(c.no)}章 {c.title}", f"{doc.id}|c{c.no}") for c in doc.chapters]
    return out


def chapter_parts(doc: Document, chapter_no: int) -> list[tuple[str, str]]:
    """(label, key) of the parts of a chapter: its opening paragraphs, sections, 专栏."""
    ch = next((c for c in doc.chapters if c.no == chapter_no), None)
    if ch is None:
        return []
    out = []
    if ch.intro_ids:
        out.append(("本章导语", f"{doc.id}|c{ch.no}|intro"))
    for s in ch.sections:
        out.append((f"第{to_cn_number(s.no)}节 {s.title}", f"{doc.id}|c{ch.no}|s{s.no}"))
        for col in doc.columns:
            if col.chapter_no == ch.no and col.section_no == s.no:
                out.append((f"　专栏{col.no} {col.title}", f"{doc.id}|col{col.no}"))
    for col in doc.columns:
        if col.chapter_no == ch.no and col.section_no is None:
            out.append((f"专栏{col.no} {col.title}", f"{doc.id}|col{col.no}"))
    return out


def units_for(doc: Document, key: str) -> list[Unit]:
    """The units behind an outline key (see ``outline_entries`` / ``chapter_parts``), in order."""
    part = key.split("|", 1)[1] if "|" in key else key
    if part == "front":
        return [u for u in doc.units if u.location.chapter_no is None]
    m = re.fullmatch(r"col(\d+)", part)
    if m:
        n = int(m.group(1))
        return [u for u in doc.units if u.location.column_no == n]
    m = re.fullmatch(r"c(\d+)(?:\|(intro|s(\d+)))?", part)
    if not m:
        return []
    ch = int(m.group(1))
    in_ch = [u for u in doc.units if u.location.chapter_no == ch and u.location.column_no is None]
    if m.group(2) is None:
        return in_ch
    if m.group(2) == "intro":
        return [u for u in in_ch if u.location.section_no is None]
    s = int(m.group(3))
    return [u for u in in_ch if u.location.section_no == s]


def manifest_summary(manifest: Mapping[str, Any]) -> str:
    """Markdown lines about the live index for the admin tab (no secrets are in a manifest)."""
    counts = manifest.get("counts", {})
    docs = "、".join(f"《{d.get('title')}》" for d in manifest.get("documents", []))
    emb = manifest.get("embedder", {})
    return "\n".join(
        [
            f"- 构建编号：`{manifest.get('build_id')}`（{manifest.get('built_at')}）",
            f"- 文档：{docs}",
            f"- 单元：{counts.get('units')}（可检索 {counts.get('retrievable')}）",
            f"- 向量模型：{emb.get('name')}；Chroma：{manifest.get('chroma', {}).get('mode')}",
        ]
    )
