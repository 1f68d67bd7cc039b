"""The app as a server: `python app.py` on a hash-embedder index, called through gradio_client;
startup failures; the feedback log."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import ROOT, app_env, free_port

from policyqa.models import Answer, Citation, Location, Unit

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def client(app_server: dict):
    from gradio_client import Client

    return Client(app_server["url"], verbose=False)


@pytest.fixture(scope="module")
def unit_ids(app_server: dict) -> set[str]:
    lines = (Path(app_server["home"]) / "index" / "units.jsonl").read_text(encoding="utf-8").splitlines()
    return {json.loads(line)["id"] for line in lines if line.strip()}


def check_contract(answer: dict, unit_ids: set[str]) -> None:
    """Markers ↔ citations 1..m, every citation a unit of the index."""
    assert set(answer) >= {"question", "answer", "answerable", "citations", "mode", "timings_ms"}
    ns = [c["n"] for c in answer["citations"]]
    assert ns == list(range(1, len(ns) + 1))
    assert {int(m) for m in re.findall(r"\[(\d+)\]", answer["answer"])} == set(ns)
    for c in answer["citations"]:
        assert c["id"] in unit_ids
        assert c["quote"] and c["label"]


# ----------------------------------------------------------------------------- API


def test_only_the_named_endpoints_are_public(client) -> None:
    api = client.view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == {"/ask", "/search", "/outline"}
    assert not api["unnamed_endpoints"]


def test_ask_forest_coverage(client, unit_ids: set[str]) -> None:
    a = client.predict("2025年森林覆盖率目标是多少？", "", api_name="/ask")
    assert a["answerable"] is True
    assert "62.6" in a["answer"]
    check_contract(a, unit_ids)
    assert any(c["location"]["indicator_no"] == 17 for c in a["citations"])
    assert Answer.from_dict(a).to_dict() == a  # the one JSON form of the contract


def test_ask_with_history(client, unit_ids: set[str]) -> None:
    history = [
        {"role": "user", "content": "2025年森林覆盖率目标是多少？"},
        {"role": "assistant", "content": [{"type": "text", "text": "2025年目标为62.6[1]。"}]},
    ]
    a = client.predict("那2020年呢？", json.dumps(history, ensure_ascii=False), api_name="/ask")
    check_contract(a, unit_ids)
    assert a["answerable"] and "62.5" in a["answer"]


def test_ask_rejects_bad_history(client) -> None:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="history_json"):
        client.predict("森林覆盖率", "[{not json", api_name="/ask")
    with pytest.raises(AppError, match="history_json"):
        client.predict("森林覆盖率", '{"role": "user"}', api_name="/ask")


def test_ask_too_long_and_script(client) -> None:
    a = client.predict("森" * 5000, "", api_name="/ask")
    assert a["answerable"] is False and a["mode"] == "invalid" and "太长" in a["answer"]
    a = client.predict("<script>alert(1)</script>", "", api_name="/ask")
    assert a["answerable"] is False  # JSON is data: escaping is the page's job, tested in the browser


def test_search(client, unit_ids: set[str]) -> None:
    r = client.predict("森林覆盖率", 3, api_name="/search")
    assert r["question"] == "森林覆盖率"
    assert 1 <= len(r["hits"]) <= 3
    for h in r["hits"]:
        assert set(h) >= {"id", "score", "label", "location", "text"} and h["id"] in unit_ids
    assert any(h["location"]["indicator_no"] == 17 for h in r["hits"])


def test_search_checks_input_like_ask(client) -> None:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="问题太长"):
        client.predict("森" * 5000, 3, api_name="/search")
    with pytest.raises(AppError, match="请输入问题"):
        client.predict("   ", 3, api_name="/search")
    with pytest.raises(AppError, match="没有读到可以检索的文字"):
        client.predict("？！…", 3, api_name="/search")


@pytest.mark.parametrize(("k", "most"), [(None, 5), ("不是数字", 5), (0, 1), (-3, 1), (10_000, 50), (2.9, 2)])
def test_search_k_is_defaulted_and_clamped(client, k: object, most: int) -> None:
    r = client.predict("生态环境保护", k, api_name="/search")
    assert 1 <= len(r["hits"]) <= most
    if most in (1, 5):
        assert len(r["hits"]) == most


def test_outline(client) -> None:
    r = client.predict(api_name="/outline")
    (doc,) = r["documents"]
    assert doc["title"] == "广西生态环境保护“十四五”规划"
    assert len(doc["chapters"]) == 13
    assert [c["no"] for c in doc["columns"]] == list(range(1, 10))
    six = next(i for i in doc["indicators"] if i["no"] == 6)
    assert [r["scope"] for r in six["rows"]] == ["设区城市", "县级"]


# ----------------------------------------------------------------------------- startup


def run_app(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "app.py", "--port", str(free_port()), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_refuses_to_start_without_index(tmp_path: Path) -> None:
    r = run_app([], app_env(tmp_path / "empty"))
    assert r.returncode == 2
    assert "无法启动" in r.stderr and "policyqa ingest" in r.stderr and "--build-index" in r.stderr


def test_admin_mode_needs_a_password(hash_home: Path) -> None:
    r = run_app(["--admin"], app_env(hash_home))
    assert r.returncode == 2 and "POLICYQA_ADMIN_PASSWORD" in r.stderr


# ----------------------------------------------------------------------------- feedback


ANSWER = Answer(
    question="2025年森林覆盖率目标是多少？",
    answer="2025年目标为62.6[1]。",
    answerable=True,
    citations=(
        Citation(1, "d:ind17", "专栏1 › 17. 森林覆盖率（%）", Location("d"), "17.森林覆盖率(%) 62.5 62.6"),
    ),
)


def test_feedback_lines_are_appended_without_personal_data(tmp_path: Path) -> None:
    from policyqa.feedback import append_feedback, feedback_record, read_feedback

    log = tmp_path / "sub" / "feedback.jsonl"
    append_feedback(log, feedback_record(ANSWER, "up"))
    append_feedback(log, feedback_record(ANSWER, "down", "  引用不对  "))
    lines = log.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    rec = json.loads(lines[1])
    assert set(rec) == {"time", "vote", "comment", "question", "answer", "citations", "mode", "answerable"}
    assert rec["vote"] == "down" and rec["comment"] == "引用不对"
    assert rec["citations"][0]["id"] == "d:ind17"
    assert [r["vote"] for r in read_feedback(log)] == ["down", "up"]  # newest first
    with pytest.raises(ValueError):
        feedback_record(ANSWER, "meh")


def test_unwritable_feedback_log_is_reported_not_raised(tmp_path: Path, caplog) -> None:
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    from policyqa.settings import Settings
    from policyqa.webapp import record_vote

    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    settings = Settings(home=tmp_path, feedback_log=blocked / "feedback.jsonl")  # parent is a file
    status, saved, _ = record_vote(settings, [ANSWER], "up", "")
    assert not saved and "无法保存" in status
    assert "not writable" in caplog.text
    ok = Settings(home=tmp_path)
    status, saved, _ = record_vote(ok, [ANSWER], "down", "x")
    assert saved and ok.feedback_path.exists()
    assert record_vote(ok, [], "up", "")[1] is False


def test_one_vote_per_answer_a_change_replaces_it(tmp_path: Path) -> None:
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    from policyqa.feedback import read_feedback
    from policyqa.settings import Settings
    from policyqa.webapp import record_vote

    s = Settings(home=tmp_path)
    other = record_vote(s, [ANSWER], "up", "", answer_id="other-1")
    first = record_vote(s, [ANSWER], "up", "好", answer_id="a-1")
    assert first[1] and first[2] == ("up", "好")
    again = record_vote(s, [ANSWER], "up", "", answer_id="a-1", previous=first[2])
    assert not again[1] and "只记一次" in again[0]
    changed = record_vote(s, [ANSWER], "down", "", answer_id="a-1", previous=first[2])
    assert changed[1] and "已改为" in changed[0] and changed[2] == ("down", "好")
    lines = s.feedback_path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and other[1]
    recs = read_feedback(s.feedback_path)
    assert [(r["answer_id"], r["vote"], r["comment"]) for r in recs] == [
        ("a-1", "down", "好"),
        ("other-1", "up", ""),
    ]


# ----------------------------------------------------------------------------- in-process: webapp


def fake_index(build_id: str, units: dict | None = None) -> SimpleNamespace:
    """Just what build_app and the handlers read of an Index."""
    return SimpleNamespace(
        build_id=build_id,
        docs={},
        units=units or {},
        retrievable={},
        manifest={"build_id": build_id, "counts": {}, "documents": []},
        embedder=object(),
    )


def handler(demo, name: str):
    """The function behind one of the page's (private) events."""
    return next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == name)


