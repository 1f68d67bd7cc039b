"""The citation checker (policyqa/check.py, `policyqa check`, POST /v1/check).

Faults are planted one at a time in otherwise good answers — real ones from ``ask`` on the
hash-embedder index of the real plan, and hand-written foreign ones that carry only ``quote`` —
and each must come back as exactly one problem of the right kind at the right citation or
sentence. Clean answers pass. The CLI's exit codes are checked through ``main(argv)``. The
questions here are written for these tests, not taken from the evaluation sets.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from policyqa.check import (
    KINDS,
    CheckInputError,
    Library,
    check_answer,
    library_from_index,
    load_library,
    parse_answers,
    split_statements,
    statement_markers,
    summarize,
    validate_answer,
)
from policyqa.cli import batch_line, main
from policyqa.errors import InputError
from policyqa.text import canon

ROOT = Path(__file__).resolve().parents[1]
KB = ROOT / "kb"

OUR_QUESTIONS = [
    "森林覆盖率到2025年要达到多少？",
    "专栏3包含哪些工程？",
    "第七章主要讲什么内容？",
    "怎样推进碳达峰行动？",
    "上海市的垃圾分类政策是什么？",  # a refusal
]


@pytest.fixture(scope="module")
def library() -> Library:
    return load_library(KB)


@pytest.fixture(scope="module")
def index() -> Any:
    from tests.indexes import shared_index

    return shared_index("hash")


@pytest.fixture(scope="module")
def ours(index: Any) -> dict[str, dict[str, Any]]:
    from policyqa.answer import ask

    return {q: ask(index, q).to_dict() for q in OUR_QUESTIONS}


def kinds(result: Any) -> list[str]:
    return [p.kind for p in result.problems]


def only(result: Any, kind: str) -> Any:
    """The single problem of ``result``, which must be of ``kind``."""
    assert kinds(result) == [kind], [p.to_dict() for p in result.problems]
    return result.problems[0]


# ----------------------------------------------------------------------------- our answers


def test_our_answers_pass(ours: dict[str, dict[str, Any]], library: Library) -> None:
    for q, a in ours.items():
        r = check_answer(a, library)
        assert r.ok, (q, [p.to_dict() for p in r.problems])
        assert r.to_dict() == {"question": q, "ok": True, "problems": []}


def test_a_refusal_with_nearest_sections_passes_and_its_sentences_need_no_citation(
    ours: dict[str, dict[str, Any]], library: Library
) -> None:
    a = ours["上海市的垃圾分类政策是什么？"]
    assert a["answerable"] is False
    assert check_answer(a, library).ok
    # the same words claimed as an answer would need citations: decided by the fields, not the wording
    claimed = {**a, "answerable": True, "outcome": "answered"}
    assert "uncited_sentence" in kinds(check_answer(claimed, library))


# The plantings below do not assume what the answer layer writes today: they pick a suitable
# answer of ours (cited, with a number, with a one-marker line...) and change one thing in it.
_NUM_IN_TEXT = re.compile(r"(?<![A-Za-z\d.\[])\d+(?:\.\d+)?(?![\d\]])")
_ONE_MARKER_LINE = re.compile(r"^(?:[-*] )?[^#\[\]]*\[(\d+)\][。；]?$")


def answered(ours: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = [copy.deepcopy(a) for a in ours.values() if a["answerable"] and a["citations"]]
    assert out, "no answered question among OUR_QUESTIONS"
    return out


def with_number(ours: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], int, int]:
    """An answer of ours and the span of a number in one of its cited (non-heading) lines."""
    for a in answered(ours):
        pos = 0
        for line in a["answer"].splitlines(keepends=True):
            m = _NUM_IN_TEXT.search(line)
            if m and not line.startswith("#") and "[" in line:
                return a, pos + m.start(), pos + m.end()
            pos += len(line)
    raise AssertionError("no answer of ours states a number")


def with_one_marker_line(ours: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], str, int]:
    """An answer of ours, one of its lines that is a single statement with a single [k], and k."""
    for a in answered(ours):
        for line in a["answer"].splitlines():
            m = _ONE_MARKER_LINE.match(line.strip())
            if m and len(split_statements(line)) == 1:
                return a, line, int(m.group(1))
    raise AssertionError("no one-marker line in our answers")


def plant_number(ours: dict[str, dict[str, Any]]) -> dict[str, Any]:
    a, start, end = with_number(ours)
    a["answer"] = a["answer"][:start] + "987.6" + a["answer"][end:]
    return a


def test_planted_unsupported_number(ours: dict[str, dict[str, Any]], library: Library) -> None:
    p = only(check_answer(plant_number(ours), library), "unsupported_number")
    assert "987.6" in p.sentence and "【987.6】" in p.marked and "987.6" in p.detail
    assert p.n == statement_markers(p.sentence)[0]  # the first citation of that sentence


def test_planted_quote_not_found(ours: dict[str, dict[str, Any]], library: Library) -> None:
    a = answered(ours)[0]
    original = a["citations"][-1]["quote"]
    a["citations"][-1]["quote"] = original + "并于年内全部完工。"
    p = only(check_answer(a, library), "quote_not_found")
    assert p.n == a["citations"][-1]["n"] and p.sentence is None
    assert p.marked.startswith(canon(original)[:10]) and "【" in p.marked
    assert "完工" in p.marked[p.marked.index("【") :]


def test_planted_wrong_location(ours: dict[str, dict[str, Any]], library: Library) -> None:
    a = answered(ours)[0]
    c = a["citations"][0]
    actual = c["location"]["chapter_no"]
    c["location"]["chapter_no"] = (actual or 0) % 13 + 1
    p = only(check_answer(a, library), "wrong_location")
    assert p.n == c["n"] and f"chapter_no={c['location']['chapter_no']}，实际为 {actual}" in p.detail

    b = answered(ours)[0]
    quote = canon(b["citations"][0]["quote"])
    other = next(u for u in library.units.values() if quote not in canon(u.text))
    b["citations"][0]["id"] = other.id
    p = only(check_answer(b, library), "wrong_location")
    assert p.n == b["citations"][0]["n"] and other.id in p.detail

    c2 = answered(ours)[0]
    c2["citations"][0]["id"] = "gx-eco-14th:no-such-unit"
    assert "不是知识库中的单元" in only(check_answer(c2, library), "wrong_location").detail


def test_planted_unsupported_sentence(ours: dict[str, dict[str, Any]], library: Library) -> None:
    a, line, k = with_one_marker_line(ours)
    a["answer"] = a["answer"].replace(line, f"- 建设太空旅游度假区并举办国际音乐节[{k}]。", 1)
    p = only(check_answer(a, library), "unsupported_sentence")
    assert p.n == k and p.sentence == f"建设太空旅游度假区并举办国际音乐节[{k}]。"
    assert p.marked == f"【{p.sentence}】"


def test_planted_uncited_sentence(ours: dict[str, dict[str, Any]], library: Library) -> None:
    a = answered(ours)[0]
    a["answer"] += "\n这一目标由各设区市自行分解落实。"
    p = only(check_answer(a, library), "uncited_sentence")
    assert p.sentence == "这一目标由各设区市自行分解落实。" and p.n is None


def test_planted_dangling_marker(ours: dict[str, dict[str, Any]], library: Library) -> None:
    a, line, k = with_one_marker_line(ours)
    a["answer"] = a["answer"].replace(line, line.replace(f"[{k}]", f"[{k}][99]"), 1)
    p = only(check_answer(a, library), "dangling_marker")
    assert p.n == 99 and "【[99]】" in p.marked and f"[{k}]" in p.sentence


def test_planted_unused_citation(ours: dict[str, dict[str, Any]], library: Library) -> None:
    a = answered(ours)[0]
    extra = {**a["citations"][0], "n": len(a["citations"]) + 1}
    a["citations"].append(extra)
    p = only(check_answer(a, library), "unused_citation")
    assert p.n == extra["n"]


def test_every_kind_is_planted_in_our_answers() -> None:
    planted = {name.removeprefix("test_planted_") for name in globals() if name.startswith("test_planted_")}
    assert planted - {"faults_in_foreign_answers"} == set(KINDS)


def test_the_index_and_kb_give_the_same_verdicts(
    ours: dict[str, dict[str, Any]], library: Library, index: Any
) -> None:
    from_index = library_from_index(index)
    for ans in [*ours.values(), plant_number(ours)]:
        assert check_answer(ans, from_index).to_dict() == check_answer(ans, library).to_dict()


# ----------------------------------------------------------------------------- foreign answers

FOREST_ROW = "17.森林覆盖率(%) 62.5 62.6 约束性"
FOREST_PROSE = "森林覆盖率达到62.5%，稳居全国第3位。"


def foreign(answer: str, *quotes: str, **extra: Any) -> dict[str, Any]:
    """An answer as another system might write it: citations with ``n`` and ``quote`` only."""
    return {
        "question": "广西森林覆盖率的目标？",
        "answer": answer,
        "citations": [{"n": i, "quote": q} for i, q in enumerate(quotes, 1)],
        **extra,
    }


GOOD_FOREIGN = foreign(
    "到2025年，森林覆盖率目标为62.6%，属约束性指标[1]。\n\n2020年森林覆盖率达到62.5%，稳居全国第3位[2]。",
    FOREST_ROW,
    FOREST_PROSE,
)


def test_foreign_answer_with_quotes_only_passes(library: Library) -> None:
    assert check_answer(GOOD_FOREIGN, library).ok
    # whitespace and line breaks inside a quote do not matter (canonical form)
    spaced = copy.deepcopy(GOOD_FOREIGN)
    spaced["citations"][1]["quote"] = "森林覆盖率达到 62.5%，\n稳居全国第3位。"
    assert check_answer(spaced, library).ok


@pytest.mark.parametrize(
    ("answer", "quotes", "kind", "n", "sentence"),
    [
        # a figure the plan does not state
        (
            "到2025年，森林覆盖率目标为63%[1]。",
            [FOREST_ROW],
            "unsupported_number",
            1,
            "到2025年，森林覆盖率目标为63%[1]。",
        ),
        # a quote rewritten by the answering system
        ("森林覆盖率达到62.5%[1]。", ["森林覆盖率提高到62.5%。"], "quote_not_found", 1, None),
        ("森林覆盖率目标为62.6%[1]。另有说明。", [FOREST_ROW], "uncited_sentence", None, "另有说明。"),
        (
            "森林覆盖率目标为62.6%[1][2]。",
            [FOREST_ROW],
            "dangling_marker",
            2,
            "森林覆盖率目标为62.6%[1][2]。",
        ),
        ("森林覆盖率目标为62.6%[1]。", [FOREST_ROW, FOREST_PROSE], "unused_citation", 2, None),
        ("全区大力发展低空经济[1]。", [FOREST_PROSE], "unsupported_sentence", 1, "全区大力发展低空经济[1]。"),
    ],
)
def test_planted_faults_in_foreign_answers(
    library: Library, answer: str, quotes: list[str], kind: str, n: int | None, sentence: str | None
) -> None:
    p = only(check_answer(foreign(answer, *quotes), library), kind)
    assert (p.n, p.sentence) == (n, sentence)


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("location", {"chapter_no": 2, "section_no": 3}, True),  # 专栏1 sits in 第二章第三节
        ("location", {"column_no": 1, "indicator_no": 17}, True),
        ("location", {"doc": "gx-eco-14th"}, True),
        ("location", {"chapter_no": 5}, False),
        ("location", {"indicator_no": 16}, False),
        ("location", {"doc": "another-plan"}, False),
        ("label", "专栏1 主要指标 › 17. 森林覆盖率", True),
        ("label", "第二章 主要目标", True),
        ("label", "第七章 海洋", False),
        ("id", "gx-eco-14th:ind17", True),
        ("id", "gx-eco-14th:ind16", False),
        ("id", "no-such-unit", False),
    ],
)
def test_location_label_and_id_are_checked_when_given(
    library: Library, field: str, value: Any, ok: bool
) -> None:
    a = foreign("森林覆盖率目标为62.6%[1]。", FOREST_ROW)
    a["citations"][0][field] = value
    r = check_answer(a, library)
    assert r.ok is ok, [p.to_dict() for p in r.problems]
    if not ok:
        assert only(r, "wrong_location").n == 1


@pytest.fixture(scope="module")
def two_doc_library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    """A library of two toy documents: a plan (chapters, 专栏, indicators) and a regulation (条)."""
    kb = tmp_path_factory.mktemp("kb2")
    (kb / "plans").mkdir()
    for name in ("toy-plan.txt", "toy-regulation.txt"):
        (kb / "plans" / name).write_text((ROOT / "tests" / "data" / name).read_text(encoding="utf-8"))
    return load_library(kb)


ARTICLE_5 = "第五条 生态环境主管部门应当组织开展生态环境监测。"


@pytest.mark.parametrize(
    ("citation", "ok"),
    [
        ({"location": {"doc": "toy-regulation", "article_no": 5, "chapter_no": 2, "section_no": 2}}, True),
        ({"location": {"article_no": 4}}, False),
        ({"location": {"doc": "toy-plan"}}, False),  # verbatim, but in the other document
        ({"label": "第二章 监督管理 › 第二节 监测 › 第五条"}, True),
        ({"label": "第三条"}, False),
        ({"label": "第二章第一节"}, False),  # 「第二章第一节」 is one section ref: 第五条 is in 第二节
        ({"id": "toy-regulation:art005"}, True),
        ({"id": "toy-regulation:art004"}, False),
    ],
)
def test_articles_and_documents_in_a_library(two_doc_library: Library, citation: dict, ok: bool) -> None:
    a = foreign("生态环境主管部门应当组织开展生态环境监测[1]。", ARTICLE_5)
    a["citations"][0].update(citation)
    r = check_answer(a, two_doc_library)
    assert r.ok is ok, [p.to_dict() for p in r.problems]


def test_a_quote_across_two_units_is_placed_by_both(two_doc_library: Library) -> None:
    quote = "第一条为了保护和改善生态环境，根据有关法律，结合本省实际，制定本条例。第二条本条例适用于本省行政区域内的生态环境保护活动。"
    a = foreign("本条例为了保护和改善生态环境而制定，适用于本省行政区域内的生态环境保护活动[1]。", quote)
    a["citations"][0]["location"] = {"chapter_no": 1}
    assert check_answer(a, two_doc_library).ok
    a["citations"][0]["location"] = {"article_no": 1}  # the second half is 第二条
    assert "不全在所标位置" in only(check_answer(a, two_doc_library), "wrong_location").detail


def test_partial_answers_may_leave_the_uncovered_part_uncited(library: Library) -> None:
    text = "文件没有写明2030年的目标。\n到2025年，森林覆盖率目标为62.6%[1]。"
    assert check_answer(foreign(text, FOREST_ROW, outcome="partial", answerable=True), library).ok
    bad = foreign(text.replace("62.6%", "70%"), FOREST_ROW, outcome="partial", answerable=True)
    assert kinds(check_answer(bad, library)) == ["unsupported_number"]
    assert kinds(check_answer(foreign(text, FOREST_ROW), library)) == ["uncited_sentence"]


def test_refusal_citations_are_still_checked(library: Library) -> None:
    text = "规划未涉及这一问题。\n\n相关度较高的部分：第二章 › 第三节 主要目标[1]；专栏1[2]"
    ok = foreign(text, "第三节主要目标", FOREST_ROW, answerable=False, outcome="not_covered")
    assert check_answer(ok, library).ok
    bad = foreign(text, "第三节主要目标", "这不是规划原文", answerable=False, outcome="not_covered")
    assert only(check_answer(bad, library), "quote_not_found").n == 2
    dangling = foreign(text + "[3]", "第三节主要目标", FOREST_ROW, answerable=False)
    assert only(check_answer(dangling, library), "dangling_marker").n == 3


def test_headings_and_source_lists_are_not_statements(library: Library) -> None:
    text = "#### 专栏1 主要指标 · 第17项\n森林覆盖率目标为62.6%[1]。\n\n出处：\n[1] 专栏1 「17.森林覆盖率(%) 62.5 62.6 约束性」"
    assert split_statements(text) == ["森林覆盖率目标为62.6%[1]。"]
    assert check_answer(foreign(text, FOREST_ROW), library).ok


def test_summary_counts_every_kind_and_alce_scores(library: Library) -> None:
    results = [
        check_answer(GOOD_FOREIGN, library),
        check_answer(foreign("森林覆盖率目标为63%[1]。另有说明。", FOREST_ROW), library),
    ]
    s = summarize(results)
    assert (s["answers"], s["passed"], s["failed"]) == (2, 1, 1)
    assert set(s["problems"]) == set(KINDS)
    assert s["problems"]["unsupported_number"] == 1 and s["problems"]["uncited_sentence"] == 1
    assert s["citation_recall"] == pytest.approx((1.0 + 0.0) / 2)
    assert s["citation_precision"] == pytest.approx((1.0 + 0.0) / 2)


def test_eval_report_states_the_split_and_the_checker_counts(tmp_path: Path, library: Library) -> None:
    from eval.metrics import aggregate
    from eval.run import write_report

    results = [check_answer(foreign("森林覆盖率目标为63%[1]。", FOREST_ROW), library)]
    meta = {
        "split": "test",
        "answerer": "extractive",
        "embedder": "hash",
        "judge": "规则",
        "build_id": "b1",
        "seconds": 1.0,
        "sha": "abc1234",
        "check": summarize(results),
    }
    md = write_report(aggregate([]), None, [], meta, tmp_path).read_text(encoding="utf-8")
    assert "这一划分是否用于调参：早期几轮调参用过 test 划分" in md
    assert "## 引用核对（`policyqa check`，1 条本系统回答；各项应为 0）" in md
    assert "| 数字无引文依据（unsupported_number） | 1 |" in md
    assert "| 引文不在知识库原文中（quote_not_found） | 0 |" in md


def test_eval_metrics_use_the_same_rule() -> None:
    import eval.metrics as metrics
    import policyqa.check as check

    for name in ("split_statements", "statement_markers", "supports", "numbers", "citation_scores"):
        assert getattr(metrics, name) is getattr(check, name)


# ----------------------------------------------------------------------------- input


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[1, 2]", "JSON 对象"),
        ('{"question": "q"}', "answer"),
        ('{"answer": "a", "citations": {}}', "citations 应为列表"),
        ('{"answer": "a", "citations": [{"n": "1", "quote": "x"}]}', "整数 n"),
        ('{"answer": "a", "citations": [{"n": 1}]}', "quote"),
        ('{"answer": "a", "citations": [{"n": 1, "quote": "x"}, {"n": 1, "quote": "y"}]}', "两次"),
        ('{"answer": "a", "citations": [{"n": 1, "quote": "x", "location": "第二章"}]}', "location"),
    ],
)
def test_validate_answer(line: str, message: str) -> None:
    assert message in (validate_answer(json.loads(line)) or "")


def test_parse_answers_names_the_line() -> None:
    good = json.dumps(GOOD_FOREIGN, ensure_ascii=False)
    assert parse_answers(f"{good}\n\n{good}\n") == [GOOD_FOREIGN, GOOD_FOREIGN]
    with pytest.raises(CheckInputError, match="第 3 行"):
        parse_answers(f"{good}\n\n{{not json\n")
    with pytest.raises(CheckInputError, match="第 2 行"):
        parse_answers(f'{good}\n{{"question": "q"}}\n')
    with pytest.raises(CheckInputError, match="没有回答"):
        parse_answers("\n  \n")


# ----------------------------------------------------------------------------- CLI


TOY_ANSWERS = [
    # about tests/data/toy-plan.txt, checked with --kb
    foreign("到2025年，全市空气质量优良天数比率达到95%[1]。", "全市空气质量优良天数比率达到95%"),
    foreign("森林覆盖率2025年目标为41%[1]。", "3. 森林覆盖率 (%)	40.2	41②	约束性"),
]


@pytest.fixture
def toy_kb(tmp_path: Path) -> Path:
    kb = tmp_path / "kb"
    (kb / "plans").mkdir(parents=True)
    (kb / "plans" / "toy.txt").write_text(
        (ROOT / "tests" / "data" / "toy-plan.txt").read_text(encoding="utf-8")
    )
    return kb


def write_jsonl(path: Path, answers: list[Any]) -> Path:
    path.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in answers), encoding="utf-8")
    return path


def test_cli_exit_0_when_all_pass(tmp_path: Path, toy_kb: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write_jsonl(tmp_path / "a.jsonl", TOY_ANSWERS)
    assert main(["check", str(f), "--json", "--kb", str(toy_kb)]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["ok"] for x in lines[:-1]] == [True, True]
    assert lines[-1]["summary"]["failed"] == 0 and lines[-1]["summary"]["problems"] == dict.fromkeys(KINDS, 0)


def test_cli_exit_1_when_any_fails(tmp_path: Path, toy_kb: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = foreign("森林覆盖率2025年目标为45%[1]。", "3. 森林覆盖率 (%)	40.2	41②	约束性")
    f = write_jsonl(tmp_path / "a.jsonl", [*TOY_ANSWERS, bad])
    assert main(["check", str(f), "--kb", str(toy_kb)]) == 1
    out = capsys.readouterr().out
    assert "第 3 条 ✗" in out and "【45】" in out and "数字无引文依据" in out
    assert "通过 2 条，未通过 1 条" in out

    assert main(["check", str(f), "--json", "--kb", str(toy_kb)]) == 1
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[2]["problems"][0]["kind"] == "unsupported_number"
    assert lines[-1]["summary"]["problems"]["unsupported_number"] == 1


def test_cli_exit_2_for_unreadable_input(
    tmp_path: Path, toy_kb: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "a.jsonl"
    f.write_text(json.dumps(TOY_ANSWERS[0], ensure_ascii=False) + "\n{oops\n", encoding="utf-8")
    assert main(["check", str(f), "--kb", str(toy_kb)]) == 2
    assert "第 2 行" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "missing.jsonl"), "--kb", str(toy_kb)]) == 2
    assert "无法读取" in capsys.readouterr().err
    f.write_bytes("答".encode("gbk"))
    assert main(["check", str(f), "--kb", str(toy_kb)]) == 2


def test_cli_reads_standard_input(
    toy_kb: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    bare = {"answer": "全市开展钢铁企业超低排放改造。", "citations": None}  # no question, no citations
    text = "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in [*TOY_ANSWERS, bare])
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert main(["check", "-", "--json", "--kb", str(toy_kb)]) == 1
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[2] == {
        "question": "",
        "ok": False,
        "problems": [
            {
                "sentence": "全市开展钢铁企业超低排放改造。",
                "kind": "uncited_sentence",
                "detail": "这句话没有标注出处",
                "marked": "【全市开展钢铁企业超低排放改造。】",
            }
        ],
    }


def test_batch_lines_plain_and_json() -> None:
    assert batch_line("  森林覆盖率？ ", 1) == ("森林覆盖率？", [])
    history = [{"role": "user", "content": "专栏3有什么？"}, {"role": "assistant", "content": "……"}]
    line = json.dumps({"question": "第一项呢？", "history": history}, ensure_ascii=False)
    assert batch_line(line, 2) == ("第一项呢？", history)
    assert batch_line('{"question": "只有问题"}', 3) == ("只有问题", [])
    with pytest.raises(InputError, match="第 4 行"):
        batch_line("{not json", 4)
    with pytest.raises(InputError, match="第 5 行.*question"):
        batch_line('{"history": []}', 5)
    with pytest.raises(InputError, match="第 6 行.*history"):
        batch_line('{"question": "q", "history": [{"role": "system", "content": "x"}]}', 6)


def test_ask_batch_then_check(
    tmp_path: Path, index: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Our answers, including a replayed follow-up, go through `ask --batch` and pass `check`."""
    monkeypatch.setenv("POLICYQA_HOME", str(index.settings.home))
    monkeypatch.setenv("POLICYQA_EMBEDDER", "hash")
    monkeypatch.setenv("POLICYQA_KB", str(KB))
    monkeypatch.delenv("POLICYQA_LLM_BASE_URL", raising=False)
    follow = {
        "question": "那2020年是多少？",
        "history": [
            {"role": "user", "content": OUR_QUESTIONS[0]},
            {"role": "assistant", "content": "森林覆盖率2025年目标为62.6%。"},
        ],
    }
    qs = tmp_path / "q.txt"
    qs.write_text(
        "\n".join([*OUR_QUESTIONS[:3], json.dumps(follow, ensure_ascii=False)]) + "\n", encoding="utf-8"
    )
    assert main(["ask", "--batch", str(qs), "--json"]) == 0
    out = capsys.readouterr().out
    answers = [json.loads(x) for x in out.splitlines()]
    assert [a["question"] for a in answers] == [*OUR_QUESTIONS[:3], follow["question"]]
    assert "森林覆盖率" in answers[-1].get("standalone_question", "")  # read with its history
    f = tmp_path / "answers.jsonl"
    f.write_text(out, encoding="utf-8")
    assert main(["check", str(f), "--json"]) == 0


