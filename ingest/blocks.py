"""Lines → blocks: headings, paragraphs joined across line wraps and page breaks, table lines, notes.

A block is a run of source lines that becomes one unit (or, for tables, one row line). What a
line is comes from its shape: 第X章 / 第X节 / 专栏N / 第X条 headings (``policyqa.refs``), outline
headings 一、 （一） 1. （1） (short lines), footnotes ①…, table lines (tab-, pipe- or
space-separated cells after a header row with year columns, or one cell a line).

Paragraph joining: a line that does not end a sentence continues on the next text line unless
that line opens a paragraph (a lead phrase 「加强……。」, 「——」, an outline heading, a 专栏 item).
Text printed to PDF also wraps at the page width: when most lines share one width, a line of that
width continues on the next line whatever its last character (``wrap_width``).

Left out: two-column layouts, tables whose rows wrap over several visual lines in a PDF (the
cells of such a row end up in the next row).
"""

from __future__ import annotations

import functools
import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from ingest.cues import cues
from ingest.lines import Line, line_span
from policyqa.refs import ARTICLE, CHAPTER, COLUMN, SECTION, heading_ref
from policyqa.text import repair

RE_OUTLINE = re.compile(
    r"^(?:[一二三四五六七八九十]{1,3}、|[（(][一二三四五六七八九十]{1,3}[）)]|\d{1,2}[.．、](?!\d)|[（(]\d{1,2}[）)])"
)
RE_ITEM = re.compile(r"^([^。：:；;，,]{2,40})[：:]")
RE_MARKS = re.compile(r"[①②③④⑤⑥⑦⑧⑨⑩]")
RE_NOTE = re.compile(r"^(注\s*[：:])?\s*[①②③④⑤⑥⑦⑧⑨⑩]")
RE_NOTE_HEAD = re.compile(r"^注\s*[：:]")
RE_BOX = re.compile(r"^附表\s*(\d{1,2}|[一二三四五六七八九十]{1,3})\s*(.*)$")
RE_ROW_NO = re.compile(r"^\d{1,2}[.．、](?!\d)")
RE_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")
RE_YEAR_CELL = re.compile(r"^(?:19|20)\d{2}\s*年?$")
RE_TAGS = re.compile(r"</?p\s*>")
SENTENCE_END = tuple("。！？；!?;：:”’）)」』")
HEADER_WORDS = ("类别", "属性", "单位", "序号", "年")


def ends_sentence(text: str) -> bool:
    t = RE_TAGS.sub("", text).rstrip()
    return not t or t.endswith(SENTENCE_END)


def lead_phrase(text: str) -> str | None:
    """The bold topic sentence opening a paragraph: a short first sentence with no comma."""
    m = re.match(r"^(?:——)?([^。！？]{2,40}[。！？])", text)
    if not m or re.search(r"[，,；;：:]", m.group(1)):
        return None
    return m.group(1)


@functools.lru_cache(maxsize=1)
def _jieba():  # noqa: ANN202 - the jieba module
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def joins_word(before: str, after: str) -> bool:
    """Does a dictionary word straddle the break (「因地制宜选」+「择合适」 → 选择)?

    Page breaks fall mid-word as often as not; a straddling word is strong evidence that the two
    lines are one paragraph, even when the second looks like a paragraph opening.
    """
    a, b = before[-4:], after[:4]
    pos = 0
    for w in _jieba().cut(a + b, HMM=False):
        if pos < len(a) < pos + len(w):
            return True
        pos += len(w)
    return False


def width(text: str) -> float:
    """Printed width in CJK characters: Latin letters, digits and spaces count half."""
    return sum(0.5 if ord(c) < 0x2E80 and c not in "“”‘’—" else 1.0 for c in text.strip())


def wrap_width(lines: list[Line]) -> float | None:
    """The width at which the text was wrapped (a PDF's full line), or None for unwrapped text.

    Wrapped text has many lines of nearly the same width; a text with one paragraph a line has
    widths spread out. A line within ``FULL_SLACK`` of this width is full.
    """
    ws = [width(x.text) for x in lines if width(x.text) >= 20]
    if len(ws) < 10:
        return None
    counts = Counter(round(w) for w in ws)
    top, _ = max(
        counts.items(), key=lambda kv: (kv[1] + counts.get(kv[0] - 1, 0) + counts.get(kv[0] + 1, 0), kv[0])
    )
    near = sum(n for w, n in counts.items() if abs(w - top) <= 1)
    if near < 0.25 * len(ws):
        return None
    return float(top)