@pytest.fixture
def webapp(monkeypatch):
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    from policyqa import webapp

    return webapp


def test_exports_go_to_a_private_directory_of_this_process(webapp, tmp_path: Path) -> None:
    from policyqa.settings import Settings

    state = webapp.AppState(settings=Settings(home=tmp_path), index=fake_index("a"))
    d = state.export_dir()
    assert d.parent == tmp_path.resolve() and d.name.startswith("policyqa-exports-")
    assert d.stat().st_mode & 0o777 == 0o700  # mkdtemp: no other local user can list or plant files
    assert state.export_dir() == d  # one per process (per AppState)
    assert webapp.AppState(settings=Settings(home=tmp_path), index=fake_index("a")).export_dir() != d
    paths = {webapp.write_export([ANSWER], d) for _ in range(3)}
    assert len(paths) == 3  # unique names, even within one second
    for p in map(Path, paths):
        assert p.parent == d and p.stat().st_mode & 0o777 == 0o600
        assert "62.6[1]" in p.read_text(encoding="utf-8")
    assert webapp.launch_assets(state)["allowed_paths"] == [str(d)]

    no_home = webapp.AppState(settings=Settings(home=tmp_path / "missing"), index=fake_index("a"))
    e = no_home.export_dir()
    assert e.parent == Path(tempfile.gettempdir()).resolve() and e.name != "policyqa-exports"
    assert e.stat().st_mode & 0o777 == 0o700
    shutil.rmtree(e)


