"""``policyqa`` command line: outline, ingest, add, builds, search, ask, check.

Each subcommand is a plain function over the library; errors meant for the user
(``PolicyQAError``) are printed without a traceback and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from policyqa.errors import PolicyQAError, check_document
from policyqa.settings import Settings


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False))


def cmd_outline(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.load import load_kb
    from policyqa.text import to_cn_number

    docs = load_kb(settings.kb_dir)
    if args.json:
        _print_json({"documents": [d.outline() for d in docs]})
        return 0
    for d in docs:
        print(f"《{d.title}》 [{d.id}]")
        for w in d.warnings:
            print(f"  ! {w}")
        cols = {}
        for c in d.columns:
            cols.setdefault((c.chapter_no, c.section_no), []).append(c)
        for ch in d.chapters:
            print(f"  第{to_cn_number(ch.no)}章 {ch.title}")
            for s in ch.sections:
                print(f"    第{to_cn_number(s.no)}节 {s.title}（{len(s.unit_ids)}段）")
                for c in cols.get((ch.no, s.no), []):
                    print(f"      专栏{c.no} {c.title}（{len(c.items) or len(d.indicators)}项）")
        print(f"  指标 {len(d.indicators)} 项：")
        for i in d.indicators:
            rows = (
                "；".join(f"{r.scope} {r.baseline.value} → {r.target.value}" for r in i.rows)
                or f"{i.baseline.value} → {i.target.value}"
            )
            print(f"    {i.no}. {i.display_name}：{rows}（{i.attribute or '未标注'}）")
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from policyqa.index import build_index

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    r = build_index(settings, force=args.force, progress=progress)
    if args.json:
        _print_json(
            {
                "build_id": r.build_id,
                "path": str(r.path),
                "skipped": r.skipped,
                "units": r.units,
                "embedded": r.embedded,
                "seconds": round(r.seconds, 3),
                "documents": [d["id"] for d in r.manifest.get("documents", [])],
                "unreadable": [{"file": f, "error": why} for f, why in r.unreadable],
            }
        )
    return 0


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    """Copy documents (and a ``<id>.meta.json`` beside each, if any) into kb/plans, then ingest."""
    import shutil

    from ingest.formats import SUFFIXES
    from ingest.load import RE_ID
    from policyqa.errors import DocumentError

    plans = Path(settings.kb_dir) / "plans"
    plans.mkdir(parents=True, exist_ok=True)
    sources = [Path(p) for p in args.paths]
    for src in sources:  # check them all before copying any
        if not src.is_file():
            raise DocumentError(f"找不到文件 {src}。")
        if src.suffix.lower() not in SUFFIXES:
            raise DocumentError(f"{src.name}：不支持的格式（支持 {'、'.join(SUFFIXES)}）。")
        if not RE_ID.match(src.stem):
            raise DocumentError(f"{src.name}：文件名只能包含字母、数字、- _ .，它将作为文档编号。")
    for src in sources:
        clash = [
            p
            for p in plans.glob(f"{src.stem}.*")
            if p.stem == src.stem and p.suffix.lower() in SUFFIXES and p.name != src.name
        ]
        for other in clash:  # one file per document id: the new format replaces the old one
            other.unlink()
            print(f"已移除同名文档 {other.name}", file=sys.stderr)
        shutil.copy2(src, plans / src.name)
        meta = src.with_name(src.stem + ".meta.json")
        if meta.is_file():
            shutil.copy2(meta, plans / meta.name)
        print(f"已加入 {src.name} → {plans / src.name}", file=sys.stderr)
    return cmd_ingest(args, settings)


def cmd_builds(args: argparse.Namespace, settings: Settings) -> int:
    """Published builds on the Chroma server (oldest first); ``--prune`` keeps the newest K.

    Without POLICYQA_CHROMA_URL: this home's builds (ingest keeps the newest two by itself)."""
    from policyqa.index import live_build, read_manifest

    if not settings.chroma_url:
        if args.prune:
            raise PolicyQAError(
                "--prune 用于 Chroma 服务上发布的构建（需设置 POLICYQA_CHROMA_URL）；本地构建由 ingest 自动清理。"
            )
        live = live_build(settings)
        folder = Path(settings.home) / "builds"
        rows = []
        for p in sorted(folder.iterdir()) if folder.is_dir() else []:
            m = read_manifest(p)
            if m and not p.name.startswith("."):
                rows.append(
                    {
                        "build_id": m["build_id"],
                        "built_at": m.get("built_at", ""),
                        "documents": len(m.get("documents", [])),
                        "units": m.get("counts", {}).get("units", 0),
                        "embedder": m.get("embedder", {}).get("name", ""),
                        "current": p == live,
                    }
                )
        if args.json:
            _print_json({"server": None, "builds": rows})
        else:
            print(f"本地构建（{folder}）：" if rows else f"{folder} 中没有构建：请运行 `policyqa ingest`。")
            for r in rows:
                mark = "＊" if r["current"] else "  "
                print(f"{mark}{r['build_id']}  {r['built_at']}  {r['documents']} 份文档  {r['units']} 个单元")
        return 0

    from policyqa.store.publish import list_builds, prune

    removed = prune(settings, keep=args.keep) if args.prune else []
    builds = list_builds(settings)
    if args.json:
        _print_json(
            {"server": settings.chroma_url, "builds": [b.to_dict() for b in builds], "pruned": removed}
        )
        return 0
    for bid in removed:
        print(f"已清理 {bid}")
    if not builds:
        print(f"Chroma 服务 {settings.chroma_url} 上还没有发布的构建：请运行 `policyqa ingest`。")
        return 0
    print(
        f"Chroma 服务 {settings.chroma_url} 上的构建（＊为当前版本；副本为 {settings.in_use_seconds:g} 秒内报告在用的）："
    )
    for b in builds:
        mark = "＊" if b.current else "  "
        used = f"  副本 {len(b.replicas)} 个：{'、'.join(b.replicas)}" if b.replicas else ""
        print(
            f"{mark}{b.build_id}  发布于 {b.to_dict()['published_at']}  {b.documents} 份文档  "
            f"{b.units} 个单元  {b.embedder}  来自 {b.by}{used}"
        )
    return 0


