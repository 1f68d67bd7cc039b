"""``policyqa`` command line: outline, ingest, search, ask.

Each subcommand is a plain function over the library; errors meant for the user
(``PolicyQAError``) are printed without a traceback and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from policyqa.errors import PolicyQAError
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="policyqa", description="政策问答：规划知识库的解析、索引、检索与问答")
    sub = p.add_subparsers(dest="command", required=True)

    o = sub.add_parser("outline", help="打印 kb/ 中每份规划的结构")
    o.add_argument("--json", action="store_true", help="输出 JSON")
    o.set_defaults(func=cmd_outline)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    try:
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