def test_export_folders_of_killed_processes_are_removed(webapp, tmp_path: Path) -> None:
    import subprocess
    import sys

    from policyqa.settings import Settings

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs
    dead = tmp_path / (webapp.export_prefix(gone.pid) + "abc")
    alive = tmp_path / (webapp.export_prefix() + "abc")
    other_host = tmp_path / f"{webapp.EXPORT_PREFIX}elsewhere-{gone.pid}-abc"
    unrelated = tmp_path / "builds"
    for d in (dead, alive, other_host, unrelated):
        d.mkdir()
        (d / "x.md").write_text("对话", encoding="utf-8")
    d = webapp.AppState(settings=Settings(home=tmp_path), index=fake_index("a")).export_dir()
    assert not dead.exists()
    assert alive.is_dir() and other_host.is_dir() and unrelated.is_dir() and d.is_dir()
    assert webapp.prune_dead_exports(tmp_path) == []


def test_parse_k(webapp) -> None:
    assert [webapp.parse_k(k) for k in (None, "", "x", True, float("nan"), float("inf"))] == [5] * 6
    assert [webapp.parse_k(k) for k in (0, -1, 1, 7, "12", 7.9, 51, 10**9)] == [1, 1, 1, 7, 12, 7, 50, 50]
    assert webapp.parse_k(30, high=20) == 20


def test_browse_search_checks_input_and_k(webapp, monkeypatch, tmp_path: Path) -> None:
    from policyqa.settings import Settings

    calls: list[int] = []
    monkeypatch.setattr(webapp, "search", lambda index, q, k: calls.append(k) or [])
    state = webapp.AppState(settings=Settings(home=tmp_path), index=fake_index("a"))
    do_search = handler(webapp.build_app(state), "do_search")
    assert "问题太长" in do_search("森" * 5000, 5) and calls == []
    assert "请输入要检索的内容" in do_search(None, None)
    assert "没有找到" in do_search("森林覆盖率", None) and calls == [5]
    do_search("森林覆盖率", 999)
    assert calls[-1] == webapp.MAX_K

    def broken(index, q, k):
        raise RuntimeError("boom")

    monkeypatch.setattr(webapp, "search", broken)
    assert "检索暂时出错" in do_search("森林覆盖率", 3)


