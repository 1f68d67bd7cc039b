"""``python -m eval.bench``: speed, memory and load, ours and the naive baseline in one run.

What is measured (medians and tail percentiles over repeated runs; figures depend on the
machine, so they are reported against the targets below, never asserted in tests):

1. Ingest of the whole plan as a subprocess (``python -m policyqa.cli ingest --json`` with a
   fresh ``POLICYQA_HOME`` in a temp dir): cold (empty embedding cache), warm (second run,
   nothing to do) and a forced rebuild on a warm cache; the baseline's build (chunk + embed)
   the same way. Wall time and peak RSS of each process (``os.wait4`` rusage).
2. In process, after warm-up, over the gold questions of ``eval/questions.jsonl`` (repeated):
   ``search`` and extractive ``ask`` latency for ours and for the baseline, the bare query
   embedding (``index.embedder.embed_query_np``) as the floor, and ask's time by stage.
3. Through the app's HTTP APIs: ``python app.py`` as a subprocess on a free loopback port
   (query-vector cache off), cold start to the first answer, then 1/4/16/64 concurrent clients
   (threads), each sending a fixed number of questions, first through the JSON API (one
   ``POST /v1/ask``) and then through gradio's (``POST /gradio_api/call/ask``, then its event
   stream): throughput, latency p50/p95/p99, errors, RSS of the app's process tree. Then, on a
   second app with the default cache, a burst of 16 clients asking only the example questions.

Writes ``eval/reports/bench-<date>-<sha>.md`` and a PNG chart of latency against concurrency.
Options: ``--library N[,N…]`` (the library-size benchmark, eval/bench_library.py), ``--quick`` (one ingest run, fewer repeats and questions, for a smoke run),
``--skip-ingest``, ``--skip-http``. The index for parts 2 and 3 is the one in
``POLICYQA_HOME`` (built first if missing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from eval.run import REPORTS, git_sha, load_questions

ROOT = Path(__file__).resolve().parents[1]

# The targets of the issue "Speed, load and hostile input": (key, label, limit, unit, higher_is_better).
TARGETS = [
    ("ask_p95_ms", "抽取式 ask p95（进程内）", 100.0, "ms", False),
    ("http16_p95_ms", "HTTP ask p95（JSON API，16 个并发客户端）", 300.0, "ms", False),
    ("http16_errors", "HTTP 错误数（JSON API，16 个并发客户端）", 0, "", False),
    ("http16_qps", "吞吐（JSON API，16 个并发客户端）", 20.0, "问/秒", True),
    ("ask_over_embed", "ask p50 / 查询向量 p50", 2.0, "×", False),
    ("cold_ingest_s", "冷 ingest", 60.0, "s", False),
    ("warm_ingest_s", "热 ingest（无事可做）", 3.0, "s", False),
    ("app_rss_mb", "应用常驻内存（进程树，负载峰值）", 1024.0, "MB", False),
]


# ----------------------------------------------------------------------------- statistics


def pct(xs: list[float], q: float) -> float:
    """The q-th percentile (0–100), linear interpolation; NaN for no data."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = (len(s) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(xs: list[float]) -> dict[str, float]:
    return {
        "n": len(xs),
        "p50": pct(xs, 50),
        "p95": pct(xs, 95),
        "p99": pct(xs, 99),
        "max": max(xs, default=0),
    }


def fmt(v: Any, digits: int = 1) -> str:
    if isinstance(v, float):
        return "—" if v != v else f"{v:.{digits}f}"
    return str(v)


# ----------------------------------------------------------------------------- subprocesses


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    env.update(overrides)
    return env


@dataclass
class ProcRun:
    seconds: float
    maxrss_mb: float
    returncode: int
    stdout: str
    stderr: str