def _read_text(path: str, what: str) -> str:
    """A UTF-8 file (``-`` is standard input) or an InputError saying why not."""
    from policyqa.errors import InputError

    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"无法读取{what} {path}：{e.strerror}") from e
    except UnicodeDecodeError:
        raise InputError(f"{what} {path} 不是 UTF-8 文本。") from None


def batch_line(line: str, no: int) -> tuple[str, list[dict[str, Any]]]:
    """One line of a --batch file → (question, history).

    A line starting with ``{`` is JSON ``{"question": "…", "history": [{"role", "content"}]}``
    (``history`` optional), so an evaluation can replay conversations; any other line is a plain
    question. A malformed JSON line is an InputError naming its line number.
    """
    from policyqa.errors import InputError

    text = line.strip()
    if not text.startswith("{"):
        return text, []
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise InputError(f"问题文件第 {no} 行以 {{ 开头，但不是有效的 JSON（{e.msg}）。") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("question"), str):
        raise InputError(
            f'问题文件第 {no} 行缺少字段 question（字符串），应形如 {{"question": "…", "history": []}}。'
        )
    history = obj.get("history") or []
    if not isinstance(history, list) or not all(
        isinstance(m, dict) and m.get("role") in ("user", "assistant") and isinstance(m.get("content"), str)
        for m in history
    ):
        raise InputError(
            f'问题文件第 {no} 行的 history 应为列表，元素形如 {{"role": "user" 或 "assistant", "content": "…"}}。'
        )
    return obj["question"], history


