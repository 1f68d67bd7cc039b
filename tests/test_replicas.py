"""Stateless replicas over one real ``chroma run``: publish, follow, prune, outage.

Every test here starts a real Chroma server on a free loopback port (stopped by its PID) and uses
the hash embedder. What they show:

- a build published from one home is answered by two ``python app.py`` replicas whose homes are
  empty, with no passage vector computed and no collection added; the CLI on an empty home too;
- a second publish reaches both running replicas without restart, and requests asked during the
  switch all succeed;
- the server killed: requests get 503 with a Chinese message, health says unavailable; a replica
  started meanwhile waits and retries (no exit); the server back: all of them answer again;
- two homes publishing at once leave two whole builds, one current; prune keeps the newest K,
  the current build and a build a replica reported recently, and removes the others'
  collections.

Left out: a Chroma server on another host, TLS, and the gradio page (the JSON API is the replica's
contract with a load balancer).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policyqa.errors import BackendError, IndexMismatchError
from policyqa.settings import Settings
from policyqa.store.follow import open_with_retry
from tests.conftest import ROOT, app_env, free_port, stop

QUESTION = "2025年森林覆盖率目标是多少？"
CJK = re.compile(r"[\u4e00-\u9fff]")


# ----------------------------------------------------------------------------- helpers


def _heartbeat(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


class ChromaServer:
    """``chroma run`` on a fixed port and data folder, so it can be killed and brought back."""

    def __init__(self, data: Path, log: Path) -> None:
        self.data, self.log, self.port = data, log, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(
                [chroma, "run", "--path", str(self.data), "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while not _heartbeat(self.port):
            assert self.proc.poll() is None, self.log.read_text()[-1500:]
            assert time.monotonic() < deadline, "chroma run not ready in 30 s"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def collections(self) -> set[str]:
        url = f"{self.url}/api/v2/tenants/default_tenant/databases/default_database/collections?limit=10000"
        with urllib.request.urlopen(url, timeout=10) as r:
            return {c["name"] for c in json.load(r)}


@pytest.fixture()
def chroma(tmp_path: Path) -> Iterator[ChromaServer]:
    srv = ChromaServer(tmp_path / "chroma-data", tmp_path / "chroma.log")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def cli(home: Path, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "policyqa.cli", *args],
        cwd=ROOT,
        env=app_env(home, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ingest(home: Path, url: str, kb: Path, **env: str) -> dict[str, Any]:
    r = cli(home, "ingest", "--json", POLICYQA_CHROMA_URL=url, POLICYQA_KB=str(kb), **env)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


def http(method: str, url: str, body: Any = None, timeout: float = 30) -> tuple[int, dict, dict]:
    """(status, JSON body, headers) of one request; HTTP errors are returned, not raised."""
    data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.load(r), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}"), dict(e.headers)


class Replica:
    def __init__(self, home: Path, url: str, kb: Path, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "app.py", "--port", str(self.port)],
                cwd=ROOT,
                env=app_env(home, POLICYQA_CHROMA_URL=url, POLICYQA_KB=str(kb), POLICYQA_POLL_SECONDS="1"),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 240) -> None:  # generous: CI machines are shared
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"replica exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if self.health()[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"replica not ready in {timeout} s:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.3)

    def health(self) -> tuple[int, dict]:
        status, body, _ = http("GET", f"{self.base}/v1/health", timeout=5)
        return status, body

    def ask(self, question: str = QUESTION) -> tuple[int, dict, dict]:
        return http("POST", f"{self.base}/v1/ask", {"question": question})


def wait_until(what: str, cond, timeout: float, logs: tuple[Path, ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            tails = "\n".join(p.read_text()[-1500:] for p in logs)
            pytest.fail(f"{what}: not within {timeout} s\n{tails}")
        time.sleep(0.3)


def _health_or_none(r: Replica) -> tuple[int, dict] | None:
    try:
        return r.health()
    except OSError:
        return None


@pytest.fixture()
def kb(tmp_path: Path) -> Path:
    d = tmp_path / "kb"
    shutil.copytree(ROOT / "kb", d)
    return d


# ----------------------------------------------------------------------------- start-up retry (no server)


def test_open_with_retry_backs_off_on_server_errors_and_not_on_wrong_settings() -> None:
    calls, sleeps, said = [], [], []

    def opener() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise BackendError("无法连接 Chroma 服务 http://x：ConnectError。")
        return "index"

    s = Settings()
    assert open_with_retry(s, opener, say=said.append, sleep=sleeps.append) == "index"
    assert sleeps == [1.0, 2.0, 4.0] and len(said) == 3
    assert all("秒后重试" in m and "无法连接 Chroma 服务" in m for m in said)

    def wrong() -> None:
        raise IndexMismatchError("索引是用向量模型 e5-small 构建的")

    with pytest.raises(IndexMismatchError):
        open_with_retry(s, wrong, say=said.append, sleep=sleeps.append)
    assert len(sleeps) == 3  # not retried: waiting does not fix a setting


def test_follower_tells_a_lost_server_from_a_build_it_cannot_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fakes, no server: a lost server is an error (health 503); a published build made with
    another embedder is not an outage (the replica keeps its build, health stays 200)."""
    from types import SimpleNamespace

    import policyqa.index
    import policyqa.store.publish as publish
    from policyqa.restapi import Admission, health_reply
    from policyqa.store.follow import Follower

    old = SimpleNamespace(
        build_id="old",
        embedder=None,
        query_vectors=SimpleNamespace(hits=0, misses=0),
        manifest={"embedder": {"name": "hash"}},
    )
    state = SimpleNamespace(index=old, llm=None)
    beats: list[str] = []
    monkeypatch.setattr(publish, "heartbeat", lambda s, name, bid: beats.append(bid))
    monkeypatch.setattr(publish, "current_build", lambda s: "new")

    def other_embedder(*a: Any, **k: Any) -> None:
        raise IndexMismatchError("索引是用向量模型 e5-small 构建的，当前设置为 hash")

    monkeypatch.setattr(policyqa.index, "open_index", other_embedder)
    f = Follower(Settings(chroma_url="http://127.0.0.1:9"), state, name="r")
    assert f.poll_once() is False and state.index is old and beats == ["old"]
    assert f.error is None and "e5-small" in f.stale
    assert health_reply(state, Admission(1, 1), f).status == 200

    def lost(*a: Any, **k: Any) -> None:
        raise BackendError("无法连接 Chroma 服务 http://127.0.0.1:9（ConnectError）")

    monkeypatch.setattr(publish, "heartbeat", lost)
    f.poll_once()
    reply = health_reply(state, Admission(1, 1), f)
    assert reply.status == 503 and reply.body["status"] == "unavailable" and "无法连接" in reply.body["error"]

    new = SimpleNamespace(**{**vars(old), "build_id": "new"})
    monkeypatch.setattr(publish, "heartbeat", lambda s, name, bid: beats.append(bid))
    monkeypatch.setattr(policyqa.index, "open_index", lambda *a, **k: new)
    assert f.poll_once() is True and state.index is new and beats[-1] == "new"
    assert health_reply(state, Admission(1, 1), f).body["replica"]["switches"] == 1