def run_measured(cmd: list[str], env: dict[str, str], timeout: float = 900) -> ProcRun:
    """Run ``cmd`` to completion; wall time and the process's own peak RSS (``os.wait4``)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        secs = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it is reaped
        out.seek(0)
        err.seek(0)
        return ProcRun(secs, usage.ru_maxrss / 1024, proc.returncode, out.read(), err.read())


def ingest_runs(settings: Any, runs: int, log: Any) -> dict[str, Any]:
    """Cold / warm / forced-rebuild ingest of ours, cold / warm build of the baseline."""
    rows: dict[str, list[ProcRun]] = {k: [] for k in ("cold", "warm", "force", "b_cold", "b_warm")}
    inner: dict[str, list[float]] = {k: [] for k in rows}
    for r in range(runs):
        home = Path(tempfile.mkdtemp(prefix="pq-bench-home-"))
        try:
            env = child_env(
                POLICYQA_HOME=str(home),
                POLICYQA_KB=str(Path(settings.kb_dir).resolve()),
                POLICYQA_EMBEDDER=settings.embedder,
            )
            ingest = [sys.executable, "-m", "policyqa.cli", "ingest", "--json"]
            for key, cmd in (("cold", ingest), ("warm", ingest), ("force", [*ingest, "--force"])):
                pr = run_measured(cmd, env)
                if pr.returncode != 0:
                    raise RuntimeError(f"ingest ({key}) failed: {pr.stderr[-2000:]}")
                rows[key].append(pr)
                inner[key].append(json.loads(pr.stdout)["seconds"])
                log(f"  ingest {key} #{r + 1}: {pr.seconds:.2f} s, peak RSS {pr.maxrss_mb:.0f} MB")
            cache = home / "baseline-cache"
            bcmd = [sys.executable, "-m", "eval.bench", "--baseline-build", str(cache)]
            for key in ("b_cold", "b_warm"):
                pr = run_measured(bcmd, env)
                if pr.returncode != 0:
                    raise RuntimeError(f"baseline build failed: {pr.stderr[-2000:]}")
                rows[key].append(pr)
                inner[key].append(json.loads(pr.stdout.strip().splitlines()[-1])["seconds"])
                log(f"  baseline {key[2:]} #{r + 1}: {pr.seconds:.2f} s, peak RSS {pr.maxrss_mb:.0f} MB")
        finally:
            shutil.rmtree(home, ignore_errors=True)
    return {
        k: {
            "wall": summary([p.seconds for p in v]),
            "inner": summary(inner[k]),
            "rss": summary([p.maxrss_mb for p in v]),
        }
        for k, v in rows.items()
    }


def baseline_build_main(cache_dir: Path) -> int:
    """``--baseline-build DIR``: build the baseline once (the subprocess measured above)."""
    from eval.baseline import build_baseline
    from ingest.load import load_kb
    from policyqa.embed import embedder_from_name
    from policyqa.settings import Settings

    settings = Settings.from_env()
    b = build_baseline(load_kb(settings.kb_dir), embedder_from_name(settings.embedder), cache_dir)
    print(json.dumps({"seconds": round(b.build_seconds, 3), "chunks": len(b.chunks)}))
    return 0


# ----------------------------------------------------------------------------- in process


def in_process(settings: Any, repeat: int, limit: int | None, log: Any) -> dict[str, Any]:
    from eval.baseline import build_baseline
    from ingest.load import load_kb
    from policyqa.answer import ask
    from policyqa.errors import IndexMissingError
    from policyqa.index import build_index, open_index
    from policyqa.retrieve import search

    # no query-vector cache: each question is asked `repeat` times, and a cached repeat would
    # make ask look cheaper than the embedding it stands on
    settings = settings.with_(query_cache=0)
    t0 = time.perf_counter()
    try:
        index = open_index(settings)
    except IndexMissingError:
        log("  no index in POLICYQA_HOME: building it first")
        build_index(settings)
        t0 = time.perf_counter()
        index = open_index(settings)
    open_s = time.perf_counter() - t0
    baseline = build_baseline(load_kb(settings.kb_dir), index.embedder, settings.cache_dir)
    questions = load_questions("all")[:limit]
    embedder = index.embedder

    for q in questions[:10]:  # warm-up: jieba, chroma segments, memo tables, CPU caches
        ask(index, q["question"], q.get("history") or [])
        search(index, q["question"])
        baseline.ask(q["question"])

    times: dict[str, list[float]] = {k: [] for k in ("embed", "search", "ask", "b_search", "b_ask")}
    stages: dict[str, list[float]] = {}
    modes: dict[str, int] = {}
    for r in range(repeat):
        for q in questions:
            text, hist = q["question"], q.get("history") or []
            t = time.perf_counter()
            embedder.embed_query_np(text)
            times["embed"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            search(index, text)
            times["search"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            a = ask(index, text, hist)
            times["ask"].append((time.perf_counter() - t) * 1000)
            for k, v in a.timings_ms.items():
                stages.setdefault(k, []).append(v)
            if r == 0:
                modes[a.mode] = modes.get(a.mode, 0) + 1
            t = time.perf_counter()
            baseline.search(text, k=5)
            times["b_search"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            baseline.ask(text)
            times["b_ask"].append((time.perf_counter() - t) * 1000)
        log(f"  in-process pass {r + 1}/{repeat}: ask p50 {pct(times['ask'][-len(questions) :], 50):.1f} ms")
    floor = pct(times["embed"], 50)
    return {
        "open_s": open_s,
        "omp_threads": os.environ.get("OMP_NUM_THREADS", "默认"),
        # stalls: a query embedding 10× slower than its median (OpenMP threads descheduled on a
        # busy machine show up here, in ours and the baseline alike)
        "embed_stalls": sum(1 for x in times["embed"] if x > 10 * floor),
        "questions": len(questions),
        "repeat": repeat,
        "modes": modes,
        "times": {k: summary(v) for k, v in times.items()},
        "stages": {k: summary(v) for k, v in sorted(stages.items())},
        "embedder": index.manifest["embedder"]["name"],
        "build_id": index.build_id,
        "baseline_chunks": len(baseline.chunks),
    }


# ----------------------------------------------------------------------------- HTTP


def http_ask(base: str, question: str, timeout: float = 120, api: str = "json") -> dict[str, Any]:
    """One question over HTTP. ``api``: "json" (``POST /v1/ask``, one request) or "gradio"
    (``POST /gradio_api/call/ask``, then read its event stream). Raises on HTTP errors and on
    error answers."""
    if api == "json":
        req = urllib.request.Request(
            f"{base}/v1/ask",
            data=json.dumps({"question": question}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:
            out = json.loads(r.read())
    else:
        body = json.dumps({"data": [question, ""]}).encode()
        req = urllib.request.Request(
            f"{base}/gradio_api/call/ask", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:
            event_id = json.loads(r.read())["event_id"]
        with urllib.request.urlopen(f"{base}/gradio_api/call/ask/{event_id}", timeout=timeout) as r:
            stream = r.read().decode("utf-8")
        events = re.findall(r"^event: (\w+)\ndata: (.*)$", stream, re.M)
        if not events or events[-1][0] != "complete":
            raise RuntimeError(f"no answer: {stream[-300:]!r}")
        out = json.loads(events[-1][1])[0]
    if out.get("mode") == "error":
        raise RuntimeError(f"error answer: {out.get('answer')!r}")
    return out


def tree_rss_mb(pid: int) -> float:
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for x in procs:
        try:
            total += x.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


@dataclass
class Level:
    clients: int
    per_client: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def run_level(base: str, clients: int, per_client: int, questions: list[str], api: str = "json") -> Level:
    """``clients`` closed-loop clients (the next question only after the answer), each sending
    ``per_client`` questions, client c taking questions[c·per_client …] (wrapping around)."""
    level = Level(clients, per_client)
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client(c: int) -> None:
        start.wait()
        for i in range(per_client):
            q = questions[(c * per_client + i) % len(questions)]
            t = time.perf_counter()
            try:
                http_ask(base, q, api=api)
                ms = (time.perf_counter() - t) * 1000
                with lock:
                    level.latencies_ms.append(ms)
            except Exception as e:  # counted, never fatal: errors are a result
                detail = (
                    e.read().decode("utf-8", "replace")[:120] if isinstance(e, urllib.error.HTTPError) else ""
                )
                with lock:
                    level.errors.append(f"{type(e).__name__}: {e} {detail}".strip()[:200])

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(timeout=600)
    level.wall_s = time.perf_counter() - t0
    return level


def level_row(lv: Level) -> dict[str, Any]:
    s = summary(lv.latencies_ms)
    return {
        "clients": lv.clients,
        "requests": lv.clients * lv.per_client,
        "ok": len(lv.latencies_ms),
        "errors": len(lv.errors),
        "error_kinds": sorted({e[:90] for e in lv.errors})[:3],
        "wall_s": lv.wall_s,
        "qps": len(lv.latencies_ms) / lv.wall_s if lv.wall_s else 0.0,
        **{k: s[k] for k in ("p50", "p95", "p99", "max")},
    }


@dataclass
class RunningApp:
    proc: subprocess.Popen
    base: str
    logfile: Any
    cold_start_s: float


def start_app(env: dict[str, str], first_question: str) -> RunningApp:
    """``python app.py`` on a free port; returns once it has answered ``first_question``."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    logfile = tempfile.NamedTemporaryFile("w+", prefix="pq-bench-app-", suffix=".log", delete=False)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=logfile,
        stderr=subprocess.STDOUT,
    )
    app = RunningApp(proc, base, logfile, 0.0)
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"app exited with {proc.returncode}: {Path(logfile.name).read_text()[-2000:]}"
                )
            try:
                http_ask(base, first_question, timeout=30)
                break
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise RuntimeError("app gave no answer within 180 s") from None
                time.sleep(0.1)
    except BaseException:
        stop_app(app)
        raise
    app.cold_start_s = time.perf_counter() - t0
    return app


