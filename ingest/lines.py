"""Lines of a document's text, and the page furniture removed before structure is read.

``split_lines`` keeps every line's character offsets, so units can point back into the text.
``strip_furniture`` drops lines that are no part of the document: page numbers (「- 3 -」,
「第3页」, 「3/26」 at a page edge), running heads and feet (a line repeated at the top or
bottom of many pages; pages are separated by form feeds, as ``ingest.formats`` writes PDFs), and
the menus, 索引号 and footers of scraped web pages (words in ``ingest/cues.yaml``).

Left out: furniture inside a line (a page number glued to the text), two-column page layouts.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from ingest.cues import cues
from policyqa.refs import heading_ref


@dataclass(frozen=True)
class Line:
    no: int  # 1-based line number
    start: int
    end: int
    raw: str

    @property
    def text(self) -> str:
        return self.raw.strip()


def split_lines(source: str) -> list[Line]:
    """Source → lines with their character offsets (end excludes the newline)."""
    out, pos = [], 0
    for i, raw in enumerate(source.split("\n"), 1):
        out.append(Line(i, pos, pos + len(raw), raw))
        pos += len(raw) + 1
    return out


def line_span(line: Line) -> tuple[int, int]:
    """The span of a line's non-blank text."""
    lead = len(line.raw) - len(line.raw.lstrip())
    return (line.start + lead, line.start + len(line.raw.rstrip()))


@dataclass(frozen=True)
class Cleaned:
    """Text with its furniture removed; ``removed`` are the dropped lines, in order."""

    text: str
    removed: tuple[str, ...] = ()


# 「- 3 -」「— 3 —」「第 3 页」「第3页 共26页」: page numbers wherever they stand
_PAGE_NO = re.compile(r"^[-—–－\s]*(?:第\s*)?\d{1,4}\s*页?(?:\s*[，,/／]?\s*共\s*\d{1,4}\s*页)?[-—–－\s]*$")
_DASHED = re.compile(r"^[-—–－]\s*\d{1,4}\s*[-—–－]$|^第\s*\d{1,4}\s*页")
# 「3」「3/26」「3 / 26」: only at the edge of a page (a bare number elsewhere may be a table cell)
_EDGE_NO = re.compile(r"^\d{1,4}(?:\s*[/／]\s*\d{1,4})?$")
# what a browser prints at the edges of each page: 「12/1/26, 8:41 PM <title>」 and 「<url> 3/26」
_PRINT_STAMP = re.compile(r"^\d{1,4}[/-]\d{1,2}[/-]\d{1,4},?\s+\d{1,2}:\d{2}")
_OF_PAGES = re.compile(r"(?:^|\s)(\d{1,4})\s*[/／]\s*(\d{1,4})$")
_EDGE = 2  # lines at the top and at the bottom of a page where running heads stand
_MIN_PAGE = 6  # a page this short (a title page, the end of a chapter) says nothing about heads


def _key(line: str) -> str:
    """A running head's identity: page numbers and dates vary, so digits are one class."""
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", line))


def _of_pages(text: str, pages: int) -> bool:
    """「… 3/26」 where 26 is the number of pages: a page number (after a URL, say)."""
    m = _OF_PAGES.search(text)
    return m is not None and int(m.group(2)) == pages and int(m.group(1)) <= pages


def is_web_furniture(text: str) -> bool:
    t = text.strip()
    c = cues()
    return t in c.furniture_lines or t.startswith(c.furniture_prefixes)


def strip_furniture(text: str) -> Cleaned:
    """Remove page furniture; pages (if any) end with ``\\f`` and are joined by ``\\n``."""
    paged = "\f" in text  # PDF text: every page ends with a form feed, a one-page PDF too
    pages = [p.split("\n") for p in (text[:-1] if text.endswith("\f") else text).split("\f")]
    edge_keys: Counter[str] = Counter()
    for lines in pages:
        nonblank = [x for x in lines if x.strip()]
        if len(nonblank) >= _MIN_PAGE:
            edge_keys.update({_key(x) for x in nonblank[:_EDGE] + nonblank[-_EDGE:]})
    # a running head is on most pages; three pages at least, so a short document keeps its lines
    running = {k for k, n in edge_keys.items() if len(pages) >= 3 and n >= max(3, 0.4 * len(pages))}
    kept: list[str] = []
    removed: list[str] = []
    for lines in pages:
        idx = [i for i, x in enumerate(lines) if x.strip()]
        edge = set(idx[:_EDGE] + idx[-_EDGE:]) if paged else set()
        for i, x in enumerate(lines):
            t = x.strip()
            # a line that reads as a heading is never taken for a running head
            drop = bool(t) and (
                _DASHED.match(t) is not None
                or (
                    i in edge
                    and (
                        (_key(x) in running and heading_ref(t) is None)
                        or _EDGE_NO.match(t) is not None
                        or _PAGE_NO.match(t) is not None
                        or _PRINT_STAMP.match(t) is not None
                        or _of_pages(t, len(pages))
                    )
                )
                or is_web_furniture(t)
            )
            (removed if drop else kept).append(x)
    return Cleaned("\n".join(kept), tuple(x.strip() for x in removed))