# ----------------------------------------------------------------------------- the whole story


@pytest.mark.server
def test_empty_replicas_answer_follow_publishes_and_survive_an_outage(
    tmp_path: Path, chroma: ChromaServer, kb: Path
) -> None:
    url = chroma.url
    first = ingest(tmp_path / "builder", url, kb)
    b1 = first["build_id"]
    published = chroma.collections()
    assert f"pqf-{b1}" in published and "policyqa-builds" in published

    homes = [tmp_path / "r1", tmp_path / "r2"]
    replicas = [Replica(h, url, kb, tmp_path / f"r{n}.log") for n, h in enumerate(homes, 1)]
    logs = tuple(r.log for r in replicas)
    try:
        for r in replicas:
            r.wait_ready()
        for r, home in zip(replicas, homes, strict=True):
            status, body, _ = r.ask()
            assert status == 200 and "62.6" in body["answer"] and body["citations"], body
            assert r.health()[1]["index"] == b1
            assert not (home / "cache").exists()  # no passage vector computed (none cached)
            assert (home / "builds" / b1 / "manifest.json").exists()  # the local copy is a cache
        assert chroma.collections() == published  # replicas add no collection

        # the CLI on another empty home opens the same build
        r = cli(
            tmp_path / "cli-home", "ask", "--json", QUESTION, POLICYQA_CHROMA_URL=url, POLICYQA_KB=str(kb)
        )
        assert r.returncode == 0 and "62.6" in json.loads(r.stdout)["answer"], r.stderr[-1500:]

        from policyqa.index import forget_client
        from policyqa.store.publish import list_builds

        reader = Settings.from_env(app_env(tmp_path / "reader", POLICYQA_CHROMA_URL=url))
        (entry,) = list_builds(reader)  # the heartbeats of both replicas name the build
        forget_client(reader, None)  # this process's client must not outlive the server below
        assert entry.build_id == b1 and entry.current and len(entry.replicas) == 2

        # a second publish (one more document) reaches both replicas while they serve
        shutil.copy(ROOT / "tests" / "data" / "toy-plan.txt", kb / "plans" / "toy-plan.txt")
        statuses: list[int] = []
        done = threading.Event()

        def keep_asking() -> None:
            while not done.is_set():
                statuses.append(replicas[0].ask()[0])

        asker = threading.Thread(target=keep_asking)
        asker.start()
        try:
            b2 = ingest(tmp_path / "builder", url, kb)["build_id"]
            assert b2 != b1
            wait_until(
                "both replicas switch to the new build",
                lambda: all((_health_or_none(r) or (0, {}))[1].get("index") == b2 for r in replicas),
                30,
                logs,
            )
            time.sleep(0.5)  # a few requests on the new build too
        finally:
            done.set()
            asker.join(timeout=60)
        assert statuses and set(statuses) == {200}, statuses
        for r in replicas:
            docs = {d["id"] for d in http("GET", f"{r.base}/v1/outline")[1]["documents"]}
            assert docs == {"gx-eco-14th", "toy-plan"}
            assert r.health()[1]["replica"]["switches"] == 1

        # the server goes away while the replicas serve
        chroma.stop()
        status, body, headers = replicas[0].ask("近岸海域水质要求是什么？")  # not a cached vector
        assert status == 503 and "Chroma" in body["error"] and CJK.search(body["error"]), body
        assert headers.get("retry-after") == "1" or headers.get("Retry-After") == "1"
        wait_until(
            "health reports the lost server",
            lambda: all((_health_or_none(r) or (0, {}))[0] == 503 for r in replicas),
            15,
            logs,
        )
        assert CJK.search(replicas[1].health()[1]["error"])

        # a replica started while the server is down waits and retries instead of exiting
        late = Replica(tmp_path / "r3", url, kb, tmp_path / "r3.log")
        replicas.append(late)
        logs = (*logs, late.log)
        wait_until(
            "the late replica says it will retry", lambda: "秒后重试" in late.log.read_text(), 60, logs
        )
        assert late.proc.poll() is None
        assert "Traceback" not in late.log.read_text()

        chroma.start()  # same port, same data
        late.wait_ready()
        wait_until("replicas answer again", lambda: all(r.ask()[0] == 200 for r in replicas), 30, logs)
        for r in replicas:
            status, body = r.health()
            assert status == 200 and body["index"] == b2 and body["replica"]["error"] is None
    finally:
        for r in replicas:
            stop(r.proc)


