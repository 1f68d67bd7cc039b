"""The app as a server: `python app.py` on a hash-embedder index, called through gradio_client;
startup failures; the feedback log."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, app_env, free_port

from policyqa.models import Answer, Citation, Location

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
    status, saved = record_vote(settings, [ANSWER], "up", "")
    assert not saved and "无法保存" in status
    assert "not writable" in caplog.text
    ok = Settings(home=tmp_path)
    status, saved = record_vote(ok, [ANSWER], "down", "x")
    assert saved and ok.feedback_path.exists()
    assert record_vote(ok, [], "up", "")[1] is False
