"""kb/ → documents: find plan files, decode them, read their metadata, parse them.

A plan is ``kb/plans/<id>.txt`` or ``.md`` with an optional ``<id>.meta.json`` beside it
(title, office, doc_number, date). The file stem is the document id. Text is UTF-8 (with or
without BOM) or GB18030/GBK, detected. Not handled: PDF or Word files (extract text first).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ingest.parse import parse_document
from policyqa.errors import DocumentError
from policyqa.models import Document

SUFFIXES = (".txt", ".md")
RE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def plan_files(kb_dir: Path) -> list[Path]:
    """The plan files under ``kb_dir/plans`` (sorted, so ids and order are stable)."""
    d = Path(kb_dir) / "plans"
    if not d.is_dir():
        raise DocumentError(f"找不到知识库目录 {d}：请把规划文本放在 kb/plans/ 下（.txt 或 .md）。")
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
    if not files:
        raise DocumentError(f"{d} 中没有 .txt 或 .md 规划文件。")
    return files


def decode(data: bytes, name: str) -> str:
    """Bytes → text: UTF-8 first, then GB18030 (a superset of GBK). Raises DocumentError."""
    if not data.strip():
        raise DocumentError(f"{name} 是空文件，无法作为规划读取。")
    if b"\x00" in data[:4096]:
        raise DocumentError(f"{name} 看起来是二进制文件（含 NUL 字节），请先转换为 UTF-8 文本。")
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if enc == "gb18030" and not re.search(r"[\u4e00-\u9fff]", text):
            break
        return text.replace("\r\n", "\n").replace("\r", "\n")
    raise DocumentError(f"{name} 的编码无法识别（支持 UTF-8、GBK/GB18030）。")


def strip_markdown(text: str) -> str:
    """Blank out Markdown heading marks and bold markers, keeping every offset in place."""
    text = re.sub(r"(?m)^(#{1,6})(\s)", lambda m: " " * len(m.group(1)) + m.group(2), text)
    return text.replace("**", "  ")


def read_meta(path: Path) -> dict:
    meta_path = path.with_suffix(".meta.json")
    if not meta_path.exists():
        return {}
    try:
        return json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DocumentError(f"{meta_path.name} 不是有效的 JSON：{e}") from e


def load_document(path: Path) -> Document:
    path = Path(path)
    doc_id = path.stem
    if not RE_ID.match(doc_id):
        raise DocumentError(f"{path.name}：文件名只能包含字母、数字、- _ .，它将作为文档编号。")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DocumentError(f"无法读取 {path}：{e}") from e
    text = decode(data, path.name)
    if path.suffix.lower() == ".md":
        text = strip_markdown(text)
    if not re.search(r"[\u4e00-\u9fff]", text):
        raise DocumentError(f"{path.name} 中没有中文正文，无法作为规划读取。")
    return parse_document(text, doc_id, read_meta(path), str(path))


def load_kb(kb_dir: Path) -> list[Document]:
    """Parse every plan in kb/. Fails on the first unreadable file, naming it."""
    return [load_document(p) for p in plan_files(kb_dir)]


def source_text(doc: Document) -> str:
    """The decoded source a document was parsed from (what quotes are checked against)."""
    text = decode(Path(doc.source).read_bytes(), Path(doc.source).name)
    return strip_markdown(text) if doc.source.endswith(".md") else text
