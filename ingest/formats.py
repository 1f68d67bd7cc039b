"""A file in kb/plans → its text: .txt / .md, .pdf (pypdf), .docx (python-docx), .html (lxml).

Each extractor returns plain text with one paragraph (or visual line, for PDF) a line; PDF pages
end with ``\\f`` so ``ingest.lines.strip_furniture`` can find running heads and page numbers; Word and
HTML table rows become one line each with the cells separated by tabs. The text still carries
the furniture and the PDF's line wrapping: those are repaired by the structure reader, and the
repaired text is what the index stores as the document's source (quotes are checked against it).

Left out: OCR (a PDF without a text layer is refused, naming the file), images, Word footnotes
and text boxes, HTML pages without Chinese text (refused, naming the file), pages built by scripts.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from policyqa.errors import DocumentError

TEXT_SUFFIXES = (".txt", ".md")
SUFFIXES = (".txt", ".md", ".pdf", ".docx", ".html", ".htm")
_CJK = re.compile(r"[\u4e00-\u9fff]")
# PDF fonts print some Latin letter pairs as one ligature glyph
_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl"})


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
        if enc == "gb18030" and not _CJK.search(text):
            break
        return text.replace("\r\n", "\n").replace("\r", "\n")
    raise DocumentError(f"{name} 的编码无法识别（支持 UTF-8、GBK/GB18030）。")


def strip_markdown(text: str) -> str:
    """Blank out Markdown heading marks, bold markers and HTML comments, keeping offsets in place."""
    text = re.sub(r"(?m)^(#{1,6})(\s)", lambda m: " " * len(m.group(1)) + m.group(2), text)
    text = re.sub(r"<!--.*?-->", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    return text.replace("**", "  ")


def pdf_text(path: Path) -> str:
    """Text of a PDF's pages (pypdf), each ending with ``\\f``. No text layer → DocumentError."""
    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = pypdf.PdfReader(str(path))
        pages = [(p.extract_text() or "") for p in reader.pages]
    except Exception as e:  # pypdf raises many types for broken files
        raise DocumentError(f"{path.name} 不是可读取的 PDF（{type(e).__name__}）。") from e
    text = "".join(p + "\f" for p in pages).translate(_LIGATURES)
    if not _CJK.search(text):
        raise DocumentError(
            f"{path.name} 没有文字层（可能是扫描件）：本程序不做文字识别（OCR），请提供可复制文字的 PDF 或文本文件。"
        )
    return text


def docx_text(path: Path) -> str:
    """Paragraphs and tables of a Word file in document order; a table row is one tab-joined line."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        d = docx.Document(str(path))
    except Exception as e:  # a zip that is no Word file, a damaged archive
        raise DocumentError(f"{path.name} 不是可读取的 Word（.docx）文件（{type(e).__name__}）。") from e
    out: list[str] = []
    for block in d.iter_inner_content():
        if isinstance(block, Paragraph):
            out.append(block.text)
        elif isinstance(block, Table):
            out.append("")
            for row in block.rows:
                cells: list[str] = []
                for cell in row.cells:
                    cells.append(cell.text.replace("\n", " "))
                out.append("\t".join(cells))
            out.append("")
    return "\n".join(out)


_HTML_BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "dt", "dd", "pre", "caption"}
_HTML_SKIP = {"script", "style", "noscript", "template", "select", "option", "button", "input"}


def _html_lines(el: object, out: list[str]) -> None:
    """Block elements in document order: one line each; a table row is one tab-joined line."""
    tag = getattr(el, "tag", None)
    if not isinstance(tag, str) or tag in _HTML_SKIP:
        return
    if tag == "table":
        for tr in el.iter("tr"):  # type: ignore[attr-defined]
            cells = [re.sub(r"\s+", " ", c.text_content()).strip() for c in tr if c.tag in ("td", "th")]
            out.append("\t".join(cells))
        return
    if tag in _HTML_BLOCKS:
        out.append(re.sub(r"[ \t\r\n]+", " ", el.text_content()).strip())  # type: ignore[attr-defined]
        return
    if el.text and el.text.strip():  # type: ignore[attr-defined]
        out.append(el.text.strip())  # type: ignore[attr-defined]
    for child in el:  # type: ignore[attr-defined]
        _html_lines(child, out)
        if child.tail and child.tail.strip():
            out.append(child.tail.strip())


def html_text(path: Path, data: bytes) -> str:
    """The text of a saved web page: every block element a line, tables as tab-separated rows.

    Menus, 索引号 tables and footers are kept here and removed as page furniture by
    ``ingest.lines`` (their words are in ``ingest/cues.yaml``). trafilatura is the fallback for a
    page whose body holds no Chinese text in block elements: it finds main text well but drops
    the headings (第一章 …) that the structure reader needs.
    """
    from lxml import html as lxml_html

    page = decode(data, path.name)
    try:
        root = lxml_html.document_fromstring(page)
    except Exception as e:  # lxml raises ParserError / ValueError for empty or broken pages
        raise DocumentError(f"{path.name} 不是可读取的网页（{type(e).__name__}）。") from e
    out: list[str] = []
    body = root.find("body")
    _html_lines(body if body is not None else root, out)
    text = "\n".join(x for x in out if x)
    if _CJK.search(text):
        return text
    import trafilatura

    logging.getLogger("trafilatura").setLevel(logging.ERROR)
    text = trafilatura.extract(page, include_tables=True, favor_recall=True, output_format="txt") or ""
    if not _CJK.search(text):
        raise DocumentError(f"{path.name} 中找不到网页正文。")
    return text


def extract_text(path: Path) -> str:
    """The text of a kb/plans file of any supported format (furniture not yet removed)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DocumentError(f"{path.name}：不支持的格式（支持 {'、'.join(SUFFIXES)}）。")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DocumentError(f"无法读取 {path}：{e.strerror or e}") from e
    if not data.strip():
        raise DocumentError(f"{path.name} 是空文件，无法作为规划读取。")
    if suffix == ".pdf":
        return pdf_text(path)
    if suffix == ".docx":
        return docx_text(path)
    if suffix in (".html", ".htm"):
        return html_text(path, data)
    text = decode(data, path.name)
    return strip_markdown(text) if suffix == ".md" else text
