"""Parser tests: a hand-written toy plan with its tree spelled out, and the real plan."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ingest.load import decode, load_document, load_kb
from ingest.parse import parse_document
from policyqa.errors import DocumentError
from policyqa.models import KIND_INDICATOR, KIND_ITEM, KIND_PARAGRAPH, Document
from policyqa.text import canon

DATA = Path(__file__).parent / "data"
KB = Path(__file__).resolve().parent.parent / "kb"


def no_ws(s: str) -> str:
    return re.sub(r"\s", "", s)


@pytest.fixture(scope="module")
def toy() -> Document:
    return load_document(DATA / "toy-plan.txt")


@pytest.fixture(scope="module")
def plan() -> Document:
    return load_document(KB / "plans" / "gx-eco-14th.txt")


# ----------------------------------------------------------------------------- toy plan


def test_toy_tree(toy: Document) -> None:
    assert toy.id == "toy-plan"
    assert toy.title == "示例市环境保护规划"
    assert [(c.no, c.title) for c in toy.chapters] == [(1, "总体要求"), (2, "重点任务")]
    assert [(s.no, s.title) for s in toy.chapters[0].sections] == [(1, "主要目标")]
    assert [(s.no, s.title) for s in toy.chapters[1].sections] == [(1, "治理大气污染")]
    assert [(c.no, c.title, c.chapter_no, c.section_no) for c in toy.columns] == [
        (1, "主要指标", 1, 1),
        (2, "重点工程", 2, 1),
    ]
    assert [(i.title, i.text) for i in toy.columns[1].items] == [
        ("超低排放改造", "在东区、西区开展钢铁企业超低排放改造。"),
        ("扬尘治理", "实施工地扬尘整治。"),
    ]
    ids = [u.id for u in toy.units]
    assert ids == [
        "toy-plan:header",
        "toy-plan:title",
        "toy-plan:front.p01",
        "toy-plan:ch01",
        "toy-plan:ch01.p01",
        "toy-plan:ch01.s01",
        "toy-plan:ch01.s01.p01",
        "toy-plan:col1",
        "toy-plan:col1.thead",
        "toy-plan:ind01",
        "toy-plan:ind02",
        "toy-plan:ind03",
        "toy-plan:col1.note1",
        "toy-plan:col1.note2",
        "toy-plan:ch02",
        "toy-plan:ch02.s01",
        "toy-plan:ch02.s01.h01",
        "toy-plan:ch02.s01.p01",
        "toy-plan:col2",
        "toy-plan:col2.i1",
        "toy-plan:col2.i2",
    ]


def test_toy_header_and_repairs(toy: Document) -> None:
    header = toy.unit("toy-plan:header")
    assert header.text.startswith("示例市人民政府关于印发示例市环境保护规划的通知")
    assert "2022年1月5日" in header.text
    p = toy.unit("toy-plan:ch01.s01.p01")
    # page break 「保持稳」+「定达标。」 joined; PM_{2.5} normalised; spaces next to CJK removed
    assert (
        p.text
        == "改善空气质量。到2025年，全市空气质量优良天数比率达到95%，PM2.5浓度持续下降，河流水质保持稳定达标。"
    )
    assert p.lead == "改善空气质量。"
    assert len(p.spans) == 2
    assert p.label == "第一章 总体要求 › 第一节 主要目标"
    sub = toy.unit("toy-plan:ch02.s01.p01")
    assert sub.subheading == "一、工业源"


def test_toy_indicators(toy: Document) -> None:
    got = [i.to_dict() for i in toy.indicators]
    assert got == [
        {
            "no": 1,
            "category": "环境治理",
            "name": "空气质量优良天数比率",
            "unit": "%",
            "baseline": {"year": 2020, "value": "93.1"},
            "target": {"year": 2025, "value": "95"},
            "attribute": "约束性",
            "notes": [{"marker": "①", "text": "受天气影响。"}],
        },
        {
            "no": 2,
            "category": "环境治理",
            "name": "水质达标率",
            "unit": "%",
            "baseline": {"year": 2020, "value": "以国家下达指标为准"},
            "target": {"year": 2025, "value": "100"},
            "attribute": "预期性",
            "notes": [],
        },
        {
            "no": 3,
            "category": "生态保护",
            "name": "森林覆盖率",
            "unit": "%",
            "baseline": {"year": 2020, "value": "40.2"},
            "target": {"year": 2025, "value": "41"},
            "attribute": "约束性",
            "notes": [{"marker": "②", "text": "含城市绿地。"}],
        },
    ]
    u = toy.unit("toy-plan:ind03")
    assert u.location.indicator_no == 3 and u.location.column_no == 1
    assert u.label == "专栏1 主要指标 › 3. 森林覆盖率（%）"


def test_toy_no_text_lost(toy: Document) -> None:
    src = (DATA / "toy-plan.txt").read_text(encoding="utf-8")
    assert_tiles(toy, src)


# ----------------------------------------------------------------------------- real plan


def assert_tiles(doc: Document, src: str) -> None:
    """Units tile the source: their spans cover every non-blank character exactly once, and the
    repaired texts equal the source in the canonical (repaired, whitespace-free) form."""
    spans = sorted(s for u in doc.units for s in u.spans)
    for (_, e1), (s2, _) in zip(spans, spans[1:], strict=False):
        assert e1 <= s2, "overlapping spans"
    covered = "".join(src[a:b] for a, b in spans)
    assert no_ws(covered) == no_ws(src)
    assert canon("".join(u.text for u in doc.units)) == canon(src)
    for u in doc.units:
        assert canon(u.text) == canon("".join(src[a:b] for a, b in u.spans)), u.id


def test_plan_counts(plan: Document) -> None:
    assert plan.title == "广西生态环境保护“十四五”规划"
    assert len(plan.chapters) == 13
    assert sum(len(c.sections) for c in plan.chapters) == 49
    assert [c.no for c in plan.columns] == list(range(1, 10))
    assert len(plan.indicators) == 19
    assert plan.warnings == ()
    assert plan.meta["doc_number"] == "桂政办发〔2021〕145号"


def test_plan_no_text_lost(plan: Document) -> None:
    assert_tiles(plan, (KB / "plans" / "gx-eco-14th.txt").read_text(encoding="utf-8"))


def test_plan_indicator_17_and_6(plan: Document) -> None:
    i17 = next(i for i in plan.indicators if i.no == 17)
    assert (i17.name, i17.unit, i17.category) == ("森林覆盖率", "%", "生态保护")
    assert (i17.baseline.value, i17.target.value, i17.attribute) == ("62.5", "62.6", "约束性")
    i6 = next(i for i in plan.indicators if i.no == 6)
    assert i6.baseline.value is None and i6.target.value is None  # never invented
    assert [(r.scope, r.baseline.value, r.target.value, r.notes) for r in i6.rows] == [
        ("设区城市", "97.3", "以国家下达指标为准", ()),
        ("县级", "90.6", "90", ("②",)),
    ]
    assert [n.marker for n in i6.notes] == ["②"]
    i7 = next(i for i in plan.indicators if i.no == 7)
    assert i7.baseline.value == "95.2" and {n.marker for n in i7.notes} == {"①", "③"}
    assert "面积法" in next(n.text for n in i7.notes if n.marker == "③")
    cats = {i.category for i in plan.indicators}
    assert cats == {"环境治理", "应对气候变化", "环境风险防控", "生态保护"}
    assert {i.attribute for i in plan.indicators if i.no != 6} == {"约束性", "预期性"}


def test_plan_page_breaks_joined(plan: Document) -> None:
    texts = [u.text for u in plan.units if u.kind in (KIND_PARAGRAPH, KIND_ITEM)]
    assert any("深海排污能力不足" in t for t in texts)
    assert any("白头叶猴" in t for t in texts)
    assert any("因地制宜选择合适的农村污水处理方式" in t for t in texts)
    assert any("潜在污染物识别" in t for t in texts)
    # a paragraph that opens with its own lead phrase is not glued to the one before
    assert not any("二是继生态环境基础设施" in t for t in texts)
    # nothing left with PDF spaces inside CJK runs, or tags
    for t in texts:
        assert not re.search(r"[\u4e00-\u9fff] [\u4e00-\u9fff]", t)
        assert "<p>" not in t


def test_plan_ids_and_labels(plan: Document) -> None:
    ids = [u.id for u in plan.units]
    assert len(ids) == len(set(ids))
    u = plan.unit("gx-eco-14th:ind17")
    assert u.kind == KIND_INDICATOR
    assert u.label == "专栏1 “十四五”时期广西生态环境保护主要指标 › 17. 森林覆盖率（%）"
    item = next(x for x in plan.units if x.kind == KIND_ITEM and x.title == "船舶与港口大气污染综合防治")
    assert item.id == "gx-eco-14th:col2.i3"
    assert item.label == "专栏2 大气环境综合治理工程 › 船舶与港口大气污染综合防治"
    assert (item.location.chapter_no, item.location.section_no, item.location.column_no) == (5, 5, 2)
    p = plan.unit("gx-eco-14th:ch05.s03.p02")
    assert p.label == "第五章 坚持协同管控，改善环境空气质量 › 第三节 全面推进移动源污染防治"
    assert p.lead == "强化车船油路港联合防控。"
    water = next(x for x in plan.units if x.text.startswith("推进饮用水水源地规范化建设。"))
    assert water.lead == "推进饮用水水源地规范化建设。"


def test_outline_json_shape(plan: Document) -> None:
    o = json.loads(json.dumps(plan.outline(), ensure_ascii=False))
    assert {"id", "title", "chapters", "columns", "indicators"} <= set(o)
    assert o["chapters"][4]["sections"][2] == {"no": 3, "title": "全面推进移动源污染防治", "units": 3}
    col8 = o["columns"][7]
    assert (col8["no"], col8["chapter_no"], col8["section_no"]) == (8, 11, 5)
    assert col8["items"][0]["title"] == "环境风险防控及应急预警能力建设"
    ind6 = o["indicators"][5]
    assert "rows" in ind6 and "rows" not in o["indicators"][16]


# ----------------------------------------------------------------------------- generality, errors


def test_chinese_numerals_and_column_without_space() -> None:
    src = "第二十九章 远景\n\n第十一节 其他\n\n做好工作。\n\n专栏12 工程\n\n项目一：建设。\n"
    d = parse_document(src, "x")
    assert [(c.no, c.title) for c in d.chapters] == [(29, "远景")]
    assert d.chapters[0].sections[0].no == 11
    assert d.columns[0].no == 12 and d.columns[0].items[0].title == "项目一"


def test_document_without_chapters_warns() -> None:
    d = parse_document("第一段文字。\n\n第二段文字。\n", "flat")
    assert [u.kind for u in d.units] == [KIND_PARAGRAPH, KIND_PARAGRAPH]
    assert d.warnings and "章" in d.warnings[0]


def test_gbk_is_detected(tmp_path: Path) -> None:
    src = (DATA / "toy-plan.txt").read_text(encoding="utf-8")
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "gbk-plan.txt").write_bytes(src.encode("gb18030"))
    (plans / "md-plan.md").write_text("# 第一章 总则\n\n**加强保护。** 做好工作。\n", encoding="utf-8")
    docs = load_kb(tmp_path)
    assert [d.id for d in docs] == ["gbk-plan", "md-plan"]
    assert len(docs[0].indicators) == 3
    assert docs[1].chapters[0].title == "总则"


@pytest.mark.parametrize(
    ("data", "needle"),
    [(b"", "空文件"), (b"\x00\x01\x02binary", "二进制"), (b"\xff\xfe\xfa\xfb\xfc" * 10, "编码")],
)
def test_unreadable_files_named(data: bytes, needle: str) -> None:
    with pytest.raises(DocumentError, match=needle):
        decode(data, "bad.txt")
