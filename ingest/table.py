"""Table lines → rows and cells → indicator rows with the years their header names.

Cells are recovered whatever separates them: tabs, pipes, runs of two or more spaces, one cell
a line, or single spaces (as pypdf prints a table: then a row is split by its shape — an optional
category, 「N. 名称（单位）」, value cells, an attribute word from ``ingest/cues.yaml``). The
baseline and target years are the first and last year columns of the header (「YYYY年 YYYY年」
or bare 「YYYY YYYY」); a header without years gives values with no year and a warning, never a guess.

Left out: merged header cells spanning several rows, more than one table per 专栏 box, columns
other than category / name / years / attribute (an extra year column in the middle is ignored
with a warning).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ingest.blocks import RE_MARKS, RE_ROW_NO, RE_YEAR, RE_YEAR_CELL
from ingest.cues import cues
from ingest.lines import Line
from policyqa.models import Indicator, IndicatorRow, Note, Value
from policyqa.text import repair

RE_INDICATOR_CELL = re.compile(r"^(\d{1,2})[.．、]\s*([^\d\s].*)$")
_NUMERIC = re.compile(r"^[-+]?\d[\d.,]*%?(?:\^?[①②③④⑤⑥⑦⑧⑨⑩])*$")
_DASH = re.compile(r"^[—–\-－/／]+$")
_MARK_TOKEN = re.compile(r"^\^?[①②③④⑤⑥⑦⑧⑨⑩]+$")


def split_value(cell: str) -> tuple[str | None, list[str], str | None]:
    """「100①(按N个考核断面)」 → ("100", ["①"], "按N个考核断面")."""
    if not cell:
        return None, [], None
    remark = None
    m = re.search(r"[（(]([^（）()]+)[）)]\s*$", cell)
    if m and not re.match(r"^[（(]", cell):
        remark, cell = m.group(1), cell[: m.start()]
    marks = RE_MARKS.findall(cell)
    value = RE_MARKS.sub("", cell).strip() or None
    return value, marks, remark


def split_name(cell: str) -> tuple[str, str | None, list[str]]:
    """「近岸海域优良水质比例③(%)」 → ("近岸海域优良水质比例", "%", ["③"])."""
    marks = RE_MARKS.findall(cell)
    cell = RE_MARKS.sub("", cell).strip()
    m = re.search(r"[（(]([^（）()]+)[）)]\s*$", cell)
    if m:
        return cell[: m.start()].strip(), m.group(1).strip(), marks
    return cell, None, marks


# ----------------------------------------------------------------------------- cells


def cell_mode(lines: list[Line]) -> str:
    """How the cells of these table lines are separated: tab, pipe, spaces, lines or single."""
    texts = [x.raw for x in lines if x.text]
    if any("\t" in t for t in texts):
        return "tab"
    if sum(1 for t in texts if t.count("|") >= 2) >= len(texts) / 2:
        return "pipe"
    if any(re.search(r"\S {2,}\S", t.strip()) for t in texts):
        return "spaces"
    if texts and all(len(t.split()) == 1 for t in texts[:3]):
        return "lines"
    return "single"


def split_cells(raw: str, mode: str) -> list[str]:
    """One line → its cells (repaired), for the separated modes."""
    if mode == "tab":
        parts = raw.split("\t")
    elif mode == "pipe":
        t = raw.strip()
        if re.fullmatch(r"[|:\-\s]+", t):  # a Markdown separator row
            return []
        parts = t.strip("|").split("|")
    elif mode == "spaces":
        parts = re.split(r" {2,}|\u3000+", raw.strip())
    else:
        parts = [raw]
    return [repair(c) for c in parts]


def _chunks(tokens: list[str]) -> list[list[str]]:
    """Value tokens → cells: a number or dash is a cell; words next to words are one cell (the
    spaces inside them are the PDF's); a parenthesis group stays with the cell before it."""
    out: list[list[str]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if _MARK_TOKEN.match(tok) and out:
            out[-1].append(tok)
        elif tok[:1] in "(（" and out:
            group = [tok]
            while not re.search(r"[)）]$", group[-1]) and i + 1 < len(tokens):
                i += 1
                group.append(tokens[i])
            out[-1].extend(group)
        elif _NUMERIC.match(tok) or _DASH.match(tok):
            out.append([tok])
        elif out and not (_NUMERIC.match(out[-1][0]) or _DASH.match(out[-1][0])):
            out[-1].append(tok)
        else:
            out.append([tok])
        i += 1
    return out


def _split_words(chunk: list[str], parts: int, known: set[str]) -> list[list[str]]:
    """A run of word tokens that holds ``parts`` cells: split where a known cell text ends, else evenly."""
    if parts <= 1 or len(chunk) < parts:
        return [chunk]
    for k in range(1, len(chunk)):
        a, b = "".join(chunk[:k]), "".join(chunk[k:])
        if a in known or b in known:
            return [chunk[:k], *_split_words(chunk[k:], parts - 1, known)]
    k = len(chunk) // parts
    return [chunk[:k], *_split_words(chunk[k:], parts - 1, known)]


def single_space_cells(text: str, n_values: int, known: set[str]) -> list[str] | None:
    """A pypdf row 「类别 1. 名称 (%) 9.7 ^① 文字 值 约束性」 → cells
    [category, "1. 名称 (%)", value…, attribute]; None when the line has no row number."""
    tokens = text.split()
    k = next((i for i, t in enumerate(tokens) if RE_ROW_NO.match(t)), None)
    if k is None:
        return None
    category = "".join(tokens[:k])
    no_tok = tokens[k]
    m = re.match(r"^(\d{1,2}[.．、])(.*)$", no_tok)
    assert m
    rest = ([m.group(2)] if m.group(2) else []) + tokens[k + 1 :]
    attribute = ""
    if rest and rest[-1] in cues().attributes:
        attribute = rest.pop()
    # the name ends at its last parenthesis before the first figure (「名称 (PM2.5) 浓度 (μg/m ³) 26」)
    first_value = next((i for i, t in enumerate(rest) if _NUMERIC.match(t) or _DASH.match(t)), len(rest))
    closes = [i for i, t in enumerate(rest[:first_value]) if re.search(r"[)）]$", t)]
    end = closes[-1] + 1 if closes else (first_value if first_value < len(rest) else 1)
    name, values = rest[:end], rest[end:]
    chunks = _chunks(values)
    want = n_values + (0 if attribute else 1)  # a row without attribute may carry a scope first
    # 「不低于 35」: a word cell before a figure is one cell when there are too many cells
    while len(chunks) > want:
        merged = False
        for i in range(len(chunks) - 1):
            if not _NUMERIC.match(chunks[i][0]) and _NUMERIC.match(chunks[i + 1][0]):
                chunks[i : i + 2] = [chunks[i] + chunks[i + 1]]
                merged = True
                break
        if not merged:
            break
    while 0 < len(chunks) < n_values:
        i = max(range(len(chunks)), key=lambda j: len(chunks[j]))
        parts = _split_words(chunks[i], n_values - len(chunks) + 1, known)
        if len(parts) == 1:
            break
        chunks[i : i + 1] = parts
    cells = [category, f"{m.group(1)} {' '.join(name)}", *[" ".join(c) for c in chunks]]
    if attribute:
        cells.append(attribute)
    return [repair(c) for c in cells]


# ----------------------------------------------------------------------------- rows


@dataclass
class RowDraft:
    """An indicator row while its table is read (footnotes are resolved afterwards)."""

    no: int
    category: str | None
    name: str
    unit: str | None
    marks: list[str]
    baseline: str | None = None
    target: str | None = None
    attribute: str | None = None
    remark: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)


@dataclass(frozen=True)
class TableRead:
    head: tuple[Line, ...]  # the header lines
    years: tuple[int | None, int | None]  # baseline, target
    drafts: tuple[RowDraft, ...]
    other: tuple[tuple[Line, ...], ...]  # rows of a table without numbered indicators
    warnings: tuple[str, ...] = ()


def _header_years(text: str) -> tuple[list[int], list[str]]:
    years = [int(y) for y in RE_YEAR.findall(text)]
    warnings: list[str] = []
    if len(years) < 2:
        warnings.append(f"指标表表头「{text[:40]}」中没有两个年份列：基期与目标年份未标注")
    elif len(years) > 2:
        warnings.append(
            f"指标表表头有 {len(years)} 个年份列：只读取第一列（{years[0]}）与最后一列（{years[-1]}）"
        )
    return years, warnings


def _rows_one_cell(lines: list[Line], n_head: int, n_after_name: int) -> list[tuple[list[Line], list[str]]]:
    """One cell a line → rows: a row opens at 「N. 名称」; cells beyond the expected count before
    the next row number are the next row's category."""
    body = [x for x in lines[n_head:] if x.text]
    starts = [i for i, x in enumerate(body) if RE_ROW_NO.match(x.text)]
    rows: list[tuple[list[Line], list[str]]] = []
    category_lines: list[Line] = [x for x in body[: starts[0]]] if starts else []
    for s_i, s in enumerate(starts):
        end = starts[s_i + 1] if s_i + 1 < len(starts) else len(body)
        cells_lines = body[s + 1 : end]
        nxt_cat: list[Line] = []
        if s_i + 1 < len(starts) and len(cells_lines) > n_after_name:
            nxt_cat = cells_lines[n_after_name:]
            cells_lines = cells_lines[:n_after_name]
        cat = "".join(repair(x.text) for x in category_lines)
        row_lines = [*category_lines, body[s], *cells_lines]
        rows.append((row_lines, [cat, repair(body[s].text), *[repair(x.text) for x in cells_lines]]))
        category_lines = nxt_cat
    return rows


def read_table(lines: list[Line]) -> TableRead:
    """Table lines (header first) → header, years and indicator drafts."""
    mode = cell_mode(lines)
    texts = [x for x in lines if x.text]
    if not texts:
        return TableRead((), (None, None), (), ())
    n_head = 1
    if mode == "lines":
        # the header runs up to the first row number, less the first row's category
        first = next((i for i, x in enumerate(texts) if RE_ROW_NO.match(x.text)), len(texts))
        n_head = max(1, first - 1) if first > 1 and not RE_YEAR_CELL.match(texts[first - 1].text) else first
    head = tuple(texts[:n_head])
    head_text = " ".join(x.text for x in head)
    years, warnings = _header_years(head_text)
    n_values = max(2, len(years)) if years else 2
    header_cells = [h.text for h in head] if mode == "lines" else split_cells(head[0].raw, mode)
    name_col = next((i for i, c in enumerate(header_cells) if c in cues().name_headers), 1)
    rows: list[tuple[list[Line], list[str]]]
    if mode == "lines":
        rows = _rows_one_cell(texts, n_head, len(header_cells) - name_col - 1)
    elif mode == "single":
        known: set[str] = set()
        # cells that stand alone in some row tell where to split the words of another
        for x in texts[n_head:]:
            c = single_space_cells(x.text, n_values, set())
            if c:
                known.update(v for v in c[2:] if not _NUMERIC.match(v))
        rows = []
        for x in texts[n_head:]:
            c = single_space_cells(x.text, n_values, known)
            rows.append(([x], c if c is not None else [repair(p) for p in _chunk_texts(x.text)]))
    else:
        rows = [([x], split_cells(x.raw, mode)) for x in texts[n_head:]]
    drafts, other = _drafts(rows, n_values)
    ys: tuple[int | None, int | None] = (years[0], years[-1]) if len(years) >= 2 else (None, None)
    if not drafts:
        warnings = []  # a table without numbered rows is no indicator table: its years do not matter
    return TableRead(head, ys, tuple(drafts), tuple(tuple(r) for r in other), tuple(warnings))


def _chunk_texts(text: str) -> list[str]:
    return [" ".join(c) for c in _chunks(text.split())]


def _drafts(
    rows: list[tuple[list[Line], list[str]]], n_values: int
) -> tuple[list[RowDraft], list[list[Line]]]:
    drafts: list[RowDraft] = []
    other: list[list[Line]] = []
    category: str | None = None
    attributes = cues().attributes
    for lines, cells in rows:
        k = next((i for i, c in enumerate(cells) if RE_INDICATOR_CELL.match(c)), None)
        if k is None:
            filled = [c for c in cells if c]
            if not drafts:
                other.append(lines)
                continue
            d = drafts[-1]
            d.lines.extend(lines)
            if not filled:
                continue
            if len(filled) == 1 and not re.search(r"\d", filled[0]) and d.rows:
                d.rows[-1]["scope"] += filled[0]  # a scope cell split across lines
            elif len(filled) >= 2:
                v_b, m_b, _ = split_value(filled[1])
                v_t, m_t, _ = split_value(filled[-1]) if len(filled) > 2 else (None, [], None)
                d.rows.append({"scope": filled[0], "baseline": v_b, "target": v_t, "marks": m_b + m_t})
            continue
        before = "".join(c for c in cells[:k] if c)
        if before:
            category = before
        m = RE_INDICATOR_CELL.match(cells[k])
        assert m
        name, unit, marks = split_name(m.group(2))
        d = RowDraft(int(m.group(1)), category, name, unit, marks, lines=list(lines))
        rest = [c for c in cells[k + 1 :] if c]
        if rest and rest[-1] in attributes:
            d.attribute = rest.pop()
        if len(rest) == n_values + 1 and d.attribute is None:
            # scope, baseline, target: the row is split by scope over the next lines
            v_b, m_b, _ = split_value(rest[1])
            v_t, m_t, _ = split_value(rest[-1])
            d.rows.append({"scope": rest[0], "baseline": v_b, "target": v_t, "marks": m_b + m_t})
        else:
            if rest:
                d.baseline, mb, d.remark = split_value(rest[0])
                d.marks += mb
            if len(rest) > 1:
                d.target, mt, _ = split_value(rest[min(len(rest), n_values) - 1])
                d.marks += mt
        drafts.append(d)
    return drafts, other


def build_indicator(d: RowDraft, notes: dict[str, str], years: tuple[int | None, int | None]) -> Indicator:
    base, target = years
    row_marks = [m for r in d.rows for m in r["marks"]]
    markers = list(dict.fromkeys(d.marks + row_marks))
    return Indicator(
        no=d.no,
        category=d.category,
        name=d.name,
        unit=d.unit,
        baseline=Value(base, None if d.rows else d.baseline),  # type: ignore[arg-type]
        target=Value(target, None if d.rows else d.target),  # type: ignore[arg-type]
        attribute=d.attribute,
        notes=tuple(Note(m, notes[m]) for m in markers if m in notes),
        rows=tuple(
            IndicatorRow(
                scope=r["scope"],
                baseline=Value(base, r["baseline"]),  # type: ignore[arg-type]
                target=Value(target, r["target"]),  # type: ignore[arg-type]
                notes=tuple(r["marks"]),
            )
            for r in d.rows
        ),
        remark=d.remark,
    )