def test_a_request_keeps_the_index_it_started_with(webapp, monkeypatch, tmp_path: Path) -> None:
    from policyqa.settings import Settings

    unit = Unit(
        "d:p1", "d", "paragraph", "前文。森林覆盖率达到62.5%。后文。", "第一章 › 第一节", Location("d")
    )
    old, new = fake_index("old", {"d:p1": unit}), fake_index("new")
    state = webapp.AppState(settings=Settings(home=tmp_path), index=old)
    seen = []

    def ask_during_a_swap(index, question, history, llm=None, on_token=None):
        seen.append(index)
        state.index = new  # an admin re-ingest finishes while this request runs
        cite = Citation(1, "d:p1", unit.label, unit.location, "森林覆盖率达到62.5%。")
        return Answer(question, "森林覆盖率达到62.5%[1]。", True, (cite,))

    monkeypatch.setattr(webapp, "ask", ask_during_a_swap)
    respond = handler(webapp.build_app(state), "respond")
    outputs = list(respond("森林覆盖率？", [], []))
    assert seen == [old]
    sources = outputs[-1][3]
    assert (
        '<mark data-n="1">森林覆盖率达到62.5%。</mark>' in sources and "未能在原文段落中定位" not in sources
    )


def test_rebuild_swaps_and_holds_the_lock_even_if_the_page_disconnects(
    webapp, monkeypatch, tmp_path: Path
) -> None:
    from policyqa.settings import Settings

    old, new = fake_index("old"), fake_index("new")
    release = threading.Event()

    def slow_build(settings, force=False, progress=None, embedder=None):
        progress("读取 kb/ …")
        assert release.wait(20)

    monkeypatch.setattr(webapp, "build_index", slow_build)
    monkeypatch.setattr(webapp, "open_index", lambda settings, embedder=None: new)
    monkeypatch.setattr(webapp, "warm", lambda index: None)  # a fake index has nothing to warm
    state = webapp.AppState(settings=Settings(home=tmp_path, admin_password="pw"), index=old, admin=True)
    rebuild = handler(webapp.build_app(state), "rebuild")
    gen = rebuild("pw", False)
    assert "读取 kb/" in next(gen)
    gen.close()  # the admin page went away mid-build
    assert state.rebuild_lock.locked() and state.index is old
    assert list(rebuild("pw", False)) == ["已有重建任务在进行，请稍候。"]
    release.set()
    deadline = time.monotonic() + 10
    while state.rebuild_lock.locked() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not state.rebuild_lock.locked()
    assert state.index is new  # swapped by the worker, with nobody watching

    def failing_build(settings, force=False, progress=None, embedder=None):
        raise OSError("kb/ 不可读")

    monkeypatch.setattr(webapp, "build_index", failing_build)
    msgs = list(rebuild("pw", False))
    assert "重建失败" in msgs[-1] and state.index is new and not state.rebuild_lock.locked()


def test_admin_password_backoff(webapp, caplog, tmp_path: Path) -> None:
    from policyqa.settings import Settings

    now = [1000.0]
    guard = webapp.AdminGuard(clock=lambda: now[0])
    settings = Settings(home=tmp_path, admin_password="s3cret-pw")
    assert guard.check("s3cret-pw", settings) is None
    for _ in range(4):
        assert guard.check("wrong-guess", settings) == "口令不正确。"
        now[0] += 1
    assert "30 秒后再试" in guard.check("wrong-guess", settings)  # the 5th within a minute
    now[0] += 10
    assert "20 秒后再试" in guard.check("s3cret-pw", settings)  # even the right one waits
    now[0] += 21
    assert guard.check("s3cret-pw", settings) is None
    for _ in range(10):  # failures spread over more than a minute never lock
        assert guard.check("wrong-guess", settings) == "口令不正确。"
        now[0] += 16
    assert "s3cret-pw" not in caplog.text and "wrong-guess" not in caplog.text
    assert webapp.AdminGuard().check("anything", Settings(home=tmp_path)) == "口令不正确。"  # no password set


