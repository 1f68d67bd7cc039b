"""Make PDF and DOCX versions of a plain-text document, for format round-trip tests.

A text line becomes a paragraph; a run of tab-separated lines becomes a table (one row a line,
cells split at tabs); 第X章 / 第X节 lines become headings. The PDF is printed by Debian's
chromium (``--headless --print-to-pdf``) with its default page header and footer left on, so
the extracted text carries running heads and page numbers as a real PDF does.

Left out: images, cell spans, footnotes as real footnotes (they stay paragraphs).
"""

from __future__ import annotations

import html
import shutil
import subprocess
import tempfile
from pathlib import Path

from policyqa.refs import CHAPTER, SECTION, heading_ref

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

_CSS = """
body { font-family: 'WenQuanYi Micro Hei', sans-serif; font-size: 11pt; line-height: 1.5; }
h1 { font-size: 15pt; } h2 { font-size: 13pt; } h3 { font-size: 12pt; }
table { border-collapse: collapse; font-size: 8pt; }
td { border: 1px solid #444; padding: 1px 3px; white-space: nowrap; }
"""


def _blocks(text: str) -> list[tuple[str, object]]:
    """Text → [("p", line) | ("h1"/"h2", line) | ("table", rows)]."""
    out: list[tuple[str, object]] = []
    rows: list[list[str]] = []
    for line in text.split("\n"):
        cells = [c for c in line.split("\t") if c.strip()]
        # a table line: tab-separated, unless it is one long cell (a note printed under the table)
        if "\t" in line and not (len(cells) == 1 and len(cells[0]) > 40):
            rows.append(line.split("\t"))
            continue
        t = line.strip()
        if not t and rows:
            continue  # a blank line inside a table does not end it
        if rows:
            out.append(("table", rows))
            rows = []
        if not t:
            continue
        h = heading_ref(t)
        kind = "p"
        if h and h[0].kind == CHAPTER:
            kind = "h1"
        elif h and h[0].kind == SECTION:
            kind = "h2"
        out.append((kind, t))
    if rows:
        out.append(("table", rows))
    return out


def text_to_html(text: str, title: str = "") -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"]
    parts.append(f"<style>{_CSS}</style></head><body>")
    for kind, body in _blocks(text):
        if kind == "table":
            parts.append("<table>")
            for row in body:  # type: ignore[union-attr]
                cells = "".join(f"<td>{html.escape(c.strip())}</td>" for c in row)
                parts.append(f"<tr>{cells}</tr>")
            parts.append("</table>")
        else:
            parts.append(f"<{kind}>{html.escape(str(body))}</{kind}>")
    parts.append("</body></html>")
    return "\n".join(parts)


def html_to_pdf(page: str, out: Path) -> Path:
    """Print an HTML page to PDF with headless chromium (raises if chromium is missing)."""
    if CHROMIUM is None:
        raise RuntimeError("chromium is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "doc.html"
        src.write_text(page, encoding="utf-8")
        subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={tmp}/profile",
                f"--print-to-pdf={out}",
                src.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
    return out


def text_to_pdf(text: str, out: Path, title: str = "") -> Path:
    return html_to_pdf(text_to_html(text, title), out)


def text_to_docx(text: str, out: Path) -> Path:
    """Write the text as a Word document: headings styled, tables as Word tables."""
    import docx

    d = docx.Document()
    for kind, body in _blocks(text):
        if kind == "table":
            rows = body  # type: ignore[assignment]
            width = max(len(r) for r in rows)  # type: ignore[union-attr]
            table = d.add_table(rows=len(rows), cols=width)  # type: ignore[arg-type]
            for i, row in enumerate(rows):  # type: ignore[arg-type]
                for j, cell in enumerate(row):
                    table.cell(i, j).text = cell.strip()
        elif kind == "h1":
            d.add_heading(str(body), level=1)
        elif kind == "h2":
            d.add_heading(str(body), level=2)
        else:
            d.add_paragraph(str(body))
    d.save(str(out))
    return out