def _questions(args: argparse.Namespace) -> list[tuple[str, list[dict[str, Any]]]]:
    """(question, history) pairs: the --batch file's lines (plain or JSON), or the one question."""
    if args.batch:
        text = _read_text(args.batch, "问题文件")
        return [batch_line(line, no) for no, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not args.question:
        from policyqa.errors import InputError

        raise InputError("请给出问题，或用 --batch 文件（每行一个问题，或一个 JSON）。")
    return [(args.question, [])]


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from policyqa.index import open_index
    from policyqa.retrieve import search

    index = open_index(settings)
    check_document(args.doc, index.docs)  # an unknown id would otherwise give no hits, silently
    for q, _history in _questions(args):
        hits = search(index, q, k=args.k, doc=args.doc, chapter=args.chapter)
        if args.json or args.batch:
            _print_json({"question": q, "hits": [h.to_dict() for h in hits]})
        else:
            print(f"问题：{q}")
            for n, h in enumerate(hits, 1):
                print(f"{n}. [{h.score:.3f}] {h.unit.label}\n   {h.unit.text[:120]}")
    return 0


def render_text(answer: Any) -> str:
    """A readable answer with its 出处 list (the CLI's non-JSON output)."""
    out = [answer.answer]
    if answer.citations:
        out.append("\n出处：")
        for c in answer.citations:
            out.append(f"[{c.n}] {c.label}\n    「{c.quote}」")
    if answer.notice:
        out.append(f"\n（{answer.notice}）")
    return "\n".join(out)


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from policyqa.answer import ask
    from policyqa.index import open_index
    from policyqa.llm import chat_model_from_settings

    index = open_index(settings)
    check_document(args.doc, index.docs)
    llm = chat_model_from_settings(settings) if not args.extractive else None
    for q, history in _questions(args):
        answer = ask(index, q, history, llm=llm, doc=args.doc)
        if args.json or args.batch:
            _print_json(answer.to_dict())
        else:
            print(render_text(answer))
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    """Check answers (JSONL in the answer contract) against the library; 0 all pass, 1 any fails."""
    from policyqa.check import (
        check_answers,
        load_library,
        parse_answers,
        render_result,
        render_summary,
        summarize,
    )

    answers = parse_answers(_read_text(args.file, "回答文件"))
    library = load_library(args.kb or settings.kb_dir)
    results = check_answers(answers, library)
    summary = summarize(results)
    for no, r in enumerate(results, 1):
        if args.json:
            _print_json(r.to_dict())
        else:
            print(render_result(no, r))
    if args.json:
        _print_json({"summary": summary})
    else:
        print(render_summary(summary))
    return 0 if summary["failed"] == 0 else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="policyqa", description="政策问答：规划知识库的解析、索引、检索与问答")
    sub = p.add_subparsers(dest="command", required=True)

    o = sub.add_parser("outline", help="打印 kb/ 中每份规划的结构")
    o.add_argument("--json", action="store_true", help="输出 JSON")
    o.set_defaults(func=cmd_outline)

    i = sub.add_parser("ingest", help="解析 kb/ 并构建检索索引（输入不变时不做任何事）")
    i.add_argument("--force", action="store_true", help="即使输入未变化也重建")
    i.add_argument("--json", action="store_true", help="输出构建结果 JSON")
    i.set_defaults(func=cmd_ingest)

    ad = sub.add_parser("add", help="把文件（.pdf .docx .html .txt .md）复制到 kb/plans/ 并重建索引")
    ad.add_argument("paths", nargs="+", metavar="PATH", help="文档文件；同目录下的 <id>.meta.json 一并复制")
    ad.add_argument("--force", action="store_true", help="即使输入未变化也重建")
    ad.add_argument("--json", action="store_true", help="输出构建结果 JSON")
    ad.set_defaults(func=cmd_add)

    b = sub.add_parser("builds", help="列出 Chroma 服务上发布的构建（及服务它们的副本）；--prune 清理旧构建")
    b.add_argument("--json", action="store_true", help="输出 JSON")
    b.add_argument("--prune", action="store_true", help="只保留最新的 K 个（当前版本和副本正在用的从不删除）")
    b.add_argument("--keep", type=int, default=None, help="K（默认 POLICYQA_KEEP_BUILDS，3）")
    b.set_defaults(func=cmd_builds)

    s = sub.add_parser("search", help="检索与问题最相关的规划单元")
    s.add_argument("question", nargs="?", help="问题")
    s.add_argument("-k", type=int, default=5, help="返回条数（默认 5）")
    s.add_argument("--json", action="store_true", help="输出 JSON")
    s.add_argument("--batch", metavar="FILE", help="每行一个问题；每行输出一个 JSON")
    s.add_argument("--doc", help="只在该文档中检索（文档编号，即文件名去掉扩展名）")
    s.add_argument("--chapter", type=int, help="只在该章中检索（数字）")
    s.set_defaults(func=cmd_search)

    a = sub.add_parser("ask", help="回答问题，附出处与原文引文")
    a.add_argument("question", nargs="?", help="问题")
    a.add_argument("--json", action="store_true", help="输出回答契约 JSON")
    a.add_argument(
        "--batch",
        metavar="FILE",
        help='每行一个问题，或一个 JSON {"question": "…", "history": […]}；每行输出一个 JSON（模型只加载一次）',
    )
    a.add_argument("--doc", help="只依据该文档作答（文档编号，即文件名去掉扩展名）")
    a.add_argument("--extractive", action="store_true", help="即使配置了大模型也只用原文摘录")
    a.set_defaults(func=cmd_ask)

    c = sub.add_parser("check", help="核对回答的引用：引文逐字、出处位置、数字与句子有据、标记与引文一一对应")
    c.add_argument("file", metavar="FILE", help="JSONL，每行一个回答（回答契约）；- 为标准输入")
    c.add_argument("--json", action="store_true", help="每条回答输出一行 JSON，最后一行为汇总")
    c.add_argument("--kb", type=Path, help="知识库目录（默认同 POLICYQA_KB）；不需要索引")
    c.set_defaults(func=cmd_check)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(args.func(args, settings) or 0)
    except PolicyQAError as e:
        print(f"错误：{e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `policyqa outline | head`
        return 0
    except KeyboardInterrupt:
        print("已中断。", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
