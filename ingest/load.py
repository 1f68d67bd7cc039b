"""kb/ → documents: find the files, extract their text, remove page furniture, parse them.

A document is ``kb/plans/<id>.<ext>`` (``.txt``, ``.md``, ``.pdf``, ``.docx``, ``.html``) with an
optional ``<id>.meta.json`` beside it whose keys override what is read from the text. The file
stem is the document id. Text files are UTF-8 (with or without BOM) or GB18030/GBK, detected.

``load_library`` never lets one bad file stop the others: a file that cannot be read (empty,
binary, a scanned PDF without text, a damaged Word file) is skipped with a message naming it.
Left out: OCR, several documents in one file.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ingest.formats import SUFFIXES, TEXT_SUFFIXES, decode, extract_text, strip_markdown
from ingest.lines import strip_furniture
from ingest.tree import parse_document
from policyqa.errors import DocumentError
from policyqa.models import Document

__all__ = [
    "SUFFIXES",
    "LoadResult",
    "ParsedCache",
    "decode",
    "load_document",
    "load_kb",
    "load_library",
    "plan_files",
    "read_meta",
    "source_text",
    "strip_markdown",
]

log = logging.getLogger(__name__)
RE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def plan_files(kb_dir: Path) -> list[Path]:
    """The document files under ``kb_dir/plans`` (sorted, so ids and order are stable)."""
    d = Path(kb_dir) / "plans"
    if not d.is_dir():
        raise DocumentError(f"找不到知识库目录 {d}：请把规划文件放在 kb/plans/ 下（{'、'.join(SUFFIXES)}）。")
    files = sorted(
        p
        for p in d.iterdir()
        if p.suffix.lower() in SUFFIXES and p.is_file() and not p.name.endswith(".meta.json")
    )
    if not files:
        raise DocumentError(f"{d} 中没有规划文件（支持 {'、'.join(SUFFIXES)}）。")
    return files


def read_meta(path: Path) -> dict:
    meta_path = path.with_name(path.stem + ".meta.json")
    if not meta_path.exists():
        return {}
    try:
        return json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DocumentError(f"{meta_path.name} 不是有效的 JSON：{e}") from e


def load_document(path: Path, text: str | None = None) -> Document:
    """Read one document. ``text`` is its already extracted text (a cache), if known."""
    return _load(path, text)[0]


def _load(path: Path, text: str | None) -> tuple[Document, int]:
    """The document and how many furniture lines were removed from its text."""
    path = Path(path)
    doc_id = path.stem
    if not RE_ID.match(doc_id):
        raise DocumentError(f"{path.name}：文件名只能包含字母、数字、- _ .，它将作为文档编号。")
    raw = text if text is not None else extract_text(path)
    if not re.search(r"[\u4e00-\u9fff]", raw):
        raise DocumentError(f"{path.name} 中没有中文正文，无法作为规划读取。")
    cleaned = strip_furniture(raw)
    if cleaned.removed:
        log.info("%s：去除页码、页眉页脚、网页菜单等 %d 行", path.name, len(cleaned.removed))
    return parse_document(cleaned.text, doc_id, read_meta(path), str(path)), len(cleaned.removed)


@dataclass(frozen=True)
class LoadResult:
    documents: tuple[Document, ...]
    skipped: tuple[tuple[str, str], ...]  # (file name, why), for files that could not be read


class ParsedCache(Protocol):
    """Parsed documents kept between ingests (``policyqa.index`` keeps them by file hash)."""

    def get(self, path: Path) -> tuple[Document, int] | None: ...

    def put(self, path: Path, doc: Document, removed: int) -> None: ...


def load_library(
    kb_dir: Path,
    progress: Callable[[str], None] | None = None,
    texts: Callable[[Path], str | None] | None = None,
    parsed: ParsedCache | None = None,
) -> LoadResult:
    """Parse every document in kb/; a file that cannot be read is skipped and reported.

    ``texts(path)`` may return a file's extracted text from a cache (None: extract it).
    ``parsed`` may return a file's document parsed by an earlier ingest (then it is not parsed
    again). Raises DocumentError only when no document at all can be read.
    """
    docs: list[Document] = []
    skipped: list[tuple[str, str]] = []
    files = plan_files(kb_dir)
    seen: dict[str, str] = {}
    for n, p in enumerate(files, 1):
        if p.stem in seen:  # the id is the file stem: two formats of one document cannot both be read
            why = f"与 {seen[p.stem]} 的文档编号（{p.stem}）相同，请只保留一种格式。"
            skipped.append((p.name, why))
            log.warning("跳过 %s：%s", p.name, why)
            if progress:
                progress(f"[{n}/{len(files)}] 跳过 {p.name}：{why}")
            continue
        seen[p.stem] = p.name
        hit = parsed.get(p) if parsed else None
        try:
            doc, removed = hit if hit else _load(p, texts(p) if texts else None)
        except DocumentError as e:
            skipped.append((p.name, str(e)))
            log.warning("跳过 %s：%s", p.name, e)
            if progress:
                progress(f"[{n}/{len(files)}] 跳过 {p.name}：{e}")
            continue
        docs.append(doc)
        if parsed and not hit:
            parsed.put(p, doc, removed)
        if progress:
            dropped = f"，去除页码、页眉页脚、网页菜单等 {removed} 行" if removed else ""
            how = "未变，沿用上次的解析" if hit else "解析"
            progress(f"[{n}/{len(files)}] {how} {p.name}：{len(doc.units)} 个单元{dropped}")
            for w in doc.warnings:
                progress(f"  ! {w}")
    if not docs:
        raise DocumentError("知识库中没有可读取的文档：" + "；".join(f"{f}：{why}" for f, why in skipped))
    return LoadResult(tuple(docs), tuple(skipped))


def load_kb(kb_dir: Path) -> list[Document]:
    """Parse every document in kb/, skipping (and logging) files that cannot be read."""
    return list(load_library(kb_dir).documents)


def source_text(doc: Document) -> str:
    """The text a document's units point into (what quotes are checked against).

    For a text file that is the file's text less its page furniture; for PDF, DOCX and HTML the
    extracted, repaired text. Parsed documents carry it; otherwise the file is read again.
    """
    if doc.text:
        return doc.text
    path = Path(doc.source)
    if path.suffix.lower() in TEXT_SUFFIXES:
        text = decode(path.read_bytes(), path.name)
        text = strip_markdown(text) if path.suffix.lower() == ".md" else text
        return strip_furniture(text).text
    return strip_furniture(extract_text(path)).text
