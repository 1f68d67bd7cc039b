"""The optional LLM answerer: prompt files, the output check, and the real ChatOpenAI client
against a scripted OpenAI-compatible server on 127.0.0.1 (tests/fake_openai.py)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI, Reply

from policyqa.llm import (
    NO_ANSWER,
    LLMOutcome,
    chat_model_from_settings,
    check_llm_output,
    llm_answer,
    rewrite_question,
)
from policyqa.models import Hit, Location, Unit
from policyqa.prompts import PROMPTS_DIR, PromptError, load_prompt, prompt_names, render
from policyqa.settings import Settings

# ----------------------------------------------------------------------------- evidence

LOC_AIR = Location(doc="toy", chapter_no=2, chapter="主要目标", section_no=1, section="大气环境")
LOC_IND = Location(
    doc="toy", chapter_no=2, column_no=1, column="主要指标", indicator_no=2, indicator="地表水"
)
LOC_WASTE = Location(doc="toy", chapter_no=5, chapter="固体废物", section_no=2, section="无废城市")

AIR = Unit(
    id="toy:p1",
    doc="toy",
    kind="paragraph",
    text="到2025年，全市空气质量优良天数比率达到95%以上。细颗粒物（PM2.5）浓度下降10%。重污染天气基本消除。",
    label="第二章 主要目标 › 第一节 大气环境",
    location=LOC_AIR,
)
WATER = Unit(
    id="toy:i2",
    doc="toy",
    kind="indicator",
    text="环境治理 2.地表水国控断面水质优良比例(%) 90.5 92 约束性",
    label="专栏1 主要指标 › 2. 地表水国控断面水质优良比例（%）",
    location=LOC_IND,
)
WASTE = Unit(
    id="toy:p7",
    doc="toy",
    kind="paragraph",
    text="加强固体废物污染防治。推进南宁、柳州等3个城市开展“无废城市”建设。",
    label="第五章 固体废物 › 第二节 无废城市",
    location=LOC_WASTE,
)
HITS = [Hit(AIR, 3.0), Hit(WATER, 2.0), Hit(WASTE, 1.0)]
UNITS = {u.id: u for u in (AIR, WATER, WASTE)}

GOOD = (
    "到2025年，全市空气质量优良天数比率达到95%以上[1]。"
    "PM2.5浓度下降10%[1]。"
    "地表水国控断面水质优良比例目标为92%[2]。"
    "南宁、柳州等3个城市开展“无废城市”建设[3]。"
)

# [3] is cited first and [1] second: the check renumbers in order of first use.
BAD = (
    "推进3个城市开展“无废城市”建设[3]。\n"
    "- 空气质量优良天数比率达到95%以上[1][9]。\n"
    "这一句没有任何标注。\n"
    "地表水优良比例达到97%[2]。\n"
    "重污染天气基本消除[9]。"
)

ALL_BAD = "空气质量将明显改善。地表水优良比例达到99%[2]。详见附件[7]。"


def assert_valid(outcome: LLMOutcome) -> None:
    """Mode llm; every marker resolves; citations are 1..m; quotes are verbatim unit text."""
    a = outcome.answer
    assert a is not None and outcome.reason == "ok" and outcome.mode == "llm"
    assert a.mode == "llm" and a.answerable
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", a.answer)}
    assert markers == {c.n for c in a.citations}
    assert [c.n for c in a.citations] == list(range(1, len(a.citations) + 1))
    for c in a.citations:
        unit = UNITS[c.id]
        assert c.quote and c.quote in unit.text
        assert c.label == unit.label and c.location == unit.location


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as srv:
        yield srv


def model_for(srv: FakeOpenAI, timeout: float = 5.0):  # noqa: ANN201 - ChatOpenAI
    model = chat_model_from_settings(
        Settings(llm_base_url=srv.base_url, llm_model="fake-qwen", llm_timeout=timeout)
    )
    assert model is not None
    return model


# ----------------------------------------------------------------------------- prompts

SAMPLES = {
    "question": "“十四五”期间空气质量目标是什么？",
    "evidence": [{"n": i, "label": h.unit.label, "text": h.unit.text} for i, h in enumerate(HITS, 1)],
    "history": [{"question": "规划的期限是？", "answer": "规划期为2021—2025年。"}],
    "refusal": NO_ANSWER,
}


@pytest.mark.parametrize("name", prompt_names())
def test_every_prompt_renders(name: str) -> None:
    prompt = load_prompt(name)
    assert prompt.variables <= SAMPLES.keys(), "add a sample value for the new variable"
    messages = render(prompt, **{k: SAMPLES[k] for k in prompt.variables})
    assert [m.type for m in messages] == ["system", "human"]
    for m in messages:
        assert m.content and "{{" not in m.content and "{%" not in m.content
    assert SAMPLES["question"] in messages[1].content


def test_prompt_files_exist() -> None:
    assert {"answer", "rewrite"} <= set(prompt_names())
    assert load_prompt("answer").variables == {"question", "evidence", "history", "refusal"}
    assert load_prompt("rewrite").variables == {"question", "history"}


def test_answer_prompt_numbers_evidence() -> None:
    system, user = render(load_prompt("answer"), **SAMPLES)
    assert NO_ANSWER in system.content and "简体中文" in system.content
    assert f"[1] {AIR.label}\n{AIR.text}" in user.content
    assert f"[3] {WASTE.label}\n{WASTE.text}" in user.content


@pytest.mark.parametrize("name", prompt_names())
def test_render_missing_or_unknown_variable_raises(name: str) -> None:
    prompt = load_prompt(name)
    full = {k: SAMPLES[k] for k in prompt.variables}
    for k in prompt.variables:
        with pytest.raises(PromptError, match=k):
            render(prompt, **{kk: v for kk, v in full.items() if kk != k})
    with pytest.raises(PromptError, match="questoin"):
        render(prompt, **full, questoin="typo")


def test_load_prompt_from_dir(tmp_path: Path) -> None:
    (tmp_path / "hi.yaml").write_text("system: 你好\nuser: '{{ name }}'\n", encoding="utf-8")
    assert PROMPTS_DIR.name == "prompts" and (PROMPTS_DIR / "answer.yaml").is_file()
    p = load_prompt("hi", prompts_dir=tmp_path)
    assert [m.content for m in render(p, name="世界")] == ["你好", "世界"]
    with pytest.raises(PromptError, match="hi"):  # the error lists the known prompts
        load_prompt("nope", prompts_dir=tmp_path)


# ----------------------------------------------------------------------------- the check (pure)


def test_check_keeps_well_cited() -> None:
    r = check_llm_output(GOOD, HITS)
    assert r.ok and not r.dropped and len(r.kept) == 4
    assert [c.id for c in r.citations] == ["toy:p1", "toy:i2", "toy:p7"]
    # the best-supporting sentence, verbatim; both AIR sentences are cited, and adjacent
    assert (
        r.citations[0].quote
        == "到2025年，全市空气质量优良天数比率达到95%以上。细颗粒物（PM2.5）浓度下降10%。"
    )
    assert r.citations[2].quote == "推进南宁、柳州等3个城市开展“无废城市”建设。"


def test_check_drops_and_renumbers() -> None:
    r = check_llm_output(BAD, HITS)
    assert r.answer == "推进3个城市开展“无废城市”建设[1]。\n- 空气质量优良天数比率达到95%以上[2]。"
    assert [c.id for c in r.citations] == ["toy:p7", "toy:p1"]
    assert r.invalid_markers == (9,)
    reasons = {d.sentence: d.reason for d in r.dropped}
    assert reasons == {
        "这一句没有任何标注。": "no_marker",
        "地表水优良比例达到97%[2]。": "number_not_in_evidence: 97",
        "重污染天气基本消除[9]。": "no_marker",
    }


def test_check_marker_forms() -> None:
    # marker after the full stop, full-width brackets, a grouped marker, a ；-clause without one
    r = check_llm_output(
        "优良天数比率达到95%以上。[1]地表水比例为92%【2】。空气改善；PM2.5下降10%[1,2]。", HITS
    )
    assert r.kept == (
        "优良天数比率达到95%以上[1]。",
        "地表水比例为92%[2]。",
        "空气改善；PM2.5下降10%[1][2]。",
    )


def test_check_numbers_need_the_cited_item() -> None:
    # 92 is in WATER, not in AIR: citing only [1] is not enough
    r = check_llm_output("地表水比例目标为92%[1]。", HITS)
    assert r.reason == "unchecked" and r.dropped[0].reason == "number_not_in_evidence: 92"


def test_check_refusal_and_nothing_left() -> None:
    assert check_llm_output(NO_ANSWER, HITS).reason == "no_answer"
    assert check_llm_output(ALL_BAD, HITS).reason == "unchecked"
    assert check_llm_output("", HITS).reason == "unchecked"


# ----------------------------------------------------------------------------- the real client


def test_chat_model_from_settings() -> None:
    assert chat_model_from_settings(Settings()) is None
    m = chat_model_from_settings(Settings(llm_base_url="http://127.0.0.1:9/v1", llm_timeout=3))
    assert m is not None
    assert (m.max_retries, m.request_timeout, m.temperature) == (0, 3, 0)
    assert m.openai_api_key.get_secret_value() == "not-needed"


def test_well_cited(server: FakeOpenAI) -> None:
    server.push(GOOD)
    out = llm_answer("空气和水的目标？", HITS, model_for(server))
    assert_valid(out)
    assert out.answer.question == "空气和水的目标？" and len(out.answer.citations) == 3
    req = server.requests[0]
    assert req["model"] == "fake-qwen" and req["temperature"] == 0 and not req.get("stream")
    assert [m["role"] for m in req["messages"]] == ["system", "user"]
    assert f"[2] {WATER.label}\n{WATER.text}" in req["messages"][1]["content"]


def test_streaming_tokens(server: FakeOpenAI) -> None:
    server.push(Reply(GOOD, chunk_chars=4))
    tokens: list[str] = []
    out = llm_answer("空气和水的目标？", HITS, model_for(server), on_token=tokens.append)
    assert_valid(out)
    assert server.requests[0]["stream"] is True
    assert len(tokens) > 10 and "".join(tokens) == GOOD == out.raw


def test_badly_cited(server: FakeOpenAI) -> None:
    server.push(BAD)
    out = llm_answer("固体废物？", HITS, model_for(server))
    assert_valid(out)
    assert "[9]" not in out.answer.answer and "没有任何标注" not in out.answer.answer
    assert "97%" not in out.answer.answer
    assert [c.id for c in out.answer.citations] == ["toy:p7", "toy:p1"]
    assert len(out.check.dropped) == 3


def test_all_bad_is_unchecked(server: FakeOpenAI) -> None:
    server.push(ALL_BAD)
    out = llm_answer("空气？", HITS, model_for(server))
    assert (out.answer, out.reason, out.mode) == (None, "unchecked", "llm-fallback:unchecked")
    assert out.raw == ALL_BAD


def test_no_answer(server: FakeOpenAI) -> None:
    server.push(NO_ANSWER)
    out = llm_answer("规划对太空垃圾有什么要求？", HITS, model_for(server))
    assert (out.answer, out.reason) == (None, "no_answer")


def test_no_evidence_makes_no_call(server: FakeOpenAI) -> None:
    out = llm_answer("空气？", [], model_for(server))
    assert out.reason == "no_answer" and server.requests == []


@pytest.mark.parametrize("stream", [False, True])
def test_slow_server_times_out(server: FakeOpenAI, stream: bool) -> None:
    server.push(Reply(GOOD, delay=5))
    t0 = time.monotonic()
    out = llm_answer(
        "空气？", HITS, model_for(server, timeout=1), on_token=(lambda t: None) if stream else None
    )
    assert (out.answer, out.reason) == (None, "timeout")
    assert time.monotonic() - t0 < 2.5


def test_http_500_is_error(server: FakeOpenAI) -> None:
    server.push(Reply("internal error", status=500))
    out = llm_answer("空气？", HITS, model_for(server))
    assert (out.answer, out.reason, out.mode) == (None, "error", "llm-fallback:error")
    assert "500" in out.detail


def test_history_goes_to_the_prompt_without_markers(server: FakeOpenAI) -> None:
    server.push(GOOD)
    history = [("空气质量目标？", "优良天数比率达到95%以上[1]。")]
    assert_valid(llm_answer("那水呢？", HITS, model_for(server), history=history))
    user = server.requests[0]["messages"][1]["content"]
    assert "问：空气质量目标？" in user and "答：优良天数比率达到95%以上。" in user


def test_rewrite_question(server: FakeOpenAI) -> None:
    model = model_for(server)
    history = [("空气质量目标是什么？", "到2025年优良天数比率达到95%以上[1]。")]
    server.push("改写后的完整问题：“十四五”时期地表水水质的目标是什么？\n")
    assert rewrite_question("那水呢？", history, model) == "“十四五”时期地表水水质的目标是什么？"
    assert "那水呢？" in server.requests[0]["messages"][1]["content"]
    assert rewrite_question("那水呢？", [], model) == "那水呢？"  # no history: no call
    assert len(server.requests) == 1
    server.push(Reply(status=500))
    assert rewrite_question("那水呢？", history, model) is None
    server.push("")
    assert rewrite_question("那水呢？", history, model) is None


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("“那水呢”指地表水的目标是什么？", "“那水呢”指地表水的目标是什么？"),
        ("「地表水水质的目标是什么？」", "地表水水质的目标是什么？"),
        ("问题：地表水水质的目标是什么？\n（补全了主语）", "地表水水质的目标是什么？"),
        (NO_ANSWER, None),
    ],
)
def test_rewrite_cleans_reply(server: FakeOpenAI, reply: str, expected: str | None) -> None:
    server.push(reply)
    assert rewrite_question("那水呢？", [("空气？", "95%。")], model_for(server)) == expected