def test_admin_page_refuses_after_repeated_wrong_passwords(webapp, tmp_path: Path) -> None:
    from policyqa.settings import Settings

    state = webapp.AppState(
        settings=Settings(home=tmp_path, admin_password="pw"), index=fake_index("a"), admin=True
    )
    show_manifest = handler(webapp.build_app(state), "show_manifest")
    assert "构建编号" in show_manifest("pw")[0]
    for _ in range(5):
        assert "口令不正确" in show_manifest("nope")[0]
    assert "秒后再试" in show_manifest("pw")[0]


def test_new_conversation_deletes_the_old_export(webapp, tmp_path: Path) -> None:
    from policyqa.settings import Settings

    state = webapp.AppState(settings=Settings(home=tmp_path), index=fake_index("a"))
    path = webapp.write_export([ANSWER], state.export_dir())
    reset = handler(webapp.build_app(state), "reset")
    out = reset({"id": "x", "export": path})
    assert not Path(path).exists()
    assert out[2] == [] and "提问后" in out[3] and out[6]["id"] != "x" and out[6]["asked"] == []
    reset(None)  # a session that never asked


def test_admin_feedback_times_are_local(webapp) -> None:
    assert webapp._local("2026-12-01T12:30:00+00:00") == "2026年12月1日 20:30"
    assert webapp._local("not a time") == "not a time" and webapp._local(None) == ""


def two_docs_index():
    from dataclasses import replace

    from ingest.load import load_document

    toy = load_document(ROOT / "tests" / "data" / "toy-plan.txt")
    other = replace(toy, id="toy-2", title="第二份规划", meta={**toy.meta, "title": "第二份规划"})
    index = fake_index("two")
    index.docs = {toy.id: toy, other.id: other}
    return index, toy, other


def component(demo, elem_id: str):
    return next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id)


def test_document_selector_is_hidden_with_one_document(webapp, tmp_path: Path) -> None:
    from policyqa.settings import Settings

    index, toy, _ = two_docs_index()
    index.docs = {toy.id: toy}
    demo = webapp.build_app(webapp.AppState(settings=Settings(home=tmp_path), index=index))
    assert component(demo, "pq-doc").visible is False


def test_document_selector_limits_chat_search_and_browse(webapp, monkeypatch, tmp_path: Path) -> None:
    from policyqa.settings import Settings

    index, toy, other = two_docs_index()
    state = webapp.AppState(settings=Settings(home=tmp_path), index=index)
    demo = webapp.build_app(state)
    selector = component(demo, "pq-doc")
    assert selector.visible is True
    assert [c[1] for c in selector.choices] == ["", toy.id, other.id]
    assert "全部文件" in selector.choices[0][0] and "第二份规划" in selector.choices[2][0]

    seen: dict[str, object] = {}

    def fake_ask(index, question, history, llm=None, on_token=None, doc=None):
        seen["ask"] = doc
        return Answer(question, "答。", True)

    def fake_search(index, q, k, doc=None):
        seen["search"] = doc
        return []

    monkeypatch.setattr(webapp, "ask", fake_ask)
    monkeypatch.setattr(webapp, "search", fake_search)
    list(handler(demo, "respond")("问题", [], [], None, "toy-2"))
    assert seen["ask"] == "toy-2"
    list(handler(demo, "respond")("问题", [], [], None, ""))
    assert seen["ask"] is None  # the whole library
    handler(demo, "do_search")("森林", 5, "toy-2")
    assert seen["search"] == "toy-2"
    radio = handler(demo, "pick_doc")("toy-2")
    assert radio.choices and all(key.startswith("toy-2|") for _, key in radio.choices)
    assert all("《" not in label for label, _ in radio.choices)  # one document: no title prefix
    both = handler(demo, "pick_doc")("")
    assert {key.split("|")[0] for _, key in both.choices} == {toy.id, other.id}
    assert "没有匹配的指标" not in handler(demo, "do_filter")("全部", "", "toy-2")
