"""Faults while serving: a damaged or deleted index, a killed ingest, two ingests at once, an
LLM or Chroma server that is down, slow or talks nonsense.

The rule under test: the person using the program sees an answer or a short Chinese
``PolicyQAError`` that says what to run — never a raw traceback, never a hang — and
``policyqa ingest`` repairs what it can. Every index here is built with the ``hash`` embedder
in a temporary home (seconds); processes that must be killed run as subprocesses.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest

from policyqa.answer import ask
from policyqa.cite import contract_problems
from policyqa.errors import BackendError, IndexMissingError, PolicyQAError
from policyqa.index import Index, build_index, ingest_lock, open_index
from policyqa.retrieve import search
from policyqa.settings import Settings
from tests.conftest import ROOT, app_env, free_port, stop
from tests.fake_openai import FakeOpenAI, Reply
from tests.indexes import settings_for, shared_index

QUESTION = "2025年森林覆盖率目标是多少？"
QUESTIONS = (QUESTION, "工地扬尘谁管？", "第七章主要写了什么？")


def cli(home: Path, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """``policyqa <args>`` on ``home`` with the hash embedder, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "policyqa.cli", *args],
        cwd=ROOT,
        env=app_env(home, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_user_error(r: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit status 2 and a Chinese message naming what to do; no traceback."""
    assert r.returncode == 2, (r.returncode, r.stderr[-1500:])
    last = r.stderr.strip().splitlines()[-1]  # after any progress lines
    assert "Traceback" not in r.stderr and last.startswith("错误："), r.stderr[-1500:]
    for n in needles:
        assert n in r.stderr, r.stderr[-1500:]


def answers_well(index: Index) -> None:
    for q in QUESTIONS:
        a = ask(index, q)
        assert a.answerable and a.mode == "extractive", (q, a.answer)
        assert contract_problems(a.answer, a.citations, index.source_canon) == []
    assert "62.6" in ask(index, QUESTION).answer


@pytest.fixture()
def built(tmp_path: Path) -> tuple[Settings, Index]:
    s = settings_for(tmp_path / "home", "hash")
    build_index(s)
    return s, open_index(s)


# ----------------------------------------------------------------------------- damaged index


def test_deleted_index_folder(built: tuple[Settings, Index]) -> None:
    s, index = built
    shutil.rmtree(s.index_dir.resolve())
    # chromadb may have the vectors in memory (then it answers) or load them lazily from the
    # deleted folder (then a clear error says what to run); either way, no raw exception
    try:
        answers_well(index)
    except PolicyQAError as e:
        assert "policyqa ingest" in str(e)
    with pytest.raises(IndexMissingError, match="请先运行 `policyqa ingest`"):
        open_index(s)
    r = build_index(s)
    assert not r.skipped
    answers_well(open_index(s))


def test_index_opened_with_another_kb_is_refused(built, tmp_path: Path) -> None:
    """Another (or no) kb/: questions would be cut with another dictionary and without the
    synonyms — silently worse answers — so opening says what to do instead."""
    from policyqa.errors import IndexMismatchError

    s, _ = built
    with pytest.raises(IndexMismatchError, match="POLICYQA_KB"):
        open_index(s.with_(kb_dir=tmp_path / "nowhere"))
    answers_well(open_index(s))


def test_deleted_index_rebuilt_in_the_same_second(built, monkeypatch) -> None:
    """The clock frozen so the rebuild gets the deleted build's time stamp: chromadb still
    holds that build's collections in memory, so the id must not be reused."""
    import datetime as dt

    import policyqa.index as pq_index

    s, index = built
    stamp = dt.datetime.strptime(index.build_id[:15], "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return stamp

    monkeypatch.setattr(pq_index, "datetime", Frozen)
    shutil.rmtree(s.index_dir.resolve())
    r = build_index(s)
    assert r.build_id != index.build_id and r.build_id[:15] == index.build_id[:15]  # same second
    answers_well(open_index(s))


def _cut_units_at_a_line(p: Path) -> None:
    lines = p.read_text(encoding="utf-8").splitlines(keepends=True)
    p.write_text("".join(lines[: len(lines) // 2]), encoding="utf-8")  # still valid JSON lines


def _cut_half(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


@pytest.mark.parametrize(
    ("rel", "cut"),
    [
        ("units.jsonl", _cut_units_at_a_line),
        ("bm25/data.csc.index.npy", _cut_half),
    ],
    ids=["units-at-line", "bm25-data"],
)
def test_truncated_file_is_detected_and_rebuilt_without_force(built, rel: str, cut) -> None:
    s, index = built
    cut(s.index_dir / rel)
    answers_well(index)  # already loaded: unaffected
    with pytest.raises(IndexMissingError, match="policyqa ingest"):
        open_index(s)
    r = build_index(s)  # no force: the size check in the manifest finds the damage
    assert not r.skipped
    answers_well(open_index(s))


def test_damaged_vector_store_is_a_clear_error_then_repaired(built: tuple[Settings, Index]) -> None:
    s, index = built
    db = s.index_dir / "chroma" / "chroma.sqlite3"
    db.write_bytes(db.read_bytes()[:4096])  # a torn SQLite file
    with pytest.raises(BackendError, match="policyqa ingest --force"):
        ask(index, QUESTION)
    with pytest.raises(IndexMissingError, match="policyqa ingest --force"):
        open_index(s)
    r = cli(s.home, "ask", QUESTION)
    assert_user_error(r, "policyqa ingest --force")
    assert build_index(s, force=True).build_id != index.build_id
    answers_well(open_index(s))


def test_cli_on_a_truncated_index_says_what_to_run_and_ingest_repairs(built) -> None:
    s, _ = built
    (s.index_dir / "units.jsonl").write_text("", encoding="utf-8")
    assert_user_error(cli(s.home, "ask", QUESTION), "policyqa ingest")
    r = cli(s.home, "ingest", "--json")
    assert r.returncode == 0, r.stderr[-1500:]
    assert json.loads(r.stdout)["skipped"] is False
    answers_well(open_index(s))


# ----------------------------------------------------------------------------- ingest races


def test_killed_ingest_leaves_the_previous_index_serving(built: tuple[Settings, Index]) -> None:
    s, _ = built
    before = s.index_dir.resolve()
    builds = s.home / "builds"
    with open(s.home / "ingest.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "policyqa.cli", "ingest", "--force"],
            cwd=ROOT,
            env=app_env(s.home),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    half = None
    try:
        deadline = time.monotonic() + 60
        while half is None and time.monotonic() < deadline and proc.poll() is None:
            # kill once the new build has begun writing: its units are there, its manifest not
            half = next(
                (p.parent for p in builds.glob("*/.building") if (p.parent / "units.jsonl").exists()), None
            )
            time.sleep(0.005)
        assert half is not None, (proc.poll(), (s.home / "ingest.log").read_text()[-1500:])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        stop(proc)
    assert half.exists() and not (half / "manifest.json").exists()
    assert s.index_dir.resolve() == before  # never switched
    answers_well(open_index(s))
    r = build_index(s)  # inputs unchanged: nothing to build, but the debris goes
    assert r.skipped and r.path == before
    assert not half.exists()


def test_second_ingest_waits_then_refuses(tmp_path: Path) -> None:
    s = settings_for(tmp_path / "home", "hash")
    with ingest_lock(s.home):
        t0 = time.monotonic()
        with pytest.raises(PolicyQAError, match="另一个 ingest 正在进行"):
            build_index(s, lock_wait_s=0.6)
        assert 0.5 <= time.monotonic() - t0 < 5
    assert not s.index_dir.exists()


def test_two_ingests_at_once_build_once_and_never_mix(tmp_path: Path) -> None:
    home = tmp_path / "home"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "policyqa.cli", "ingest", "--json"],
            cwd=ROOT,
            env=app_env(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=180)
            assert p.returncode == 0, err[-1500:]
            outs.append(json.loads(out))
    finally:
        for p in procs:
            stop(p)
    assert sorted(o["skipped"] for o in outs) == [False, True]  # one built, the other waited
    assert outs[0]["build_id"] == outs[1]["build_id"]
    live = (home / "index").resolve()
    m = json.loads((live / "manifest.json").read_text(encoding="utf-8"))
    assert m["build_id"] == live.name == outs[0]["build_id"]
    units = (live / "units.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(units) == m["counts"]["units"]
    assert [p.name for p in (home / "builds").iterdir()] == [live.name]


# ----------------------------------------------------------------------------- LLM faults


class _Garbage(BaseHTTPRequestHandler):
    """Answers every request with 200 and an HTML page: not the OpenAI JSON the client expects."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<html><body>502 Bad Gateway \xe4\xb9\xb1\xe7\xa0\x81</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def hash_index() -> Index:
    return shared_index("hash")


@pytest.fixture()
def garbage_url() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    t = Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


LLM_TIMEOUT = 1.5


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("refused", "error"),  # nothing listens on the port
        ("slow", "timeout"),
        ("slow-stream", "timeout"),
        ("http-500", "error"),
        ("html-page", "error"),
        ("no-markers", "unchecked"),
        ("invented-2030", "unchecked"),
    ],
)
def test_llm_faults_fall_back_to_the_extractive_answer(hash_index: Index, garbage_url: str, case, reason):
    from policyqa.llm import chat_model_from_settings

    extractive = ask(hash_index, QUESTION)
    with FakeOpenAI() as srv:
        url = {"refused": f"http://127.0.0.1:{free_port()}/v1", "html-page": garbage_url}.get(
            case, srv.base_url
        )
        srv.push(
            {
                "slow": Reply("森林覆盖率目标为62.6[1]。", delay=30),
                "slow-stream": Reply("森林覆盖率目标为62.6[1]。", delay=30),
                "http-500": Reply("internal error", status=500),
                "no-markers": Reply("今天天气很好，我们去公园吧。"),
                "invented-2030": Reply("到2030年森林覆盖率将达到75%[1]。"),
            }.get(case, Reply("unused"))
        )
        llm = chat_model_from_settings(hash_index.settings.with_(llm_base_url=url, llm_timeout=LLM_TIMEOUT))
        tokens: list[str] = []
        t0 = time.monotonic()
        a = ask(hash_index, QUESTION, llm=llm, on_token=tokens.append if case == "slow-stream" else None)
        elapsed = time.monotonic() - t0
    assert a.mode == f"llm-fallback:{reason}"
    assert elapsed < LLM_TIMEOUT + 3
    assert a.answer == extractive.answer and a.citations == extractive.citations and a.notice
    assert "2030" not in a.answer and "75%" not in a.answer


# ----------------------------------------------------------------------------- Chroma server


def test_chroma_server_down_is_a_quick_clear_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    s = settings_for(tmp_path / "home", "hash").with_(chroma_url=url)
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="chroma run"):
        build_index(s)
    assert time.monotonic() - t0 < 10
    assert not s.index_dir.exists()
    r = cli(s.home, "ingest", POLICYQA_CHROMA_URL=url, timeout=60)
    assert_user_error(r, url, "chroma run")


def _heartbeat(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture()
def chroma_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real ``chroma run`` on a free port, stopped by its PID."""
    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = free_port()
    with open(tmp_path / "chroma.log", "w") as log:
        proc = subprocess.Popen(
            [
                chroma,
                "run",
                "--path",
                str(tmp_path / "chroma-data"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not _heartbeat(port):
            assert proc.poll() is None, (tmp_path / "chroma.log").read_text()[-1500:]
            assert time.monotonic() < deadline, "chroma run not ready in 30 s"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        stop(proc)


def test_real_chroma_server_ingest_search_and_outage(tmp_path: Path, chroma_server) -> None:
    url, proc = chroma_server
    home = tmp_path / "home"
    r = cli(home, "ingest", "--json", POLICYQA_CHROMA_URL=url)
    assert r.returncode == 0, r.stderr[-1500:]
    s = Settings.from_env(app_env(home, POLICYQA_CHROMA_URL=url))
    index = open_index(s)
    m = index.manifest
    assert m["chroma"] == {"mode": "server", "url": url, "collection": f"pq-{m['build_id']}-units"}
    assert not (index.path / "chroma").exists()  # the vectors live in the server
    hits = search(index, "森林覆盖率", k=5)
    assert any("dense" in h.sources for h in hits)
    assert any(h.unit.location.indicator_no == 17 for h in hits)
    answers_well(index)

    stop(proc)  # the server goes away while the index is open
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="chroma run"):
        ask(index, QUESTION)
    with pytest.raises(BackendError, match="chroma run"):
        open_index(s)
    assert time.monotonic() - t0 < 10