# ----------------------------------------------------------------------------- JSON API


def test_parse_check_body() -> None:
    from policyqa.restapi import Reply, parse_check_body

    one = json.dumps(GOOD_FOREIGN, ensure_ascii=False).encode()
    assert parse_check_body(one) == [GOOD_FOREIGN]
    assert parse_check_body(b"[" + one + b"," + one + b"]") == [GOOD_FOREIGN, GOOD_FOREIGN]
    for raw, message in [
        (b"not json", "JSON"),
        (b"[]", "为空"),
        (b'[{"answer": "a"}, {"question": "q"}]', "第 2 条回答"),
    ]:
        r = parse_check_body(raw)
        assert isinstance(r, Reply) and r.status == 400 and message in r.body["error"]


@pytest.mark.server
def test_check_route(app_server: dict) -> None:
    import urllib.error
    import urllib.request

    def post(body: bytes) -> tuple[int, Any]:
        req = urllib.request.Request(
            f"{app_server['url']}v1/check", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    bad = foreign("森林覆盖率目标为63%[1]。", FOREST_ROW)
    status, body = post(json.dumps([GOOD_FOREIGN, bad], ensure_ascii=False).encode())
    assert status == 200
    assert [r["ok"] for r in body["results"]] == [True, False]
    assert body["results"][1]["problems"][0]["kind"] == "unsupported_number"
    assert body["summary"]["failed"] == 1
    status, body = post(json.dumps(GOOD_FOREIGN, ensure_ascii=False).encode())
    assert status == 200 and body["results"][0]["ok"] and body["summary"]["passed"] == 1
    status, body = post(b'{"question": "q"}')
    assert status == 400 and "answer" in body["error"]


def test_problem_json_shape(library: Library) -> None:
    r = check_answer(foreign("森林覆盖率目标为63%[1]。", FOREST_ROW), library).to_dict()
    assert set(r) == {"question", "ok", "problems"}
    p = r["problems"][0]
    assert list(p)[:4] == ["n", "sentence", "kind", "detail"] and re.search("【63】", p["marked"])