# ----------------------------------------------------------------------------- concurrent publishes, prune


@pytest.fixture()
def toy_kb(tmp_path: Path) -> Path:
    """The real kb/'s dictionary and lexicon with one small plan: builds take a second."""
    d = tmp_path / "toy-kb"
    shutil.copytree(ROOT / "kb", d, ignore=shutil.ignore_patterns("plans"))
    (d / "plans").mkdir()
    shutil.copy(ROOT / "tests" / "data" / "toy-plan.txt", d / "plans" / "toy-plan.txt")
    return d


@pytest.mark.server
def test_concurrent_publishes_stay_whole_and_prune_spares_builds_in_use(
    tmp_path: Path, chroma: ChromaServer, toy_kb: Path
) -> None:
    from policyqa.index import build_index, forget_client, open_index
    from policyqa.retrieve import search
    from policyqa.store.publish import _registry, heartbeat, list_builds, server

    url = chroma.url
    env = {"POLICYQA_CHROMA_URL": url, "POLICYQA_KB": str(toy_kb), "POLICYQA_KEEP_BUILDS": "10"}
    # in process (two threads, two homes) to save two interpreters' start-up; the publishes
    # overlap on the server as two hosts' would
    sa, sb = (Settings.from_env(app_env(tmp_path / h, **env)) for h in ("a", "b"))
    start = threading.Barrier(2)
    results: dict[str, Any] = {}

    def publish_from(name: str, settings: Settings) -> None:
        start.wait(timeout=30)
        try:
            results[name] = build_index(settings).build_id
        except BaseException as e:  # reported below
            results[name] = e

    threads = [threading.Thread(target=publish_from, args=x) for x in (("a", sa), ("b", sb))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    ba, bb = results["a"], results["b"]
    assert isinstance(ba, str) and isinstance(bb, str), results
    assert ba != bb  # same inputs, same second: still two builds

    s = Settings.from_env(app_env(tmp_path / "reader", **env))
    try:
        builds = {b.build_id: b for b in list_builds(s)}
        assert set(builds) == {ba, bb} and sum(b.current for b in builds.values()) == 1
        for bid in (ba, bb):  # the one that lost the pointer is whole too
            index = open_index(s, build_id=bid)
            assert index.build_id == bid and "toy-plan" in index.docs
            hits = search(index, "森林覆盖率", k=3)
            assert hits and any("dense" in h.sources for h in hits)

        again = build_index(sa)  # unchanged inputs: nothing rebuilt, but a's build is current again
        assert again.skipped and again.build_id == ba
        assert next(b for b in list_builds(s) if b.current).build_id == ba
        newest = build_index(sa, force=True).build_id

        # bb is older than newest and not current; a replica reports serving it now
        heartbeat(s, "replica-on-bb", bb)
        registry = _registry(server(s), create=False)
        registry.upsert(  # a replica that served ba long ago does not protect it
            ids=["replica:gone"],
            embeddings=[[0.0]],
            metadatas=[{"kind": "replica", "replica": "gone", "build_id": ba, "at": time.time() - 3600}],
        )
        r = cli(tmp_path / "reader", "builds", "--prune", "--keep", "1", "--json", **env)
        assert r.returncode == 0, r.stderr[-1500:]
        out = json.loads(r.stdout)
        assert out["pruned"] == [ba]
        left = {b["build_id"]: b for b in out["builds"]}
        assert (
            set(left) == {bb, newest}
            and left[newest]["current"]
            and left[bb]["replicas"] == ["replica-on-bb"]
        )
        names = chroma.collections()
        assert not any(n.startswith((f"pq-{ba}-", f"pqf-{ba}")) for n in names)
        assert f"pqf-{bb}" in names and f"pq-{bb}-units" in names
    finally:
        forget_client(s, None)


# ----------------------------------------------------------------------------- the README's nginx example


def nginx_example(api_a: str, api_b: str, listen: str) -> str:
    """The README's nginx example with local addresses (the text tested is the text documented)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- nginx-example -->", 1)[1].split("```nginx\n", 1)[1].split("```", 1)[0]
    assert "10.0.0.11:7860" in block and "listen 80;" in block
    return (
        block.replace("10.0.0.11:7860", api_a)
        .replace("10.0.0.12:7860", api_b)
        .replace("listen 80;", f"listen {listen};")
    )


@pytest.mark.server
def test_readme_nginx_example_spreads_requests_and_survives_a_lost_replica(
    tmp_path: Path, chroma: ChromaServer, toy_kb: Path
) -> None:
    nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if nginx is None:
        pytest.skip("nginx is not installed (.ci/run installs Debian's nginx)")
    ingest(tmp_path / "builder", chroma.url, toy_kb)
    replicas = [Replica(tmp_path / f"r{n}", chroma.url, toy_kb, tmp_path / f"r{n}.log") for n in (1, 2)]
    port = free_port()
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    site = nginx_example(*(r.base.removeprefix("http://") for r in replicas), f"127.0.0.1:{port}")
    temp = " ".join(
        f"{k}_temp_path {prefix / k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (prefix / "nginx.conf").write_text(
        f"worker_processes 1;\npid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'};\n"
        f"events {{ worker_connections 64; }}\n"
        f"http {{\naccess_log {prefix / 'access.log'};\n{temp}\n{site}\n}}\n"
    )
    proc = subprocess.Popen(
        [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=open(prefix / "stderr.log", "w"),  # noqa: SIM115 - closed with the process
    )
    front = f"http://127.0.0.1:{port}"
    logs = (*(r.log for r in replicas), prefix / "error.log")
    try:
        for r in replicas:
            r.wait_ready()

        def health() -> tuple[int, dict, dict] | None:
            try:
                return http("GET", f"{front}/v1/health", timeout=5)
            except OSError:
                return None

        wait_until("nginx answers", lambda: (health() or (0,))[0] == 200, 30, logs)
        served = {http("GET", f"{front}/v1/health")[1]["replica"]["replica"] for _ in range(8)}
        assert len(served) == 2  # both replicas get requests
        status, body, _ = http("POST", f"{front}/v1/ask", {"question": "森林覆盖率目标是多少？"})
        assert status == 200 and body["citations"], body
        with urllib.request.urlopen(f"{front}/", timeout=30) as page:  # the web page, pinned per client
            assert page.status == 200

        stop(replicas[0].proc)  # one replica gone: nginx moves on to the other
        for _ in range(4):
            status, body, _ = http("POST", f"{front}/v1/ask", {"question": "森林覆盖率目标是多少？"})
            assert status == 200, body
    finally:
        stop(proc)
        for r in replicas:
            stop(r.proc)
