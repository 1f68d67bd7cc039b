"""``python -m eval.bench_retrieval``: retrieval quality and speed, four systems in one run.

Systems: the naive baseline (500-character chunks, same embedder, top-k), BM25 only, dense
only, and the hybrid (BM25 + dense, RRF, routes, best-sentence rerank). Questions: the
answerable gold questions of ``eval/questions.jsonl`` (follow-ups resolved with their history
first). Reports hit@1, hit@5, MRR, search latency p50/p95 after warm-up, and with ``--ingest``
the cold and warm ``policyqa ingest`` times (subprocesses, fresh ``POLICYQA_HOME``).

Writes ``eval/reports/retrieval-<date>-<sha>.md``. A script, not a test: figures depend on
the machine, so they are reported, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from eval.metrics import hit_at_k, reciprocal_rank
from eval.run import REPORTS, git_sha, load_questions


def _p(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def score(ranked: list[list[dict[str, Any]]], questions: list[dict[str, Any]]) -> dict[str, float]:
    n = len(questions)
    return {
        "hit@1": sum(hit_at_k(r, q["gold"], 1) for r, q in zip(ranked, questions, strict=True)) / n,
        "hit@5": sum(hit_at_k(r, q["gold"], 5) for r, q in zip(ranked, questions, strict=True)) / n,
        "mrr": sum(reciprocal_rank(r, q["gold"]) for r, q in zip(ranked, questions, strict=True)) / n,
    }


def timed_ingest(home: Path, force: bool = False) -> float:
    env = dict(os.environ, POLICYQA_HOME=str(home))
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "ingest"] + (["--force"] if force else [])
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.bench_retrieval")
    p.add_argument("--split", choices=["dev", "test", "all"], default="all")
    p.add_argument("--repeat", type=int, default=3, help="latency: passes over the questions")
    p.add_argument("--ingest", action="store_true", help="also time cold and warm ingest (≈ 1–2 min)")
    p.add_argument("--out", type=Path, default=REPORTS)
    args = p.parse_args(argv)

    from eval.baseline import build_baseline
    from policyqa.answer import resolve_followup
    from policyqa.index import open_index
    from policyqa.retrieve import search
    from policyqa.settings import Settings

    settings = Settings.from_env()
    index = open_index(settings)
    questions = [q for q in load_questions(args.split) if q["answerable"]]
    texts = [resolve_followup(q["question"], q.get("history") or []) for q in questions]
    baseline = build_baseline(list(index.docs.values()), index.embedder, settings.cache_dir)

    systems = {
        "naive baseline": lambda t: [c.location.to_dict() for c, _ in baseline.search(t, k=5)],
        "BM25 only": lambda t: [h.unit.location.to_dict() for h in search(index, t, k=5, mode="bm25")],
        "dense only": lambda t: [h.unit.location.to_dict() for h in search(index, t, k=5, mode="dense")],
        "hybrid": lambda t: [h.unit.location.to_dict() for h in search(index, t, k=5)],
    }
    rows = []
    for name, fn in systems.items():
        for t in texts[:10]:  # warm-up
            fn(t)
        lat: list[float] = []
        ranked: list[list[dict[str, Any]]] = []
        for rep in range(args.repeat):
            for t in texts:
                t0 = time.perf_counter()
                r = fn(t)
                lat.append((time.perf_counter() - t0) * 1000)
                if rep == 0:
                    ranked.append(r)
        rows.append((name, score(ranked, questions), statistics.median(lat), _p(lat, 95)))

    ingest_lines: list[str] = []
    if args.ingest:
        with tempfile.TemporaryDirectory(prefix="pq-bench-") as tmp:
            home = Path(tmp) / "home"
            cold = timed_ingest(home)
            warm = [timed_ingest(home) for _ in range(3)]
            cached = timed_ingest(home, force=True)
        ingest_lines = [
            "## Ingest（子进程，全新 POLICYQA_HOME）",
            "",
            "| 情形 | 秒 |",
            "|---|---|",
            f"| 冷启动（无向量缓存） | {cold:.1f} |",
            f"| 重复运行，输入未变（中位数，3 次） | {statistics.median(warm):.2f} |",
            f"| --force 重建，向量全部命中缓存 | {cached:.1f} |",
            "",
        ]

    sha = git_sha()
    lines = [
        f"# 检索基准 {date.today().isoformat()}-{sha}",
        "",
        f"- 问题：金标集 {args.split} 划分中可回答的 {len(questions)} 题（追问先按历史改写）；向量模型："
        f"{index.manifest['embedder']['name']}；延迟为 {args.repeat} 轮的中位数与 p95（预热后，进程内）",
        f"- 机器：{os.cpu_count()} 核；共享、有噪声，数字只作相对比较",
        "",
        "| 系统 | hit@1 | hit@5 | MRR | 检索 p50 (ms) | 检索 p95 (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for name, s, p50, p95 in rows:
        lines.append(
            f"| {name} | {s['hit@1']:.3f} | {s['hit@5']:.3f} | {s['mrr']:.3f} | {p50:.1f} | {p95:.1f} |"
        )
    lines += ["", *ingest_lines]
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"retrieval-{date.today().isoformat()}-{sha}.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"报告：{out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
