"""Tests for eval/metrics.py on hand-made cases, and checks of the gold set eval/questions.jsonl.

The hand-made cases spell out their expected values; the gold-set tests re-derive the plan's
structure from the parser and the key facts from the plan text, so they fail when either drifts.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from eval.metrics import (
    aggregate,
    citation_scores,
    first_citation_at_gold,
    hit_at_k,
    is_refusal,
    key_fact_hit,
    location_accuracy,
    location_matches,
    percentile,
    quote_valid,
    reciprocal_rank,
    score_question,
    split_statements,
    statement_markers,
    supports,
)
from policyqa.text import canon

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "kb" / "plans" / "gx-eco-14th.txt"
QUESTIONS = ROOT / "eval" / "questions.jsonl"


def loc(chapter=None, section=None, column=None, indicator=None, doc="gx-eco-14th"):
    """A location dict in the answer-contract shape (titles are irrelevant to matching)."""
    return {
        "doc": doc,
        "chapter_no": chapter,
        "chapter": None,
        "section_no": section,
        "section": None,
        "column_no": column,
        "column": None,
        "indicator_no": indicator,
        "indicator": None,
    }


# Locations as the parser assigns them.
IND17 = loc(2, 3, 1, 17)  # indicator row 17 sits in 专栏1, which is in 第二章第三节
COL2_ITEM = loc(5, 5, 2)  # a 专栏2 item, placed in 第五章第五节
CH1S1_PARA = loc(1, 1)
CH5_INTRO = loc(5, None)  # chapter intro paragraph: no section

FOREST_ROW = "生态保护 17.森林覆盖率(%) 62.5 62.6 约束性"
AIR_PROSE = "城市环境空气质量改善明显，2020年优良天数比率达到97.7%，细颗粒物年平均浓度为26微克/立方米，达到有监测数据以来最好水平。"
PM_ROW = "2.设区城市细颗粒物(PM2.5)年平均浓度(μg/m³) 26① 以国家下达指标为准 约束性"


# --------------------------------------------------------------------------- locations


@pytest.mark.parametrize(
    "location, gold, expected",
    [
        (IND17, {"indicator": 17}, True),
        (IND17, {"indicator": 16}, False),
        (IND17, {"column": 1}, True),
        (IND17, {"column": 2}, False),
        (IND17, {"chapter": 2, "section": 3}, True),
        (IND17, {"chapter": 2}, True),
        (IND17, {"chapter": 2, "section": 2}, False),
        (COL2_ITEM, {"column": 2}, True),
        (COL2_ITEM, {"chapter": 5, "section": 5}, True),
        (COL2_ITEM, {"chapter": 5, "section": 4}, False),
        (COL2_ITEM, {"indicator": 2}, False),
        (CH1S1_PARA, {"chapter": 1}, True),
        (CH1S1_PARA, {"chapter": 1, "section": 1}, True),
        (CH1S1_PARA, {"chapter": 1, "section": 2}, False),
        (CH1S1_PARA, {"column": 1}, False),
        (CH1S1_PARA, {"indicator": 1}, False),
        (CH5_INTRO, {"chapter": 5}, True),
        (CH5_INTRO, {"chapter": 5, "section": 1}, False),
        (CH1S1_PARA, {"doc": "gx-eco-14th", "chapter": 1}, True),
        (CH1S1_PARA, {"doc": "other-plan", "chapter": 1}, False),
        # malformed gold entries never match
        (CH1S1_PARA, {}, False),
        (CH1S1_PARA, {"section": 1}, False),
        (CH1S1_PARA, {"chapter": 1, "page": 3}, False),
    ],
)
def test_location_matches(location, gold, expected):
    assert location_matches(location, gold) is expected


def test_location_matches_accepts_dataclass():
    from policyqa.models import Location

    assert location_matches(Location(doc="d", chapter_no=7, section_no=2), {"chapter": 7, "section": 2})
    assert not location_matches(Location(doc="d", chapter_no=7), {"chapter": 7, "section": 2})


def test_hit_at_k_and_reciprocal_rank():
    ranked = [CH1S1_PARA, IND17, COL2_ITEM]
    gold = [{"indicator": 17}]
    assert not hit_at_k(ranked, gold, 1)
    assert hit_at_k(ranked, gold, 2)
    assert hit_at_k(ranked, gold, 5)
    assert not hit_at_k(ranked, gold, 0)
    assert reciprocal_rank(ranked, gold) == pytest.approx(0.5)
    # any gold entry counts; the best-ranked match decides
    assert reciprocal_rank(ranked, [{"column": 2}, {"chapter": 1, "section": 1}]) == pytest.approx(1.0)
    assert reciprocal_rank(ranked, [{"chapter": 13}]) == 0.0
    assert reciprocal_rank([], gold) == 0.0


# --------------------------------------------------------------------------- answers


def test_key_fact_hit_groups_and_alternatives():
    text = "森林覆盖率2025年目标为62.6％（约束性）。"
    assert key_fact_hit(text, [["62.6"], ["约束性"]])
    assert key_fact_hit(text, [["62.5", "62.6"]])  # one alternative is enough
    assert not key_fact_hit(text, [["62.6"], ["预期性"]])  # every group must hold
    assert not key_fact_hit(text, [["62.5"]])
    assert not key_fact_hit(text, [[]])
    assert key_fact_hit(text, [])


def test_key_fact_hit_normalises_width_space_and_script():
    assert key_fact_hit("西江(梧州段)要综合治理", [["西江（梧州段）"]])
    assert key_fact_hit("秸秆综合利用率保持在86％左右", [["86%"]])
    assert key_fact_hit("目标以国家下达 指标为准", [["以国家下达指标为准"]])
    assert key_fact_hit("PM_{2.5}浓度", [["PM2.5"]])
    assert key_fact_hit("在柳州、桂林、南寧等市開展試點", [["南宁"], ["柳州"]])
    assert not key_fact_hit("在柳州、桂林开展试点", [["南宁"]])


def test_is_refusal_uses_answerable_flag():
    assert is_refusal({"answerable": False, "answer": "规划中没有这方面的内容。"})
    assert not is_refusal({"answerable": True, "answer": "抱歉，规划中没有"})
    assert not is_refusal({"answer": "x"})


# --------------------------------------------------------------------------- statements


def test_split_statements_drops_headings_and_sources():
    md = (
        "## 回答\n"
        "森林覆盖率2025年目标为62.6%[1]。该指标为约束性指标[1]。\n"
        "\n"
        "**出处**\n"
        "1. [1] 专栏1 › 17. 森林覆盖率：「62.5 62.6 约束性」\n"
    )
    assert split_statements(md) == ["森林覆盖率2025年目标为62.6%[1]。", "该指标为约束性指标[1]。"]


def test_split_statements_list_items_and_trailing_markers():
    md = "无废城市试点城市有：\n- 柳州[1]\n- 桂林[1][2]\n1. 南宁[3]\n"
    assert split_statements(md) == ["无废城市试点城市有：", "柳州[1]", "桂林[1][2]", "南宁[3]"]
    # markers placed after the full stop belong to the sentence before
    assert split_statements("优良天数比率为97.7%。[1]PM2.5浓度为26。[2]") == [
        "优良天数比率为97.7%。[1]",
        "PM2.5浓度为26。[2]",
    ]
    assert split_statements("甲；乙！丙？") == ["甲；", "乙！", "丙？"]
    assert split_statements("") == []
    assert split_statements("[1] 第一章 › 第一节：「……」\n---\n") == []


@pytest.mark.parametrize(
    "statement, expected",
    [
        ("森林覆盖率62.6%[1]。", [1]),
        ("两处都写了[1][2]", [1, 2]),
        ("两处都写了[1,2]", [1, 2]),
        ("两处都写了[3，1]", [3, 1]),
        ("重复[2][2]", [2]),
        ("范围[1-3]", [1, 2, 3]),
        ("没有标注", []),
        ("年份2025年不是标注", []),
    ],
)
def test_statement_markers(statement, expected):
    assert statement_markers(statement) == expected


# --------------------------------------------------------------------------- support


def test_supports_numbers_must_occur_in_quote():
    assert supports("森林覆盖率2025年目标为62.6%[1]", FOREST_ROW)
    assert supports("根据规划，森林覆盖率2025年目标为62.6%，属于约束性指标", FOREST_ROW)
    assert not supports("森林覆盖率2025年目标为63%", FOREST_ROW)
    assert not supports("森林覆盖率2025年目标为62.6%", "森林覆盖率达到162.65%")  # digit boundaries
    assert supports("2020年优良天数比率达到97.7%", AIR_PROSE)
    assert not supports("2021年优良天数比率达到97.7%", AIR_PROSE)  # the quote states a year: checked
    assert supports("2020年PM2.5年平均浓度为26微克/立方米", AIR_PROSE)  # 2.5 in PM2.5 is a name


def test_supports_needs_overlapping_wording():
    # all numbers present, but the claim is about something else
    assert not supports("全区建成26个生态环境教育馆", AIR_PROSE)
    # wording present but no number to check: decided by the bigram share
    assert supports("城市环境空气质量改善明显", AIR_PROSE)
    assert not supports("农村生活垃圾分类全面推行", AIR_PROSE)
    assert not supports("[1]。", AIR_PROSE)  # nothing to verify
    assert supports("覆盖率", "覆盖率") and not supports("覆盖率", "覆盖")


def test_supports_threshold_is_a_parameter():
    statement = "城市空气质量改善明显而且农村环境整治全面完成"
    assert not supports(statement, AIR_PROSE)
    assert supports(statement, AIR_PROSE, threshold=0.2)


# --------------------------------------------------------------------------- citation scores


def cite(n, quote, location):
    return {"n": n, "id": f"u{n}", "label": "", "location": location, "quote": quote}


def test_citation_scores_two_statements_two_citations():
    # statement 1 is backed by [1]; statement 2 cites [2], which lacks 97.7 → unsupported.
    answer = {
        "answer": "森林覆盖率2025年目标为62.6%[1]。2020年优良天数比率达到97.7%[2]。",
        "answerable": True,
        "citations": [cite(1, FOREST_ROW, IND17), cite(2, PM_ROW, loc(2, 3, 1, 2))],
    }
    s = citation_scores(answer)
    assert (s["statements"], s["supported"], s["citations_used"], s["citations_supporting"]) == (2, 1, 2, 1)
    assert s["recall"] == pytest.approx(0.5) and s["precision"] == pytest.approx(0.5)
    assert s["refusal"] is False and s["uncited"] == 0 and s["dangling"] == 0


def test_citation_scores_overcitation_and_joint_support():
    over = {
        "answer": "森林覆盖率2025年目标为62.6%[1][2]。",
        "answerable": True,
        "citations": [cite(1, FOREST_ROW, IND17), cite(2, PM_ROW, loc(2, 3, 1, 2))],
    }
    s = citation_scores(over)
    assert (s["supported"], s["citations_used"], s["citations_supporting"]) == (1, 2, 1)

    # neither quote alone has both numbers; together they do → both citations are needed
    joint = {
        "answer": "优良天数比率达到97.7%，森林覆盖率达到62.5%[1,2]。",
        "answerable": True,
        "citations": [
            cite(1, "2020年优良天数比率达到97.7%", CH1S1_PARA),
            cite(2, "森林覆盖率达到62.5%，稳居全国第3位。", CH1S1_PARA),
        ],
    }
    s = citation_scores(joint)
    assert (s["statements"], s["supported"], s["citations_used"], s["citations_supporting"]) == (1, 1, 2, 2)


def test_citation_scores_uncited_and_dangling():
    answer = {
        "answer": "森林覆盖率2025年目标为62.6%。森林覆盖率2025年目标为62.6%[3]。",
        "answerable": True,
        "citations": [cite(1, FOREST_ROW, IND17)],
    }
    s = citation_scores(answer)
    assert (s["statements"], s["supported"], s["uncited"], s["dangling"]) == (2, 0, 1, 1)
    assert s["citations_used"] == 1 and s["citations_supporting"] == 0
    assert s["recall"] == 0.0 and s["precision"] == 0.0


def test_citation_scores_refusal_is_excluded():
    refusal = {"answer": "抱歉，规划中没有2030年的森林覆盖率目标。", "answerable": False, "citations": []}
    s = citation_scores(refusal)
    assert s["refusal"] is True and s["statements"] == 0
    assert s["recall"] is None and s["precision"] is None


def test_location_accuracy_and_first_citation():
    answer = {
        "answer": "2020年为62.5%[2]，2025年目标为62.6%[1]。",
        "answerable": True,
        "citations": [cite(1, FOREST_ROW, IND17), cite(2, "森林覆盖率达到62.5%", CH1S1_PARA)],
    }
    assert location_accuracy(answer, [{"indicator": 17}])
    assert location_accuracy(answer, [{"chapter": 9}, {"chapter": 1, "section": 1}])
    assert not location_accuracy(answer, [{"chapter": 9}])
    # the first marker in the text is [2] (第一章第一节), not citation n=1
    assert first_citation_at_gold(answer, [{"chapter": 1}])
    assert not first_citation_at_gold(answer, [{"indicator": 17}])
    no_markers = dict(answer, answer="森林覆盖率目标为62.6%。")
    assert first_citation_at_gold(no_markers, [{"indicator": 17}])
    assert not location_accuracy({"answer": "x", "answerable": True, "citations": []}, [{"chapter": 1}])


def test_quote_valid_against_plan():
    source = canon(PLAN.read_text(encoding="utf-8"))
    assert quote_valid("以国家下达 指标为准", source)
    assert quote_valid("累计淘汰燃煤小锅炉563台", source)
    assert not quote_valid("累计淘汰燃煤小锅炉653台", source)
    assert not quote_valid("", source)


# --------------------------------------------------------------------------- aggregation


def test_percentile():
    assert percentile([4, 1, 3, 2], 50) == pytest.approx(2.5)
    assert percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert percentile([7], 95) == 7
    assert percentile([1, None, 3], 100) == 3
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_score_question_and_aggregate():
    q_ind = {
        "id": "t1",
        "split": "dev",
        "type": "indicator",
        "answerable": True,
        "gold": [{"indicator": 17}],
        "key_facts": [["62.6"]],
    }
    q_nav = {
        "id": "t2",
        "split": "test",
        "type": "navigation",
        "answerable": True,
        "gold": [{"chapter": 7}],
        "key_facts": [["海洋生态环境"]],
    }
    q_oos = {
        "id": "t3",
        "split": "test",
        "type": "out_of_scope",
        "answerable": False,
        "gold": [],
        "key_facts": [],
    }
    good = {
        "answer": "森林覆盖率2025年目标为62.6%[1]。",
        "answerable": True,
        "citations": [cite(1, "17.森林覆盖率(%) 62.5 62.6 约束性", IND17)],
    }
    wrong_refusal = {"answer": "规划中没有相关内容。", "answerable": False, "citations": []}
    right_refusal = {"answer": "规划中没有相关内容。", "answerable": False, "citations": []}
    source = canon(PLAN.read_text(encoding="utf-8"))
    rows = [
        score_question(q_ind, good, [IND17, CH1S1_PARA], 100.0, source),
        score_question(q_nav, wrong_refusal, [CH1S1_PARA, loc(7, 2)], 300.0, source),
        score_question(q_oos, right_refusal, [CH1S1_PARA], 200.0, source),
    ]
    assert rows[0]["hit1"] and rows[0]["key_fact"] and rows[0]["location_ok"] and rows[0]["quotes_valid"] == 1
    assert rows[1]["hit1"] is False and rows[1]["rr"] == pytest.approx(0.5) and rows[1]["key_fact"] is False
    assert "hit1" not in rows[2] and rows[2]["refusal_correct"] is True

    table = aggregate(rows)
    o = table["overall"]
    assert (o["n"], o["n_answerable"], o["n_out_of_scope"]) == (3, 2, 1)
    assert o["hit@1"] == pytest.approx(0.5)
    assert o["hit@5"] == pytest.approx(1.0)
    assert o["mrr"] == pytest.approx(0.75)
    assert o["key_fact_accuracy"] == pytest.approx(0.5)
    assert o["refusal_accuracy"] == pytest.approx(1.0)
    assert o["false_refusal_rate"] == pytest.approx(0.5)
    # both refusals are left out of citation recall/precision: only the one real answer counts
    assert o["citation_recall"] == pytest.approx(1.0) and o["citation_precision"] == pytest.approx(1.0)
    assert o["location_accuracy"] == pytest.approx(0.5)
    assert o["quote_validity"] == pytest.approx(1.0)
    assert o["latency_p50_ms"] == pytest.approx(200.0)
    assert o["latency_p95_ms"] == pytest.approx(290.0)
    assert set(table["by_type"]) == {"indicator", "navigation", "out_of_scope"}
    assert table["by_type"]["out_of_scope"]["hit@1"] is None
    assert table["by_type"]["navigation"]["false_refusal_rate"] == pytest.approx(1.0)
    assert table["by_split"]["dev"]["n"] == 1


# --------------------------------------------------------------------------- the gold set

TYPES = {
    "indicator",
    "narrative",
    "column",
    "navigation",
    "list",
    "colloquial",
    "followup",
    "traditional",
    "english",
    "out_of_scope",
}


@pytest.fixture(scope="module")
def questions():
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def outline():
    from ingest.load import load_document

    return load_document(PLAN).outline()


def test_gold_schema(questions):
    assert len(questions) >= 150
    ids = [q["id"] for q in questions]
    assert ids == [f"q{i:03d}" for i in range(1, len(questions) + 1)]
    assert len({q["question"] for q in questions}) == len(questions), "duplicate questions"
    for q in questions:
        assert set(q) == {"id", "split", "type", "question", "history", "gold", "key_facts", "answerable"}, q[
            "id"
        ]
        assert q["split"] in {"dev", "test"}, q["id"]
        assert q["type"] in TYPES, q["id"]
        assert isinstance(q["question"], str) and q["question"].strip(), q["id"]
        assert q["answerable"] is (q["type"] != "out_of_scope"), q["id"]
        if q["answerable"]:
            assert q["gold"] and q["key_facts"], q["id"]
            assert all(
                isinstance(g, list) and g and all(isinstance(s, str) and s for s in g) for g in q["key_facts"]
            )
        else:
            assert q["gold"] == [] and q["key_facts"] == [], q["id"]
        if q["type"] == "followup":
            assert q["history"] and q["history"][-1]["role"] == "assistant", q["id"]
            assert all(h["role"] in {"user", "assistant"} and h["content"].strip() for h in q["history"])
        else:
            assert q["history"] == [], q["id"]


def test_gold_locations_exist(questions, outline):
    sections = {(c["no"], s["no"]) for c in outline["chapters"] for s in c["sections"]}
    chapters = {c["no"] for c in outline["chapters"]}
    columns = {c["no"] for c in outline["columns"]}
    indicators = {i["no"] for i in outline["indicators"]}
    for q in questions:
        for g in q["gold"]:
            assert all(type(v) is int for v in g.values()), q["id"]
            if "indicator" in g:
                assert set(g) == {"indicator"} and g["indicator"] in indicators, q["id"]
            elif "column" in g:
                assert set(g) == {"column"} and g["column"] in columns, q["id"]
            elif "section" in g:
                assert set(g) == {"chapter", "section"} and (g["chapter"], g["section"]) in sections, q["id"]
            else:
                assert set(g) == {"chapter"} and g["chapter"] in chapters, q["id"]


def test_gold_counts_and_coverage(questions, outline):
    types = Counter(q["type"] for q in questions)
    assert types["out_of_scope"] >= 15
    assert set(types) == TYPES
    splits = Counter(q["split"] for q in questions)
    assert splits["dev"] > 0 and splits["test"] > 0
    assert 0.3 <= splits["dev"] / len(questions) <= 0.5
    for t in TYPES:  # stratified: each type appears in both splits
        assert {q["split"] for q in questions if q["type"] == t} == {"dev", "test"}, t

    column_place = {c["no"]: c["chapter_no"] for c in outline["columns"]}
    indicator_chapter = column_place[1]
    per_chapter, per_column, per_indicator = Counter(), Counter(), Counter()
    for q in questions:
        chs, cols, inds = set(), set(), set()
        for g in q["gold"]:
            if "indicator" in g:
                inds.add(g["indicator"])
                cols.add(1)
                chs.add(indicator_chapter)
            elif "column" in g:
                cols.add(g["column"])
                chs.add(column_place[g["column"]])
            else:
                chs.add(g["chapter"])
        per_chapter.update(chs)
        per_column.update(cols)
        per_indicator.update(inds)
    for c in outline["chapters"]:
        assert per_chapter[c["no"]] >= 3, f"第{c['no']}章 has {per_chapter[c['no']]} questions"
    for col in outline["columns"]:
        assert per_column[col["no"]] >= 2, f"专栏{col['no']}"
    for ind in outline["indicators"]:
        assert per_indicator[ind["no"]] >= 1, f"indicator {ind['no']}"


def test_gold_key_facts_occur_in_plan(questions):
    source = canon(PLAN.read_text(encoding="utf-8"))
    missing = [
        (q["id"], s) for q in questions for group in q["key_facts"] for s in group if canon(s) not in source
    ]
    assert not missing, missing


def test_gold_key_facts_found_at_a_gold_location(questions):
    """Each key-fact group of an answerable question is stated in some unit at one of its gold
    locations (unit text, or the chapter/section/column title for navigation questions)."""
    from ingest.load import load_document

    doc = load_document(PLAN)
    units = [
        (
            u.location.to_dict(),
            canon(u.text)
            + "|"
            + "|".join(canon(t or "") for t in (u.location.chapter, u.location.section, u.location.column)),
        )
        for u in doc.units
    ]
    problems = []
    for q in questions:
        if not q["answerable"]:
            continue
        texts = [t for location, t in units if any(location_matches(location, g) for g in q["gold"])]
        assert texts, q["id"]
        for group in q["key_facts"]:
            if not any(canon(s) in t for s in group for t in texts):
                problems.append((q["id"], group))
    assert not problems, problems
