"""``python -m eval.bench --replicas 1,100``: replicas over one Chroma server, at N documents.

For each N, a library of N documents (``eval.bench_library.make_kb``: the plan, the two
regulations, then copies under new ids) is published from one home to a ``chroma run`` started
on a free loopback port in a temp dir (the publishing home is kept across sizes, so copies'
passage vectors are cache hits). Then, each in a fresh, empty ``POLICYQA_HOME``:

1. A child process (``--open-child``) times the steps of opening the published build: imports,
   reading the ``current`` pointer, downloading the build's files (``pqf-<build>``), opening the
   local copy (units, documents, stored BM25, vector-store handles; the embedder loaded apart),
   opening again from the cached copy, the app's warm-up (``retrieve.warm``) and the first ``ask``. For the BM25 choice it also times
   what rebuilding BM25 from the published units would cost instead (jieba + ``bm25s`` index of
   every retrievable unit, no save) against fetching the stored BM25 files alone.
2. ``python app.py`` as a replica: wall time from process start to the first 200 answer of
   ``POST /v1/ask``.
3. With that replica running (``POLICYQA_POLL_SECONDS=1``), a forced re-publish: time from the
   end of ``policyqa ingest`` to the replica's ``/v1/health`` naming the new build.

Left out: several hosts (everything is on loopback), load on the replicas (``python -m eval.bench``
measures one app). Writes ``eval/reports/replicas-<date>-<sha>.md``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "2025年森林覆盖率目标是多少？"


def _heartbeat(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def start_chroma(data: Path, log: Path) -> tuple[subprocess.Popen, str]:
    from eval.bench import free_port

    port = free_port()
    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [chroma, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while not _heartbeat(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"chroma run did not start: {log.read_text()[-1500:]}")
        time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


def open_child() -> int:
    """``--open-child``: time opening the server's current build into an empty home; one JSON line."""
    t0 = time.perf_counter()
    import bm25s
    import chromadb  # noqa: F401 - imported here so that the phases below time work, not imports
    import langchain_chroma  # noqa: F401

    from policyqa.answer import ask
    from policyqa.embed import embedder_from_name
    from policyqa.index import index_text, open_index
    from policyqa.retrieve import warm
    from policyqa.settings import Settings
    from policyqa.store.publish import current_build, files_collection, local_copy, server

    out: dict[str, Any] = {"import_s": time.perf_counter() - t0}
    s = Settings.from_env()
    t = time.perf_counter()
    bid = current_build(s)
    out["pointer_s"] = time.perf_counter() - t
    t = time.perf_counter()
    path = local_copy(s, bid)
    out["fetch_s"] = time.perf_counter() - t
    out["copy_mb"] = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6
    t = time.perf_counter()
    embedder = embedder_from_name(s.embedder)
    out["embedder_s"] = time.perf_counter() - t
    t = time.perf_counter()
    index = open_index(s, embedder=embedder, build_id=bid)
    out["open_s"] = time.perf_counter() - t
    t = time.perf_counter()
    open_index(s, embedder=embedder, build_id=bid)
    out["reopen_s"] = time.perf_counter() - t
    t = time.perf_counter()
    warm(index)  # what app.py does before it listens (sentence token sets of every unit)
    out["warm_s"] = time.perf_counter() - t
    t = time.perf_counter()
    a = ask(index, QUESTION)
    out["first_ask_s"] = time.perf_counter() - t
    out["answered"] = a.answerable

    # the alternative: BM25 rebuilt from the units at open (tokenise + index; nothing saved)
    t = time.perf_counter()
    bm25s.BM25().index([index.tokenizer(index_text(u)) or ["∅"] for u in index.rows], show_progress=False)
    out["bm25_rebuild_s"] = time.perf_counter() - t
    # against fetching only the stored BM25 files
    col = server(s).get_collection(files_collection(bid), embedding_function=None)
    paths = sorted(p.relative_to(path).as_posix() for p in (path / "bm25").rglob("*") if p.is_file())
    t = time.perf_counter()
    got = 0
    for i in range(0, len(paths), 50):
        got += len(col.get(where={"path": {"$in": paths[i : i + 50]}}, include=["metadatas"])["ids"])
    out["bm25_fetch_s"] = time.perf_counter() - t
    out["bm25_records"] = got
    out["bm25_mb"] = sum((path / p).stat().st_size for p in paths) / 1e6
    out["documents"] = len(index.docs)
    out["units"] = len(index.units)
    print(json.dumps(out))
    return 0