FULL_SLACK = 2.0  # a full line that breaks mid-sentence may fall short of the width by a character
# A line that ends a sentence exactly at the width continues (measured on the plan printed by
# chromium: mid-paragraph 。 lines are 48.5–49 wide at width 49, a paragraph's last line 40–50.5).
SENTENCE_SLACK = 0.5


def is_note_line(text: str) -> bool:
    return bool(RE_NOTE.match(RE_TAGS.sub("", text).strip()))


def classify(text: str) -> str:
    """chapter / section / column / article / box / subheading / table / text."""
    if "\t" in text:
        return "table"
    t = text.strip()
    h = heading_ref(t)
    if h is not None:
        kind = h[0].kind
        if kind == ARTICLE:
            return "article"
        if len(t) <= 60 and not t.endswith("。") and kind in (CHAPTER, SECTION, COLUMN):
            return kind
    if len(t) <= 40 and not t.endswith("。") and RE_BOX.match(t):
        return "box"
    if len(t) <= 40 and RE_OUTLINE.match(t) and not re.search(r"[。；]", t[:-1]):
        return "subheading"
    return "text"


def is_table_header(text: str) -> bool:
    """A header row of a table with year columns, whatever separates its cells."""
    t = text.strip()
    if "\t" in t or t.count("|") >= 3:
        return len(RE_YEAR.findall(t)) >= 2
    return (
        len(t) <= 80
        and not re.search(r"[。，；]", t)
        and len(RE_YEAR.findall(t)) >= 2
        and len(t.split()) >= 4
    )


def one_cell_header(lines: list[Line], i: int) -> int:
    """If a one-cell-a-line table header starts at ``lines[i]``, the number of its lines, else 0."""
    words = cues().name_headers + HEADER_WORDS
    if not any(w in lines[i].text for w in words):
        return 0
    run: list[str] = []
    for line in lines[i:]:
        t = line.text
        if not t:
            continue
        if len(t) > 12 or re.search(r"[。，；]", t) or RE_ROW_NO.match(t) or classify(t) != "text":
            break
        run.append(t)
    if sum(1 for t in run if RE_YEAR_CELL.match(t)) < 2:
        return 0
    last = max(k for k, t in enumerate(run) if RE_YEAR_CELL.match(t) or any(w in t for w in words))
    return last + 1


@dataclass(frozen=True)
class Block:
    """A run of source lines that becomes one unit."""

    kind: str
    lines: tuple[Line, ...]
    spans: tuple[tuple[int, int], ...]

    def text(self, source: str, sep: str = "") -> str:
        return sep.join(repair(source[s:e]) for s, e in self.spans)


def split_note_line(line: Line) -> list[tuple[bool, tuple[int, int]]]:
    """A line may hold several 「<p>②…</p>」 notes: its pieces, each with whether it opens a note."""
    starts = sorted({0, *(m.start() for m in re.finditer(r"<p>", line.raw))})
    ends = starts[1:] + [len(line.raw)]
    out = []
    for s, e in zip(starts, ends, strict=True):
        piece = line.raw[s:e]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            out.append((is_note_line(piece), (line.start + s + lead, line.start + s + len(piece.rstrip()))))
    return out


def note_blocks(group: list[Line]) -> Iterator[Block]:
    """Lines holding footnotes → one block per note (a note may run over several lines)."""
    current: list[tuple[Line, tuple[int, int]]] = []
    for line in group:
        for opens, span in split_note_line(line):
            if opens and current:
                yield Block("note", tuple(dict.fromkeys(x for x, _ in current)), tuple(s for _, s in current))
                current = []
            current.append((line, span))
    if current:
        yield Block("note", tuple(dict.fromkeys(x for x, _ in current)), tuple(s for _, s in current))


def _note_continues(before: str, after: str, full: float | None) -> bool:
    if is_note_line(after) or classify(after) != "text" or "\t" in after:
        return False
    return (full is not None and width(before) >= full - FULL_SLACK) or not ends_sentence(before)


def _opens_paragraph(text: str, in_column: bool) -> bool:
    if in_column:
        return bool(RE_ITEM.match(text))
    return text.startswith("——") or lead_phrase(text) is not None or bool(RE_OUTLINE.match(text))