def stop_app(app: RunningApp) -> None:
    if app.proc.poll() is None:
        app.proc.terminate()
        try:
            app.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            app.proc.kill()
            app.proc.wait(timeout=15)
    app.logfile.close()
    os.unlink(app.logfile.name)


def http_load(settings: Any, levels: list[int], per_client: int, log: Any) -> dict[str, Any]:
    """Start the app, time cold start to first answer, then load it at each concurrency level,
    through the JSON API and through gradio's API; then a burst of repeated questions.

    The levels run with the query-vector cache off (POLICYQA_QUERY_CACHE=0): the gold questions
    repeat across levels, and every measured question should pay for its embedding. The burst
    (every client asking the app's example questions) runs on a second app with the default
    cache, to show what repetition buys and say so separately."""
    help_run = subprocess.run(
        [sys.executable, "app.py", "--help"], cwd=ROOT, env=child_env(), capture_output=True, timeout=60
    )
    if help_run.returncode != 0:
        return {"skipped": "app.py --help failed: the app is not there yet"}
    env = child_env(
        POLICYQA_HOME=str(Path(settings.home).resolve()),
        POLICYQA_KB=str(Path(settings.kb_dir).resolve()),
        POLICYQA_EMBEDDER=settings.embedder,
    )
    env.pop("POLICYQA_LLM_BASE_URL", None)  # extractive answers: the LLM is not what is measured
    questions = [q["question"] for q in load_questions("all") if not q.get("history")]
    out: dict[str, Any] = {"levels": [], "gradio_levels": [], "per_client": per_client}
    app = start_app({**env, "POLICYQA_QUERY_CACHE": "0"}, questions[0])
    try:
        base = app.base
        out["cold_start_s"] = app.cold_start_s
        out["rss_idle_mb"] = tree_rss_mb(app.proc.pid)
        out["health"] = json.loads(urllib.request.urlopen(f"{base}/v1/health", timeout=10).read())
        log(f"  app: first answer {out['cold_start_s']:.2f} s after spawn, RSS {out['rss_idle_mb']:.0f} MB")
        for q in questions[:10]:  # warm-up, both APIs
            http_ask(base, q)
            http_ask(base, q, api="gradio")
        peak = [out["rss_idle_mb"]]
        stop_sampling = threading.Event()

        def sample() -> None:
            while not stop_sampling.wait(0.2):
                peak.append(tree_rss_mb(app.proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        for api, key in (("json", "levels"), ("gradio", "gradio_levels")):
            for c in levels:
                row = level_row(run_level(base, c, per_client, questions, api=api))
                out[key].append(row)
                log(
                    f"  {api:>6} {c:>3} clients: {row['qps']:.1f} q/s, p50 {row['p50']:.0f} ms, "
                    f"p95 {row['p95']:.0f} ms, p99 {row['p99']:.0f} ms, errors {row['errors']}"
                )
        stop_sampling.set()
        sampler.join(timeout=5)
        out["rss_peak_mb"] = max(peak)
        out["rss_after_mb"] = tree_rss_mb(app.proc.pid)
        # the server still answers after the heaviest level
        out["after_ok"] = bool(http_ask(base, questions[0]).get("answerable"))
    finally:
        stop_app(app)
    if 16 in levels:
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported
        from policyqa.webapp import EXAMPLES

        app = start_app(env, EXAMPLES[0])
        try:
            row = level_row(run_level(app.base, 16, per_client, list(EXAMPLES)))
            health = json.loads(urllib.request.urlopen(f"{app.base}/v1/health", timeout=10).read())
            out["burst"] = {**row, "questions": list(EXAMPLES), "query_cache": health.get("query_cache")}
            log(
                f"  burst of {len(EXAMPLES)} repeated questions, 16 clients: {row['qps']:.1f} q/s, p95 {row['p95']:.0f} ms"
            )
        finally:
            stop_app(app)
    return out


# ----------------------------------------------------------------------------- report


def targets(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(label, target, measured, met) rows; "not measured" where a part was skipped."""
    ip = result.get("in_process") or {}
    http = result.get("http") or {}
    ing = result.get("ingest") or {}
    lv16 = next((x for x in http.get("levels", []) if x["clients"] == 16), None)
    t = ip.get("times", {})
    got: dict[str, float | None] = {
        "ask_p95_ms": t.get("ask", {}).get("p95"),
        "http16_p95_ms": lv16["p95"] if lv16 else None,
        "http16_errors": lv16["errors"] if lv16 else None,
        "http16_qps": lv16["qps"] if lv16 else None,
        "ask_over_embed": (t["ask"]["p50"] / t["embed"]["p50"]) if t else None,
        "cold_ingest_s": ing.get("cold", {}).get("wall", {}).get("p50"),
        "warm_ingest_s": ing.get("warm", {}).get("wall", {}).get("p50"),
        "app_rss_mb": http.get("rss_peak_mb"),
    }
    rows = []
    for key, label, limit, unit, higher in TARGETS:
        v = got[key]
        goal = f"{'≥' if higher else '≤'} {fmt(float(limit), 0) if isinstance(limit, float) else limit} {unit}".strip()
        if v is None:
            rows.append((label, goal, "未测", "—"))
            continue
        met = v >= limit if higher else v <= limit
        digits = 2 if key == "ask_over_embed" else 1
        shown = f"{fmt(float(v), 0 if key == 'http16_errors' else digits)} {unit}".strip()
        rows.append((label, goal, shown, "达到 ✅" if met else "未达到 ❌"))
    return rows


def write_report(result: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"bench-{result['date']}-{result['sha']}"
    md, png = out_dir / f"{stem}.md", out_dir / f"{stem}.png"
    m = result["machine"]
    L = [
        f"# 性能与负载基准 · {result['date']} · {result['sha']}",
        "",
        f"命令：`{result['command']}`。机器：{m['cpus']} 核，{m['python']}，{m['platform']}；"
        f"负载均值（1 分钟）开始 {m['load_start']:.2f}、结束 {m['load_end']:.2f}。"
        "机器是共享的、有噪声：看中位数和比值，尾部延迟仅供参考。用时 "
        f"{result['elapsed_s']:.0f} 秒。",
        "",
        "## 目标",
        "",
        "| 目标 | 要求 | 实测 | 结论 |",
        "| --- | --- | --- | --- |",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in targets(result)],
    ]
    ing = result.get("ingest")
    if ing:
        L += [
            "",
            f"## 构建索引（子进程，{ing['cold']['wall']['n']} 轮，每轮新的临时 POLICYQA_HOME）",
            "",
            "墙钟 = 进程从启动到退出（含导入与模型加载）；内部 = 程序自己报告的构建用时；"
            "峰值内存 = 该进程的 ru_maxrss。",
            "",
            "| 系统 | 场景 | 墙钟 p50 (s) | 墙钟 max (s) | 内部 p50 (s) | 峰值内存 p50 (MB) |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        names = {
            "cold": ("本系统 `policyqa ingest`", "冷（空向量缓存）"),
            "warm": ("本系统 `policyqa ingest`", "热（第二次，无事可做）"),
            "force": ("本系统 `policyqa ingest --force`", "重建（向量已缓存）"),
            "b_cold": ("基线（500 字切块 + 同一向量模型）", "冷（空向量缓存）"),
            "b_warm": ("基线", "热（向量已缓存）"),
        }
        for k, (who, what) in names.items():
            r = ing[k]
            L.append(
                f"| {who} | {what} | {fmt(r['wall']['p50'], 2)} | {fmt(r['wall']['max'], 2)} | "
                f"{fmt(r['inner']['p50'], 2)} | {fmt(r['rss']['p50'], 0)} |"
            )
    ip = result.get("in_process")
    if ip:
        t = ip["times"]
        L += [
            "",
            f"## 进程内延迟（{ip['questions']} 道金标问题 × {ip['repeat']} 轮，预热后）",
            "",
            f"索引 {ip['build_id']}，向量模型 {ip['embedder']}；打开索引用时 {ip['open_s']:.2f} s；"
            f"基线 {ip['baseline_chunks']} 个切块。本系统的回答方式：{ip['modes']}。",
            "",
            "| 操作 | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |",
            "| --- | --- | --- | --- | --- |",
        ]
        for k, label in (
            ("embed", "仅查询向量（下限）`embed_query_np`"),
            ("search", "本系统 `search`"),
            ("ask", "本系统 `ask`（抽取式）"),
            ("b_search", "基线 search（top-5）"),
            ("b_ask", "基线 ask（首个切块）"),
        ):
            s = t[k]
            L.append(f"| {label} | {fmt(s['p50'])} | {fmt(s['p95'])} | {fmt(s['p99'])} | {fmt(s['max'])} |")
        L += [
            "",
            f"比值：ask p50 / 查询向量 p50 = **{t['ask']['p50'] / t['embed']['p50']:.2f}**；"
            f"ask p50 / 基线 ask p50 = {t['ask']['p50'] / t['b_ask']['p50']:.2f}；"
            f"search p50 / 基线 search p50 = {t['search']['p50'] / t['b_search']['p50']:.2f}。",
            "",
            f"查询向量比中位数慢 10 倍以上的次数：{ip['embed_stalls']} / {t['embed']['n']}"
            f"（OMP_NUM_THREADS={ip['omp_threads']}；共享机器上 OpenMP 线程被抢占时出现，"
            "本系统与基线都受影响）。",
            "",
            "ask 各阶段（`Answer.timings_ms`，p50 / p95 ms）："
            + "；".join(f"{k} {fmt(v['p50'])} / {fmt(v['p95'])}" for k, v in ip["stages"].items())
            + "。",
        ]
    http = result.get("http")
    g16 = next((r for r in (http or {}).get("gradio_levels", []) if r["clients"] == 16), None)
    if g16:
        L += [
            "",
            f"同样 16 个客户端走 gradio 的 API（`/gradio_api/call/ask` + 事件流）：p95 {g16['p95']:.0f} ms，"
            f"吞吐 {g16['qps']:.1f} 问/秒，错误 {g16['errors']}。",
        ]
    if http and "skipped" not in http:
        L += [
            "",
            f"## 通过 HTTP API 的负载（`python app.py`，每个客户端 {http['per_client']} 个问题，"
            "线程客户端，127.0.0.1，查询向量缓存关闭）",
            "",
            "客户端与服务在同一台 2 核机器上，客户端线程也占 CPU。服务端：每个 API 同时计算 "
            f"{http['health'].get('concurrency')} 个回答（POLICYQA_CONCURRENCY），"
            f"最多排队 {http['health'].get('queue_max')} 个（POLICYQA_QUEUE_MAX）；"
            "并发的问题合并为一次向量模型调用（`QueryBatcher`）。",
            "",
            f"冷启动到第一个回答：{http['cold_start_s']:.2f} s。常驻内存（进程树 RSS）："
            f"空闲 {http['rss_idle_mb']:.0f} MB，负载峰值 {http['rss_peak_mb']:.0f} MB，"
            f"负载后 {http['rss_after_mb']:.0f} MB。最重一级之后服务仍正常回答："
            f"{'是' if http['after_ok'] else '否'}。",
            "",
            "| API | 并发客户端 | 请求 | 成功 | 错误 | 吞吐 (问/秒) | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for api, key in (("JSON `/v1/ask`", "levels"), ("gradio `/call/ask`", "gradio_levels")):
            for r in http.get(key, []):
                L.append(
                    f"| {api} | {r['clients']} | {r['requests']} | {r['ok']} | {r['errors']} | {fmt(r['qps'])} | "
                    f"{fmt(r['p50'], 0)} | {fmt(r['p95'], 0)} | {fmt(r['p99'], 0)} | {fmt(r['max'], 0)} |"
                )
        one = next((r for r in http["levels"] if r["clients"] == 1), None)
        g1 = next((r for r in http.get("gradio_levels", []) if r["clients"] == 1), None)
        if one and ip:
            base_ms = ip["times"]["ask"]["p50"]
            L += [
                "",
                f"单个客户端时 JSON API p50 {one['p50']:.0f} ms"
                + (f"、gradio API p50 {g1['p50']:.0f} ms" if g1 else "")
                + f"，进程内 ask p50 {base_ms:.0f} ms。",
            ]
        burst = http.get("burst")
        if burst:
            L += [
                "",
                f"重复问题的突发（16 个客户端只问 {len(burst['questions'])} 个示例问题，查询向量缓存开启，"
                f"另起一个应用）：吞吐 {fmt(burst['qps'])} 问/秒，p50 {burst['p50']:.0f} ms，"
                f"p95 {burst['p95']:.0f} ms，错误 {burst['errors']}；缓存 {burst['query_cache']}。"
                "这一行不用于上面的目标。",
            ]
        embed_ms = ip["times"]["embed"]["p50"] if ip else None
        L += [
            "",
            "客户端是闭环的（收到回答才发下一问），所以延迟 ≈ 客户端数 / 吞吐（Little 定律）："
            "16 个客户端下 p95 ≤ 300 ms 需要约 16 / 0.3 ≈ 53 问/秒的吞吐。每个不同的问题都要算一次"
            "查询向量"
            + (
                f"（本次单独算一问 p50 {embed_ms:.1f} ms，两核都在用）：它决定了吞吐的上限，"
                "并随机器的单核速度和同机负载变化，所以这一项在较慢或较忙的机器上可能达不到"
                if embed_ms
                else ""
            )
            + "。",
        ]
        kinds = [
            f"{r['clients']} 个客户端：{k}"
            for key in ("levels", "gradio_levels")
            for r in http.get(key, [])
            for k in r["error_kinds"]
        ]
        if kinds:
            L += ["", "错误类型：", *[f"- `{k}`" for k in kinds]]
        L += ["", f"![延迟与并发]({png.name})"]
    elif http:
        L += ["", f"## 通过 HTTP API 的负载：未测（{http['skipped']}）"]
    L += [
        "",
        "原始数据（JSON）：",
        "",
        "```json",
        json.dumps(result, ensure_ascii=False, indent=1),
        "```",
        "",
    ]
    md.write_text("\n".join(L), encoding="utf-8")
    if http and http.get("levels"):
        try:
            chart(http["levels"], png, http.get("gradio_levels") or [])
        except Exception as e:  # matplotlib trouble must not lose the report
            print(f"chart not written: {e}", file=sys.stderr)
    return md


def chart(levels: list[dict[str, Any]], path: Path, gradio_levels: list[dict[str, Any]] = ()) -> None:  # type: ignore[assignment]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["clients"] for r in levels]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, style in (("p50", "o-"), ("p95", "s--"), ("p99", "^:")):
        ax.plot(xs, [r[key] for r in levels], style, label=f"JSON API {key}")
    if gradio_levels:
        gx = [r["clients"] for r in gradio_levels]
        ax.plot(gx, [r["p95"] for r in gradio_levels], "x-", color="C4", alpha=0.7, label="gradio API p95")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("latency (ms)")
    ax.axhline(300, color="grey", lw=0.8, ls="-.", label="target p95 @16 = 300 ms")
    ax2 = ax.twinx()
    ax2.bar(
        xs,
        [r["qps"] for r in levels],
        width=[x * 0.25 for x in xs],
        alpha=0.2,
        color="C2",
        label="questions/s (JSON API)",
    )
    ax2.set_ylabel("throughput (questions/s)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
    ax.set_title("policyqa /ask over HTTP: latency and throughput vs concurrency")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="one ingest run, one pass over 60 questions, 3 per client"
    )
    p.add_argument("--ingest-runs", type=int, default=3, help="cold/warm ingest rounds (default 3)")
    p.add_argument(
        "--repeat", type=int, default=3, help="passes over the gold questions in process (default 3)"
    )
    p.add_argument("--questions", type=int, default=None, help="use only the first N gold questions")
    p.add_argument("--clients", default="1,4,16,64", help="concurrency levels (default 1,4,16,64)")
    p.add_argument("--per-client", type=int, default=8, help="questions each client sends (default 8)")
    p.add_argument("--skip-ingest", action="store_true")
    p.add_argument("--skip-http", action="store_true")
    p.add_argument("--out", type=Path, default=REPORTS)
    p.add_argument("--baseline-build", type=Path, help=argparse.SUPPRESS)  # the measured child process
    p.add_argument(
        "--library",
        nargs="?",
        const="1,10,100",
        metavar="N[,N…]",
        help="文件库规模：N 份文档（默认 1,10,100）的 ingest、索引大小、ask 延迟与内存（eval/bench_library.py）",
    )
    p.add_argument(
        "--replicas",
        nargs="?",
        const="1,100",
        metavar="N[,N…]",
        help="多副本：N 份文档（默认 1,100）发布到 Chroma 服务后，空 POLICYQA_HOME 的副本打开、启动到第一个回答、切换新版本的时间（eval/bench_replicas.py）",
    )
    args = p.parse_args(argv)
    if args.replicas:
        from eval import bench_replicas

        sizes = [int(x) for x in args.replicas.split(",") if x.strip()]
        command = "python -m eval.bench " + " ".join(argv if argv is not None else sys.argv[1:])
        return bench_replicas.main(sizes, args.out, command)
    if args.baseline_build:
        return baseline_build_main(args.baseline_build)
    if args.library:
        from eval import bench_library

        sizes = [int(x) for x in args.library.split(",") if x.strip()]
        command = "python -m eval.bench " + " ".join(argv if argv is not None else sys.argv[1:])
        return bench_library.main(sizes, args.repeat, args.out, command)
    if args.quick:
        args.ingest_runs, args.repeat, args.per_client = 1, 1, 3
        args.questions = args.questions or 60

    from policyqa.settings import Settings

    settings = Settings.from_env()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "date": date.today().isoformat(),
        "sha": git_sha(),
        "command": "python -m eval.bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "load_start": os.getloadavg()[0],
        },
        "settings": {"home": str(settings.home), "embedder": settings.embedder},
    }
    if not args.skip_ingest:
        log(f"ingest × {args.ingest_runs} (subprocesses, fresh homes)…")
        result["ingest"] = ingest_runs(settings, args.ingest_runs, log)
    log("in-process latency…")
    result["in_process"] = in_process(settings, args.repeat, args.questions, log)
    if not args.skip_http:
        log("HTTP load…")
        levels = [int(x) for x in args.clients.split(",") if x.strip()]
        result["http"] = http_load(settings, levels, args.per_client, log)
    result["machine"]["load_end"] = os.getloadavg()[0]
    result["elapsed_s"] = time.perf_counter() - t0
    md = write_report(result, args.out)
    for label, goal, got, met in targets(result):
        print(f"{label}: {got} (目标 {goal}) {met}")
    print(f"report: {md.relative_to(ROOT) if md.is_relative_to(ROOT) else md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