def _health(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/v1/health", timeout=5) as r:
        return json.load(r)


def run_size(n: int, url: str, publisher: Path, work: Path, log: Any) -> dict[str, Any]:
    from eval.bench import child_env, run_measured, start_app, stop_app
    from eval.bench_library import make_kb

    kb = make_kb(work / f"n{n}", n)
    env = {"POLICYQA_CHROMA_URL": url, "POLICYQA_KB": str(kb), "POLICYQA_KEEP_BUILDS": "2"}
    row: dict[str, Any] = {"n": n, "load": os.getloadavg()[0]}
    pr = run_measured(
        [sys.executable, "-m", "policyqa.cli", "ingest", "--json"],
        child_env(POLICYQA_HOME=str(publisher), **env),
    )
    if pr.returncode != 0:
        raise RuntimeError(f"publish failed: {pr.stderr[-2000:]}")
    built = json.loads(pr.stdout)
    row.update(publish_s=pr.seconds, embedded=built["embedded"], build_id=built["build_id"])
    log(
        f"  N={n}: published {built['build_id']} in {pr.seconds:.1f} s ({built['embedded']} passages embedded)"
    )

    pr = run_measured(
        [sys.executable, "-m", "eval.bench_replicas", "--open-child"],
        child_env(POLICYQA_HOME=str(work / f"open-{n}"), **env),
    )
    if pr.returncode != 0:
        raise RuntimeError(f"open child failed: {pr.stderr[-2000:]}")
    row["open"] = json.loads(pr.stdout.strip().splitlines()[-1])
    row["open"]["rss_mb"] = pr.maxrss_mb
    log(f"  N={n}: open {json.dumps(row['open'])}")

    app_env = child_env(POLICYQA_HOME=str(work / f"replica-{n}"), POLICYQA_POLL_SECONDS="1", **env)
    app = start_app(app_env, QUESTION)
    try:
        row["replica_first_answer_s"] = app.cold_start_s
        log(f"  N={n}: replica start to first answer {app.cold_start_s:.1f} s")
        pr = run_measured(
            [sys.executable, "-m", "policyqa.cli", "ingest", "--force", "--json"],
            child_env(POLICYQA_HOME=str(publisher), **env),
        )
        if pr.returncode != 0:
            raise RuntimeError(f"re-publish failed: {pr.stderr[-2000:]}")
        new = json.loads(pr.stdout)["build_id"]
        row["republish_s"] = pr.seconds
        t = time.perf_counter()
        while _health(app.base).get("index") != new:
            if time.perf_counter() - t > 300:
                raise RuntimeError("the replica did not switch within 300 s")
            time.sleep(0.1)
        row["switch_s"] = time.perf_counter() - t
        log(f"  N={n}: re-published in {pr.seconds:.1f} s; replica switched {row['switch_s']:.1f} s later")
    finally:
        stop_app(app)
    return row


def write_report(result: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"replicas-{result['date']}-{result['sha']}.md"
    f1 = lambda v: f"{v:.1f}"  # noqa: E731
    f2 = lambda v: f"{v:.2f}"  # noqa: E731
    rows = result["sizes"]
    L = [
        f"# 副本基准 · {result['date']} · {result['sha']}",
        "",
        f"命令：`{result['command']}`。向量模型 {result['embedder']}；Chroma 服务与副本同机（回环地址）。"
        f"{result['cpus']} 核共享机器，负载均值（1 分钟）开始 {result['load_start']:.2f}、结束 {result['load_end']:.2f}："
        "绝对时间有噪声，看同一次运行里的比较。",
        "",
        "## 副本从启动到第一个回答",
        "",
        "| 文档数 | 发布（ingest）s | 副本启动到第一个回答 s | 重新发布 s | 发布后副本切换 s（轮询 1 s） | 负载均值 |",
        "| --- | --- | --- | --- | --- | --- |",
        *[
            f"| {r['n']} | {f1(r['publish_s'])} | {f1(r['replica_first_answer_s'])} | {f1(r['republish_s'])} | "
            f"{f1(r['switch_s'])} | {r['load']:.1f} |"
            for r in rows
        ],
        "",
        "## 打开已发布的构建（空 POLICYQA_HOME，子进程）",
        "",
        "| 文档数 | 单元 | 导入 s | 读指针 s | 下载文件 s（MB） | 加载向量模型 s | 打开本地副本 s | 再次打开（已缓存）s | 预热 s | 第一个 ask s | 峰值内存 MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *[
            f"| {r['n']} | {r['open']['units']} | {f2(r['open']['import_s'])} | {f2(r['open']['pointer_s'])} | "
            f"{f2(r['open']['fetch_s'])}（{f1(r['open']['copy_mb'])}） | {f2(r['open']['embedder_s'])} | "
            f"{f2(r['open']['open_s'])} | {f2(r['open']['reopen_s'])} | {f2(r['open']['warm_s'])} | "
            f"{f2(r['open']['first_ask_s'])} | {r['open']['rss_mb']:.0f} |"
            for r in rows
        ],
        "",
        "## BM25：存在服务上，还是打开时用单元重建",
        "",
        "| 文档数 | 下载已存的 BM25 文件 s（MB） | 从单元重建 BM25 s（jieba + bm25s，不保存） |",
        "| --- | --- | --- |",
        *[
            f"| {r['n']} | {f2(r['open']['bm25_fetch_s'])}（{f1(r['open']['bm25_mb'])}） | {f2(r['open']['bm25_rebuild_s'])} |"
            for r in rows
        ],
        "",
        "选择：BM25 随构建一起发布（`pqf-<build>` 里的 `bm25/` 文件），副本下载后直接加载。",
        "",
    ]
    md.write_text("\n".join(L), encoding="utf-8")
    return md


def main(sizes: list[int], out_dir: Path, command: str) -> int:
    from eval.run import git_sha
    from policyqa.settings import Settings

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    work = Path(tempfile.mkdtemp(prefix="pq-bench-replicas-"))
    proc, url = start_chroma(work / "chroma-data", work / "chroma.log")
    result: dict[str, Any] = {
        "date": date.today().isoformat(),
        "sha": git_sha(),
        "command": command,
        "embedder": Settings.from_env().embedder,
        "cpus": os.cpu_count(),
        "load_start": os.getloadavg()[0],
        "sizes": [],
    }
    try:
        for n in sizes:
            result["sizes"].append(run_size(n, url, work / "publisher", work, log))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    result["load_end"] = os.getloadavg()[0]
    md = write_report(result, out_dir)
    (out_dir / (md.stem + ".json")).write_text(
        json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    print(f"report: {md}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--open-child"]:
        sys.exit(open_child())
    sys.exit(main([1], ROOT / "eval" / "reports", "python -m eval.bench_replicas"))