def is_continuation(
    before: str, after: str, in_column: bool, full: float | None = None, first: bool = True
) -> bool:
    """Is ``after`` (the next non-blank line) the rest of the paragraph ``before`` ends?

    ``first``: ``before`` is the paragraph's first line (a short first line may be a title).
    """
    kind = classify(after)
    if full is not None and width(before) >= full - FULL_SLACK:
        if kind not in ("text", "subheading"):
            # a heading-like line right after a wrapped line is its tail when it ends a sentence
            return (
                kind != "table"
                and not ends_sentence(before)
                and (ends_sentence(after) or width(after) >= full - FULL_SLACK)
            )
        if not ends_sentence(before):
            return True
        if abs(width(before) - full) <= SENTENCE_SLACK:
            return not (
                after.startswith("——") or RE_OUTLINE.match(after) or (in_column and RE_ITEM.match(after))
            )
        return False
    if ends_sentence(before) or (first and len(before) <= 30 and not re.search(r"[，。；、]", before)):
        return False
    if kind != "text":
        return False
    return not _opens_paragraph(after, in_column) or joins_word(before, after)


def has_row_no(text: str) -> bool:
    """Does the line hold a row number 「13.」 (after a category cell, perhaps)?"""
    return any(RE_ROW_NO.match(t) for t in text.split()[:6])


def _table_ends(text: str, tab_mode: bool, full: float | None) -> bool:
    if tab_mode:
        return "\t" not in text
    if classify(text) not in ("text", "subheading") or is_note_line(text):
        return True
    if full is not None and width(text) >= full - FULL_SLACK and not has_row_no(text):
        return True
    return (text.endswith("。") and len(text) > 30) or (len(text) > 30 and not re.search(r"\d", text))


def blocks(lines: list[Line]) -> Iterator[Block]:
    """Group lines into blocks (see the module docstring)."""
    full = wrap_width(lines)
    in_column = False
    in_table = False  # inside a table or right after it (its notes follow)
    table_mode: str | None = None  # "tab" or "loose" while table rows are being read
    i, n = 0, len(lines)

    def one(kind: str, line: Line) -> Block:
        return Block(kind, (line,), (line_span(line),))

    while i < n:
        line = lines[i]
        t = line.text
        if not t:
            i += 1
            continue
        if table_mode is not None and _table_ends(t, table_mode == "tab", full):
            table_mode = None
        if table_mode is None and not is_note_line(t):
            if "\t" in line.raw:
                table_mode = "tab"
            elif is_table_header(t) or (len(t) <= 12 and one_cell_header(lines, i)):
                table_mode = "loose"
        if table_mode is not None:
            in_table = True
            yield one("table", line)
            i += 1
            continue
        kind = classify(line.raw)
        if kind in ("chapter", "section", "article"):
            in_column = in_table = False
        if kind in ("column", "box"):
            in_column, in_table = kind == "column", False
        # footnotes: ①… lines after a table, or any run that opens with 「注：」
        if is_note_line(t) and (in_table or RE_NOTE_HEAD.match(RE_TAGS.sub("", t).strip())):
            in_table = True  # the ①… lines that follow are notes too
            group = [line]
            j = i + 1
            while j < n and not lines[j].text:
                j += 1
            # a footnote wrapped over several lines (PDF) is one note
            while j < n and _note_continues(group[-1].text, lines[j].text, full):
                group.append(lines[j])
                j += 1
                while j < n and not lines[j].text:
                    j += 1
            yield from note_blocks(group)
            i = group[-1].no  # lines are numbered from 1: the index after the group
            continue
        if kind == "article":
            group = [line]
            j = i + 1
            # an article runs to the next heading: its 款 and 项 lines are part of it
            while j < n and (not lines[j].text or classify(lines[j].raw) in ("text", "subheading")):
                if lines[j].text:
                    group.append(lines[j])
                j += 1
            yield Block("article", tuple(group), tuple(line_span(x) for x in group))
            i = j
            continue
        if kind != "text":
            in_table = in_table and kind == "subheading"
            yield one(kind, line)
            i += 1
            continue
        in_table = False
        group = [line]
        while True:
            j = i + 1
            while j < n and not lines[j].text:
                j += 1
            if j >= n or not is_continuation(group[-1].text, lines[j].text, in_column, full, len(group) == 1):
                break
            group.append(lines[j])
            i = j
        yield Block("text", tuple(group), tuple(line_span(x) for x in group))
        i += 1
