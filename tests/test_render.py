"""The app's render functions on hand-made answers and units (no gradio, no index)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.load import load_document
from policyqa import render
from policyqa.models import Answer, Citation, Document, Hit, Indicator, IndicatorRow, Location, Unit, Value

DATA = Path(__file__).parent / "data"

LOC_IND = Location(doc="d", chapter_no=2, section_no=3, column_no=1, indicator_no=17, indicator="森林覆盖率")
LOC_PARA = Location(doc="d", chapter_no=1, chapter="总论", section_no=1, section="成就")
IND_TEXT = "生态保护 17.森林覆盖率(%) 62.5 62.6 约束性"
PARA_TEXT = "自然生态保护修复效果显著。森林覆盖率达到62.5%，稳居全国第3位。湿地保有量75.43万公顷。"

UNITS = {
    "d:ind17": Unit(
        "d:ind17",
        "d",
        "indicator",
        IND_TEXT,
        "专栏1 主要指标 › 17. 森林覆盖率（%）",
        LOC_IND,
        indicator=Indicator(
            17, "生态保护", "森林覆盖率", "%", Value(2020, "62.5"), Value(2025, "62.6"), "约束性"
        ),
    ),
    "d:p1": Unit("d:p1", "d", "paragraph", PARA_TEXT, "第一章 总论 › 第一节 成就", LOC_PARA),
}


def cite(n: int, uid: str, quote: str) -> Citation:
    u = UNITS[uid]
    return Citation(n=n, id=uid, label=u.label, location=u.location, quote=quote)


FOREST = Answer(
    question="2025年森林覆盖率目标是多少？",
    answer="森林覆盖率2025年目标为62.6[1]。\n规划正文：森林覆盖率达到62.5%[2]。",
    answerable=True,
    citations=(cite(1, "d:ind17", IND_TEXT), cite(2, "d:p1", "森林覆盖率达到62.5%，稳居全国第3位。")),
    timings_ms={"total": 1234.0},
)


# ----------------------------------------------------------------------------- markers


def test_markers_become_links_to_their_turns_cards() -> None:
    html = render.render_answer(FOREST, turn=3)
    assert html.count('class="pq-marker"') == 2
    assert 'href="#cite-3-1"' in html and 'href="#cite-3-2"' in html
    assert ">&#91;1&#93;</a></sup>" in html  # shown as [1]; never Markdown link syntax
    assert "62.6" in html
    assert "原文摘录" in html and "1.2 秒" in html


def test_marker_without_citation_stays_text() -> None:
    html = render.link_markers("甲[1]乙[7]", 1, [1])
    assert 'href="#cite-1-1"' in html
    assert "[7]" in html and "#cite-1-7" not in html


def test_stream_chunks_cut_at_line_ends() -> None:
    text = "第一行[1]。\n第二行[2]。\n第三行[3]。\n第四行[4]。"
    chunks = render.stream_chunks(text)
    assert chunks[-1] == text
    assert 1 < len(chunks) <= 3
    for c in chunks:
        assert text.startswith(c)
        assert not re.search(r"\[\d*$", c)
    assert render.stream_chunks("一行") == ["一行"]


# ----------------------------------------------------------------------------- quotes in context


def test_quote_highlighted_inside_its_unit_text() -> None:
    html, found = render.highlight_quote(PARA_TEXT, "森林覆盖率达到62.5%，稳居全国第3位。")
    assert found
    assert html == (
        "自然生态保护修复效果显著。<mark>森林覆盖率达到62.5%，稳居全国第3位。</mark>湿地保有量75.43万公顷。"
    )


def test_quote_found_in_canonical_form_maps_back_to_the_spaced_text() -> None:
    # the quote lacks the spaces of the table row; the mark still covers the row's own text
    html, found = render.highlight_quote(IND_TEXT, "17.森林覆盖率(%)62.562.6")
    assert found
    assert "<mark>17.森林覆盖率(%) 62.5 62.6</mark>" in html
    assert html.startswith("生态保护 ") and html.endswith(" 约束性")


def test_quote_not_in_text_is_shown_alone() -> None:
    html, found = render.highlight_quote(PARA_TEXT, "规划里没有的一句话。")
    assert not found and html == "<mark>规划里没有的一句话。</mark>"
    card = render.render_citation_card(cite(1, "d:p1", "规划里没有的一句话。"), UNITS["d:p1"], 1)
    assert "仅显示引文" in card
    assert PARA_TEXT[:6] not in card  # the paragraph without the quote is not shown
    card = render.render_citation_card(cite(1, "d:p1", "引文"), None, 1)
    assert '<mark data-n="1">引文</mark>' in card


def test_sources_panel_cards_with_labels_kinds_and_anchors() -> None:
    html = render.render_sources([FOREST], UNITS)
    assert 'id="cite-1-1"' in html and 'id="cite-1-2"' in html
    assert "专栏1 主要指标 › 17. 森林覆盖率（%）" in html
    assert ">指标<" in html and ">节<" in html
    assert '<mark data-n="2">森林覆盖率达到62.5%，稳居全国第3位。</mark>' in html
    assert "<td>62.6</td>" in html  # the indicator's values as a small table


def test_sources_panel_folds_earlier_turns() -> None:
    second = Answer(
        "工地扬尘谁管？", "严格管控渣土运输扬尘污染[1]。", True, (cite(1, "d:p1", "湿地保有量75.43万公顷。"),)
    )
    html = render.render_sources([FOREST, second], UNITS)
    assert html.index('data-turn="2"') < html.index('data-turn="1"')  # latest first
    assert re.search(r'<details class="pq-turn" data-turn="1">', html)
    assert 'id="cite-2-1"' in html and 'id="cite-1-2"' in html
    assert "提问后" in render.render_sources([], UNITS)


# ----------------------------------------------------------------------------- escaping


XSS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", '"><svg onload=alert(1)>']


@pytest.mark.parametrize("evil", XSS)
def test_user_and_plan_text_are_escaped(evil: str) -> None:
    assert "<" not in render.render_question(evil)
    ans = Answer(evil, f"答复{evil}[1]", True, (Citation(1, "d:x", f"标签{evil}", LOC_PARA, evil),))
    unit = Unit("d:x", "d", "paragraph", f"前文{evil}后文", f"标签{evil}", LOC_PARA)
    for out in (
        render.render_answer(ans, 1),
        render.render_sources([ans], {"d:x": unit}),
        render.render_unit(unit),
        render.render_hits(evil, []),
    ):
        assert "<script" not in out and "<img" not in out and "<svg" not in out
        assert "&lt;" in out


MD_EVIL = [
    "![x](http://127.0.0.1:1/x.png)",
    "[点我](javascript:alert(1))",
    "![x][1]\n\n[1]: http://127.0.0.1:1/x.png",
    "`![x](http://127.0.0.1:1/x.png)`",
    "\\![x](http://127.0.0.1:1/x.png)",
    "见 http://127.0.0.1:1/x.png 与 WWW.example.com、a@example.com",
]


def md_syntax(text: str) -> bool:
    """Whether Markdown could read a link, an image or a reference definition in ``text``."""
    return bool(re.search(r"!?\[[^\]]*\]\s*[(\[:]", text))


@pytest.mark.parametrize("evil", MD_EVIL)
def test_markdown_links_and_images_in_user_and_llm_text_are_inert(evil: str) -> None:
    for out in (
        render.render_question(f"问题{evil}"),
        render.render_partial(f"草稿{evil}", llm=True),
        render.render_answer(
            Answer("q", f"答复{evil}[1]", True, (cite(1, "d:p1", "湿地保有量75.43万公顷。"),)), 2
        ),
    ):
        assert "<img" not in out and "](" not in out and "![" not in out
        assert "javascript:alert(1))" not in out
        assert "://" not in out and "www." not in out.lower() and "@" not in out  # no bare autolinks
        assert not md_syntax(out.replace('title="查看出处 [1]"', ""))
    assert "&#33;&#91;x&#93;&#40;http&#58;//127.0.0.1&#58;1/x.png&#41;" in render.render_question(MD_EVIL[0])
    # the text still reads the same once the browser decodes the references
    assert html.unescape(render.render_question(MD_EVIL[0])) == MD_EVIL[0]


def test_citation_links_still_work_next_to_inert_markdown() -> None:
    a = Answer("q", "见[1]与[9](http://x)。", True, (cite(1, "d:p1", "湿地保有量75.43万公顷。"),))
    out = render.render_answer(a, 4)
    assert out.count('class="pq-marker"') == 1 and 'href="#cite-4-1"' in out
    assert "&#91;9&#93;&#40;http&#58;//x&#41;" in out  # an uncited marker stays (inert) text
    # plan text with ASCII brackets / parentheses reads unchanged
    plan = Answer("q", "森林覆盖率(%)达到62.6[1]。", True, (cite(1, "d:ind17", IND_TEXT),))
    assert html.unescape(render.render_answer(plan, 1)).startswith("森林覆盖率(%)达到62.6")


def test_long_question_is_cut_for_display() -> None:
    q = "森" * 1000
    shown = render.render_question(q)
    assert len(shown) < 400 and "共 1000 字" in shown


# ----------------------------------------------------------------------------- notes


def test_refusal_note() -> None:
    a = Answer(
        "上海的PM2.5目标？", "本规划未涉及上海等其他地区的情况，无法依据规划作答。", False, mode="refusal"
    )
    html = render.render_answer(a, 1)
    assert "pq-note-refusal" in html and "拒答" in html
    assert "pq-note-refusal" not in render.render_answer(FOREST, 1)


def test_invalid_input_note_shows_the_message() -> None:
    a = Answer("森" * 600, "问题太长（600 字），请精简到 500 字以内。", False, mode="invalid")
    html = render.render_answer(a, 1)
    assert "问题太长" in html and "pq-note-warn" in html


def test_llm_fallback_note() -> None:
    a = Answer(
        "q",
        "答[1]",
        True,
        (cite(1, "d:p1", "湿地保有量75.43万公顷。"),),
        mode="llm-fallback:timeout",
        notice="大模型暂不可用，已改用原文摘录回答。",
    )
    html = render.render_answer(a, 1)
    assert "pq-note-fallback" in html and "大模型暂不可用" in html
    no_notice = Answer("q", "答", True, mode="llm-fallback:error")
    assert "大模型暂不可用" in render.render_answer(no_notice, 1)
    assert "pq-note-fallback" not in render.render_answer(FOREST, 1)


def test_partial_llm_text_is_marked_as_a_draft() -> None:
    html = render.render_partial("<b>草稿", llm=True)
    assert "&lt;b&gt;草稿" in html and "核验" in html
    assert "正在检索" in render.render_partial("", llm=False)


# ----------------------------------------------------------------------------- export


def test_markdown_export_has_questions_answers_and_sources() -> None:
    md = render.render_export_markdown(
        [FOREST],
        now=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        asked=[datetime(2025, 1, 2, 3, 1, tzinfo=UTC)],
    )
    assert md.startswith("# 对话记录")
    assert "导出时间：2025年1月2日 11:04" in md  # Asia/Shanghai, as people read it
    assert "提问时间：2025年1月2日 11:01" in md
    assert "T03:04" not in md
    assert "## 1. 问：2025年森林覆盖率目标是多少？" in md
    assert "森林覆盖率2025年目标为62.6[1]。" in md
    assert "**出处**" in md
    assert "[1] 专栏1 主要指标 › 17. 森林覆盖率（%）" in md
    assert f"> {IND_TEXT}" in md
    assert "[2] 第一章 总论 › 第一节 成就" in md
    assert "还没有对话" in render.render_export_markdown([])


def test_markdown_export_keeps_a_hostile_question_inert() -> None:
    from dataclasses import replace

    q = "森林\x00覆盖率\n# 标题\n<script>alert(1)</script> [x](http://e.vil)"
    md = render.render_export_markdown([replace(FOREST, question=q)])
    heading = next(line for line in md.splitlines() if line.startswith("## 1. 问："))
    assert "森林 覆盖率 # 标题" in heading and "\x00" not in md
    assert "<script>" not in md and "&lt;script&gt;" in heading
    assert "](" not in heading and "\n# 标题" not in md


# ----------------------------------------------------------------------------- browse


@pytest.fixture(scope="module")
def toy() -> Document:
    return load_document(DATA / "toy-plan.txt")


def test_outline_keys_and_units(toy: Document) -> None:
    entries = render.outline_entries(toy)
    assert entries[0] == ("通知与前言", "toy-plan|front")
    assert ("第一章 总体要求", "toy-plan|c1") in entries
    parts = render.chapter_parts(toy, 1)
    assert [k for _, k in parts] == ["toy-plan|c1|intro", "toy-plan|c1|s1", "toy-plan|col1"]
    assert [u.id for u in render.units_for(toy, "toy-plan|c1|intro")] == [
        "toy-plan:ch01",
        "toy-plan:ch01.p01",
    ]
    sec = [u.id for u in render.units_for(toy, "toy-plan|c1|s1")]
    assert sec == ["toy-plan:ch01.s01", "toy-plan:ch01.s01.p01"]
    col = render.units_for(toy, "toy-plan|col2")
    assert [u.kind for u in col] == ["column", "item", "item"]


def test_section_html_has_headings_items_and_the_indicator_table(toy: Document) -> None:
    html = render.render_units(render.units_for(toy, "toy-plan|col2"), toy)
    assert "专栏2 重点工程" in html and "<strong>超低排放改造" in html
    table = render.render_units(render.units_for(toy, "toy-plan|col1"), toy)
    assert table.count('<table class="pq-table">') == 1
    assert (
        '<td data-label="指标">3. 森林覆盖率（%）</td><td data-label="2020年">40.2</td>'
        '<td data-label="2025年">41</td>' in table
    )
    assert "受天气影响" in table  # the footnote units are kept under the table
    heading = render.render_units(render.units_for(toy, "toy-plan|c2|s1"), toy)
    assert "<h4" in heading and "第一节 治理大气污染" in heading


def test_indicator_rows_split_by_scope_and_filter() -> None:
    six = Indicator(
        no=6,
        category="环境治理",
        name="集中式饮用水水源地水质达标率",
        unit="%",
        baseline=Value(2020, None),
        target=Value(2025, None),
        attribute=None,
        rows=(
            IndicatorRow("设区城市", Value(2020, "97.3"), Value(2025, "以国家下达指标为准")),
            IndicatorRow("县级", Value(2020, "90.6"), Value(2025, "90"), ("②",)),
        ),
    )
    forest = Indicator(17, "生态保护", "森林覆盖率", "%", Value(2020, "62.5"), Value(2025, "62.6"), "约束性")
    rows = render.indicator_rows([six, forest])
    assert rows == [
        [
            "环境治理",
            "6. 集中式饮用水水源地水质达标率（%） · 设区城市",
            "97.3",
            "以国家下达指标为准",
            "未标注",
            "",
        ],
        ["环境治理", "6. 集中式饮用水水源地水质达标率（%） · 县级", "90.6", "90", "未标注", "②"],
        ["生态保护", "17. 森林覆盖率（%）", "62.5", "62.6", "约束性", ""],
    ]
    assert render.filter_indicator_rows(rows, "生态保护", "") == rows[2:]
    assert render.filter_indicator_rows(rows, "全部", "县级") == rows[1:2]
    assert render.filter_indicator_rows(rows, None, "62.6") == rows[2:]
    assert render.filter_indicator_rows(rows, "环境治理", "森林") == []


# ----------------------------------------------------------------------------- issue 14


def test_local_time_is_shanghai_and_naive_is_utc() -> None:
    assert render.local_time(datetime(2026, 12, 1, 12, 30, tzinfo=UTC)) == "2026年12月1日 20:30"
    assert render.local_time(datetime(2026, 12, 31, 16, 5)) == "2027年1月1日 00:05"


def test_citations_of_one_paragraph_share_one_card() -> None:
    a = Answer(
        "森林？",
        "森林覆盖率达到62.5%[1]。湿地保有量75.43万公顷[2]。目标62.6[3]。",
        True,
        (
            cite(1, "d:p1", "森林覆盖率达到62.5%，稳居全国第3位。"),
            cite(2, "d:p1", "湿地保有量75.43万公顷。"),
            cite(3, "d:ind17", IND_TEXT),
        ),
    )
    html = render.render_sources([a], UNITS)
    assert html.count(PARA_TEXT[:10]) == 1  # the paragraph is printed once
    assert html.count('class="pq-cite"') == 2
    assert 'id="cite-1-1"' in html and 'id="cite-1-2"' in html and 'id="cite-1-3"' in html
    assert 'data-ns="1 2"' in html and 'class="pq-anchor" id="cite-1-2"' in html
    assert '<mark data-n="1">森林覆盖率达到62.5%，稳居全国第3位。</mark>' in html
    assert '<mark data-n="2">湿地保有量75.43万公顷。</mark>' in html
    assert render.group_citations(a.citations)[0] == list(a.citations[:2])


def test_overlapping_quotes_share_one_mark_and_lost_ones_are_shown() -> None:
    html, missing = render.highlight_quotes("甲乙丙丁戊己", [(1, "乙丙丁"), (2, "丁戊"), (3, "不存在")])
    assert html == '甲<mark data-n="1" data-also="2">乙丙丁戊</mark>己'
    assert missing == [3]
    card = render.render_citation_group([cite(1, "d:p1", "不在段落里的话")], UNITS["d:p1"], 1)
    assert "未能在原文段落中定位" in card and '<mark data-n="1">不在段落里的话</mark>' in card


NEAREST = Answer(
    "地下水超采怎么罚？",
    "本规划未涉及这一问题。规划中最接近的部分：第一章第一节[1]。",
    False,
    (cite(1, "d:p1", "自然生态保护修复效果显著。"),),
    mode="refusal",
    outcome="not_covered",
)


def test_not_covered_answer_with_nearest_sections_has_clickable_cards() -> None:
    msg = render.render_answer(NEAREST, 1)
    assert 'href="#cite-1-1"' in msg and "pq-note-refusal" in msg and "点击角标" in msg
    panel = render.render_sources([NEAREST], UNITS)
    assert "这一问没有引用规划原文" not in panel
    assert "最接近的章节" in panel and 'id="cite-1-1"' in panel
    bare = Answer("水", "本规划未涉及这一问题。", False, mode="refusal")
    assert "这一问没有引用规划原文" in render.render_sources([bare], UNITS)
    assert "点击角标" not in render.render_answer(bare, 1)


def test_partial_answer_has_its_own_labelled_note() -> None:
    partial = Answer(
        "2025年森林覆盖率目标和罚款？",
        "规划没有写明罚款；相关的规定是：森林覆盖率2025年目标为62.6[1]。",
        True,
        (cite(1, "d:ind17", IND_TEXT),),
        outcome="partial",
    )
    html = render.render_answer(partial, 1)
    assert html.startswith('<div class="pq-partial" role="note"><span class="pq-partial-tag">部分涉及</span>')
    assert 'href="#cite-1-1"' in html and "pq-note-refusal" not in html
    assert "pq-partial" not in render.render_answer(FOREST, 1)
    assert "部分涉及" in render.render_export_markdown([partial])


def test_search_hits_highlight_the_words_and_hide_the_score() -> None:
    hit = Hit(UNITS["d:p1"], 1.8)
    html = render.render_hits("森林覆盖率是多少", [hit])
    assert "<mark>森林覆盖率</mark>" in html and "相关度" not in html and "1.800" not in html
    assert "第1条" in html
    assert render.term_spans("的的森林的", "森林的的") == [(2, 5)]  # filler alone is not marked
    evil = Hit(Unit("x", "d", "paragraph", "<b>森林</b>", "l", LOC_PARA), 1.0)
    assert "&lt;b&gt;<mark>森林</mark>&lt;/b&gt;" in render.render_hits("<b>森林", [evil])
    assert "<mark>PM2.5</mark>" in render.highlight_terms("PM2.5浓度", "pm2.5是多少")
    assert "未含检索词" in render.render_hits("大气", [hit])


def test_indicator_table_without_rows_says_so() -> None:
    assert render.render_indicator_table([]) == '<div class="pq-muted pq-empty">没有匹配的指标。</div>'
    row = render.render_indicator_table([["生态保护", "17. 森林", "62.5", "62.6", "约束性", ""]])
    assert '<td data-label="注" class="pq-blank"></td>' in row
