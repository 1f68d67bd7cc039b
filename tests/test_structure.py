"""The structure reader on toy documents of each kind, with their trees written out by hand.

A plan with a 2025/2030 indicator table (space-separated cells), a regulation with 章/节 and
第X条, a notice with 一、（一）, a web page with menus and footers; tables with cells separated by
tabs, pipes, runs of spaces, single spaces (as pypdf prints them) and one cell a line; page
furniture; metadata read from the text and overridden by meta.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.blocks import blocks, wrap_width
from ingest.lines import split_lines, strip_furniture
from ingest.load import load_document
from ingest.meta import period_years, read_meta
from ingest.tree import parse_document
from policyqa.models import KIND_ARTICLE, KIND_HEADING, KIND_INDICATOR, META_KEYS, Document
from policyqa.text import canon

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]


def ind(doc: Document) -> list[tuple]:
    """Indicators as (no, category, name, unit, (year, value), (year, value), attribute)."""
    return [
        (
            i.no,
            i.category,
            i.name,
            i.unit,
            (i.baseline.year, i.baseline.value),
            (i.target.year, i.target.value),
            i.attribute,
        )
        for i in doc.indicators
    ]


# ----------------------------------------------------------------------------- plan 2025/2030

TOY_2030 = [
    (1, "环境质量", "空气质量优良天数比率", "%", (2025, "92.4"), (2030, "93"), "约束性"),
    (2, "环境质量", "地表水优良水质比例", "%", (2025, "88.1"), (2030, "90"), "约束性"),
    (3, "生态保护", "森林覆盖率", "%", (2025, "58.2"), (2030, "不低于59"), "预期性"),
]


def test_plan_2030_tree_years_from_header() -> None:
    d = load_document(DATA / "toy-plan-2030.txt")
    assert d.title == "示例省生态环境保护“十五五”规划"
    assert [u.id.split(":")[1] for u in d.units] == [
        "header",
        "title",
        "ch01",
        "ch01.p01",
        "ch02",
        "ch02.s01",
        "ch02.s01.p01",
        "col1",
        "col1.thead",
        "ind01",
        "ind02",
        "ind03",
        "col1.note1",
        "ch03",
        "ch03.p01",
    ]
    assert ind(d) == TOY_2030
    assert [(n.marker, n.text) for n in d.indicators[1].notes] == [("①", "按国家考核断面计。")]
    assert d.unit("toy-plan-2030:ind03").label == "专栏1 主要指标 › 3. 森林覆盖率（%）"
    assert d.meta == {
        "title": "示例省生态环境保护“十五五”规划",
        "short_title": "示例省生态环境保护“十五五”规划",
        "doc_number": "示环发〔2026〕8号",
        "office": "示例省生态环境厅",
        "date": "2026-03-02",
        "region": "示例省",
        "period": "十五五",
        "start_year": 2026,
        "end_year": 2030,
        "kind": "plan",
    }
    assert d.warnings == ()


def test_years_are_never_assumed() -> None:
    src = (DATA / "toy-plan.txt").read_text(encoding="utf-8")
    other = parse_document(src.replace("2020 年", "2019年").replace("2025 年", "2024年"), "t")
    assert {(i.baseline.year, i.target.year) for i in other.indicators} == {(2019, 2024)}
    bare = parse_document(src.replace("2020 年", "基期").replace("2025 年", "目标"), "t")
    assert {(i.baseline.year, i.target.year) for i in bare.indicators} == {(None, None)}
    assert any("年份" in w for w in bare.warnings)
    assert [i.target.value for i in bare.indicators] == ["95", "100", "41"]


# ----------------------------------------------------------------------------- table cell modes

HEAD = "类别|指标|2025年|2030年|属性"
ROWS = [
    ["环境质量", "1. 空气质量优良天数比率（%）", "92.4", "93", "约束性"],
    ["", "2. 地表水优良水质比例（%）", "88.1①", "90", "约束性"],
    ["生态保护", "3. 森林覆盖率（%）", "58.2", "不低于 59", "预期性"],
]


def table_doc(lines: list[str]) -> Document:
    body = "\n".join(lines)
    src = f"示例规划\n\n第一章 目标\n\n专栏1 主要指标\n\n{body}\n\n注：①按国家考核断面计。\n\n第二章 保障\n\n做好工作。\n"
    return parse_document(src, "t")


@pytest.mark.parametrize(
    "mode",
    ["tab", "pipe", "spaces", "single", "lines"],
)
def test_table_cells_whatever_separates_them(mode: str) -> None:
    head = HEAD.split("|")
    if mode == "tab":
        lines = ["\t".join(head)] + ["\t".join(r) for r in ROWS]
    elif mode == "pipe":
        lines = ["| " + " | ".join(head) + " |", "|---|---|---|---|---|"] + [
            "| " + " | ".join(r) + " |" for r in ROWS
        ]
    elif mode == "spaces":
        lines = ["    ".join(head)] + ["   ".join(c or "      " for c in r) for r in ROWS]
    elif mode == "single":  # as pypdf prints a table: one space between cells and inside them
        lines = [" ".join(head)] + [" ".join(c for c in r if c) for r in ROWS]
    else:  # one cell a line
        lines = head + [c for r in ROWS for c in r if c]
    d = table_doc(lines)
    assert ind(d) == TOY_2030, lines
    assert [c.no for c in d.columns] == [1] and len(d.chapters) == 2
    assert [n.marker for n in d.indicators[1].notes] == ["①"]


def test_single_space_row_with_scope_rows_and_word_values() -> None:
    """A pypdf row split by scope over three lines, and two word cells run together."""
    lines = [
        "类别 指标 2020 年 2025 年 指标属性",
        "环境治理 1. 集中式饮用水水源 地水质达标率 (%) 设区 97.3 以国家下达 指标为准",
        "城市",
        "县级 90.6 90 ^②",
        "2. 生态保护红线面积 (万公顷) 国家核定 数未出 以国家下达 指标为准 预期性",
        "3. 单位地区生产总值能源消耗降低 (%) 国家核定 数未出 达到国家要 求 约束性",
    ]
    d = table_doc(lines)
    i1, i2, i3 = d.indicators
    assert (i1.baseline.value, i1.attribute) == (None, None)
    assert [(r.scope, r.baseline.value, r.target.value, r.notes) for r in i1.rows] == [
        ("设区城市", "97.3", "以国家下达指标为准", ()),
        ("县级", "90.6", "90", ("②",)),
    ]
    assert (i2.name, i2.unit, i2.baseline.value, i2.target.value) == (
        "生态保护红线面积",
        "万公顷",
        "国家核定数未出",
        "以国家下达指标为准",
    )
    assert (i3.baseline.value, i3.target.value, i3.attribute) == ("国家核定数未出", "达到国家要求", "约束性")
    assert (i3.baseline.year, i3.target.year) == (2020, 2025)


# ----------------------------------------------------------------------------- regulation


def test_regulation_articles() -> None:
    d = load_document(DATA / "toy-regulation.txt")
    assert d.title == "示例省生态环境保护条例"
    assert [(c.no, c.title, [(s.no, s.title) for s in c.sections]) for c in d.chapters] == [
        (1, "总则", []),
        (2, "监督管理", [(1, "规划与标准"), (2, "监测")]),
        (3, "附则", []),
    ]
    arts = [u for u in d.units if u.kind == KIND_ARTICLE]
    assert [u.id for u in arts] == [f"toy-regulation:art{n:03d}" for n in range(1, 7)]
    assert [(u.location.article_no, u.location.chapter_no, u.location.section_no) for u in arts] == [
        (1, 1, None),
        (2, 1, None),
        (3, 2, 1),
        (4, 2, 1),
        (5, 2, 2),
        (6, 3, None),
    ]
    art3 = d.unit("toy-regulation:art003")
    # heading and all its paragraphs in one unit
    assert art3.text == (
        "第三条县级以上人民政府应当编制生态环境保护规划。\n规划应当包括下列内容：\n"
        "（一）生态环境质量目标；\n（二）主要任务和保障措施。"
    )
    assert art3.label == "第二章 监督管理 › 第一节 规划与标准 › 第三条"
    assert d.unit("toy-regulation:art004").location.article == "标准制定"
    assert d.chapters[1].sections[0].unit_ids == ("toy-regulation:art003", "toy-regulation:art004")
    assert (d.meta["kind"], d.meta["region"], d.meta["date"]) == ("regulation", "示例省", "2025-05-20")
    assert d.warnings == ()


@pytest.mark.parametrize(
    ("name", "articles", "chapters"),
    [("plan-eia-regulation.md", 36, 6), ("pollutant-permit-regulation.md", 51, 6)],
)
def test_real_regulations_parse_into_articles(name: str, articles: int, chapters: int) -> None:
    d = load_document(ROOT / "eval" / "library" / name)
    arts = [u for u in d.units if u.kind == KIND_ARTICLE]
    assert [u.location.article_no for u in arts] == list(range(1, articles + 1))
    assert len(d.chapters) == chapters and d.chapters[0].title == "总则"
    assert d.meta["kind"] == "regulation" and d.meta["region"] == "全国"
    assert set(d.meta) == set(META_KEYS)
    # every article unit starts with its own heading
    assert all(u.text.startswith("第") and "条" in u.text[:6] for u in arts)
    src = canon(d.text)
    assert all(canon(u.text) in src for u in arts)


# ----------------------------------------------------------------------------- notice


def test_notice_outline() -> None:
    d = load_document(DATA / "toy-notice.txt")
    assert d.title == "示例市人民政府办公室关于加强扬尘污染防治工作的通知"
    heads = [(u.id.split(":")[1], u.text) for u in d.units if u.kind == KIND_HEADING]
    assert heads == [
        ("body.h01", "一、总体要求"),
        ("body.h02", "二、重点任务"),
        ("body.h03", "（一）强化施工工地管理。"),
        ("body.h04", "（二）加强道路保洁。"),
        ("body.h05", "三、保障措施"),
    ]
    p = next(u for u in d.units if u.text.startswith("城市主干道"))
    assert p.subheading == "（二）加强道路保洁。"
    assert (d.meta["kind"], d.meta["doc_number"], d.meta["office"], d.meta["date"]) == (
        "notice",
        "示政办发〔2024〕12号",
        "示例市人民政府办公室",
        "2024-04-10",
    )


def test_outline_numbers_1_and_paren_1() -> None:
    d = parse_document("一、任务\n\n1. 控制排放\n\n做好工作。\n\n（1）工业源\n\n加强治理。\n", "o")
    assert [u.text for u in d.units if u.kind == KIND_HEADING] == ["一、任务", "1.控制排放", "（1）工业源"]
    assert d.units[-1].subheading == "（1）工业源"


# ----------------------------------------------------------------------------- web page, furniture


def test_web_page_furniture_removed() -> None:
    d = load_document(DATA / "toy-page.html")
    assert d.title == "示例县农村生活污水治理实施方案"
    assert [u.id.split(":")[1] for u in d.units] == [
        "title",
        "front.p01",
        "ch01",
        "ch01.p01",
        "ch02",
        "ch02.p01",
        "ch02.p02",
    ]
    text = "".join(u.text for u in d.units)
    for junk in ("首页", "索引号", "版权所有", "网站标识码", "分享到", "当前位置"):
        assert junk not in text
    assert d.unit("toy-page:ch02.p02").text == "加强设施运行维护。建立县级统筹、乡镇负责的运维机制。"
    assert (d.meta["region"], d.meta["kind"]) == ("示例县", "plan")


def test_page_numbers_and_running_heads() -> None:
    def body(n: int) -> list[str]:  # text that differs from page to page
        return [f"{'甲乙丙丁'[n - 1]}页正文{'一二三四五六七八'[k]}。" for k in range(8)]

    pages = [["示例规划 2026年版", f"第{n}章 总则", *body(n), f"- {n} -"] for n in range(1, 5)]
    c = strip_furniture("\f".join("\n".join(p) for p in pages))
    assert c.text.split("\n") == [x for n in range(1, 5) for x in (f"第{n}章 总则", *body(n))]
    assert c.removed.count("示例规划 2026年版") == 4 and "- 3 -" in c.removed and len(c.removed) == 8
    # in one text without pages only unmistakable page numbers go
    assert strip_furniture("做好工作。\n- 3 -\n95\n第4页\n").text == "做好工作。\n95\n"


def test_plan_text_has_no_furniture() -> None:
    src = (ROOT / "kb" / "plans" / "gx-eco-14th.txt").read_text(encoding="utf-8")
    assert strip_furniture(src).removed == ()
    assert wrap_width(split_lines(src)) is None  # one paragraph a line: not width-wrapped


def test_wrapped_lines_joined() -> None:
    """Lines wrapped at a page width of 20: a line of that width continues, even after 。"""
    para1 = "加强组织领导。各地要把生态环境保护摆在突出位置，切实加强领导。压实责任，确保落实。"
    para2 = "强化资金保障。加大财政投入。"
    wrapped = [para1[i : i + 20] for i in range(0, len(para1), 20)] + [para2]
    src = "\n".join(["第一章 保障", *wrapped * 4])
    d = parse_document(src, "w")
    assert [u.text for u in d.units if u.kind != KIND_HEADING] == [para1, para2] * 4


# ----------------------------------------------------------------------------- metadata


def test_meta_overrides_and_keys(tmp_path: Path) -> None:
    (tmp_path / "reg.txt").write_text(
        (DATA / "toy-regulation.txt").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (tmp_path / "reg.meta.json").write_text(
        json.dumps(
            {"short_title": "环保条例", "office": "示例省人大常委会", "source": "x"}, ensure_ascii=False
        ),
        encoding="utf-8",
    )
    d = load_document(tmp_path / "reg.txt")
    assert list(d.meta) == list(META_KEYS)  # exactly these keys; meta.json's others are not kept
    assert (d.meta["short_title"], d.meta["office"], d.meta["title"]) == (
        "环保条例",
        "示例省人大常委会",
        "示例省生态环境保护条例",
    )
    assert d.unit("reg:art001").location.doc_title == "环保条例"


def test_meta_from_lines() -> None:
    m = read_meta(
        ["国务院关于印发“十三五”生态环境保护规划的通知", "国发〔2016〕65号"], "“十三五”生态环境保护规划"
    )
    assert (m["office"], m["doc_number"], m["period"], m["start_year"], m["end_year"]) == (
        "国务院",
        "国发〔2016〕65号",
        "十三五",
        2016,
        2020,
    )
    assert m["region"] == "全国" and m["kind"] == "plan"
    assert period_years(14) == (2021, 2025) and period_years(15) == (2026, 2030)
    r = read_meta([], "示例市2021—2023年大气污染防治行动方案")
    assert (r["start_year"], r["end_year"], r["region"], r["kind"]) == (2021, 2023, "示例市", "plan")


def test_blocks_keep_every_line() -> None:
    src = (DATA / "toy-regulation.txt").read_text(encoding="utf-8")
    lines = split_lines(src)
    covered = {x.no for b in blocks(lines) for x in b.lines}
    assert covered == {x.no for x in lines if x.text}


def test_indicator_units_carry_years_in_label_location() -> None:
    d = load_document(DATA / "toy-plan-2030.txt")
    u = d.unit("toy-plan-2030:ind01")
    assert u.kind == KIND_INDICATOR and u.location.indicator_no == 1 and u.location.column_no == 1
    assert u.indicator is not None and u.indicator.target.year == 2030


def test_footnotes_in_prose_and_appendix_tables() -> None:
    src = (
        "示例规划\n\n第一章 目标\n\n加强治理①。推进减排。\n\n注：①指重点区域。\n\n②含工业园区。\n\n"
        "附表1 重点工程项目表\n\n序号\t项目名称\t建设内容\n一\t污水处理厂\t新建一座\n二\t垃圾焚烧厂\t扩建一座\n\n"
        "第二章 保障\n\n做好工作。\n"
    )
    d = parse_document(src, "f")
    assert [(u.id.split(":")[1], u.kind, u.text) for u in d.units] == [
        ("title", "title", "示例规划"),
        ("ch01", "heading", "第一章目标"),
        ("ch01.p01", "paragraph", "加强治理①。推进减排。"),
        ("ch01.note1", "note", "注：①指重点区域。"),
        ("ch01.note2", "note", "②含工业园区。"),
        ("box1", "heading", "附表1重点工程项目表"),
        ("box1.thead", "table_head", "序号 项目名称 建设内容"),
        ("box1.r01", "paragraph", "一 污水处理厂 新建一座"),
        ("box1.r02", "paragraph", "二 垃圾焚烧厂 扩建一座"),
        ("ch02", "heading", "第二章保障"),
        ("ch02.p01", "paragraph", "做好工作。"),
    ]
    assert d.unit("f:box1.r02").label == "附表1 重点工程项目表"
    assert d.indicators == () and d.warnings == ()
