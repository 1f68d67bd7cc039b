"""A document's metadata read from its text: title, 文号, issuing office, date, region, period, kind.

Read from the lines before the first heading (the 印发通知 and the title, or a regulation's
promulgation lines), then overridden key by key by ``<id>.meta.json``. The result has exactly
the keys of ``policyqa.models.META_KEYS``; what the text does not say is None.

Scope: 文号 like 「X政办发〔YYYY〕N号」 or 「国务院令第N号」; dates 「YYYY年M月D日」; the
office before 「关于印发」 or on a line of its own; the region at the start of the title (or of the
office), by the names in ``ingest/cues.yaml``; periods 「十四五」 / 「第十四个五年」 and year ranges
「YYYY—YYYY年」. Left out: several offices issuing jointly (the first is taken), lunar dates.
"""

from __future__ import annotations

import re
from typing import Any

from ingest.cues import cues
from policyqa.models import META_KEYS
from policyqa.text import cn_number, repair

RE_DOC_NUMBER = re.compile(
    r"[\u4e00-\u9fff]{1,16}〔\d{4}〕\d{1,4}号|[\u4e00-\u9fff]{0,16}令第\s*\d{1,4}\s*号"
)
RE_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
RE_PERIOD = re.compile(
    r"“([一二三四五六七八九十]{1,3})五”|([一二三四五六七八九十]{1,3})五(?:时期|规划|期间|计划)"
    r"|第([一二三四五六七八九十]{1,3})个五年"
)
RE_RANGE = re.compile(r"((?:19|20)\d{2})\s*[—–\-～~至到]\s*((?:19|20)\d{2})\s*年")
RE_OFFICE_LINE = re.compile(
    r"^[\u4e00-\u9fff（）()]{2,40}?(?:人民政府办公厅|人民政府办公室|人民政府|办公厅|委员会|国务院|部|厅|局|署)$"
)
RE_REGION_SUFFIX = re.compile(
    r"^[\u4e00-\u9fff]{0,8}?(?:壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区|省|市|自治州|州|盟|县|区|旗)"
)
PROMULGATION = ("公布", "印发", "发布", "发")


def period_years(n: int) -> tuple[int, int] | None:
    """The years of the n-th five-year plan (三五 = 1966–1970 onwards; the first two are irregular)."""
    if n < 3:
        return None
    start = 1966 + 5 * (n - 3)
    return start, start + 4


def _kind(title: str) -> str:
    best, best_len = "other", 0
    t = title.rstrip("》」”")
    for kind, endings in cues().kinds:
        for e in endings:
            if t.endswith(e) and len(e) > best_len:
                best, best_len = kind, len(e)
    return best


def _region(title: str, office: str | None) -> str | None:
    c = cues()
    for text in (title, office or ""):
        t = text.lstrip("《")
        if not t:
            continue
        if t.startswith(c.national) or t in c.national_offices:
            return c.national_region
        for name in sorted(c.regions, key=len, reverse=True):
            if t.startswith(name):
                m = RE_REGION_SUFFIX.match(t)
                # 「<name>壮族自治区…」 keeps the full name as written; 「<name>生态…」 the short one
                return (
                    m.group(0)
                    if m and len(m.group(0)) <= len(name) + 6 and m.group(0).startswith(name)
                    else name
                )
        m = RE_REGION_SUFFIX.match(t)
        if m and text is title and len(m.group(0)) >= 3:
            return m.group(0)
    if office and office.startswith(c.national_offices):
        return c.national_region
    return None


def read_meta(front: list[str], title: str | None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """``front``: the (repaired) lines before the first heading; ``title``: the detected title."""
    overrides = overrides or {}
    title = overrides.get("title") or title or ""
    lines = [repair(x) for x in front if x.strip()]
    joined = "\n".join(lines)
    doc_number = None
    m = RE_DOC_NUMBER.search(joined)
    if m:
        doc_number = re.sub(r"\s+", "", m.group(0))
    office = None
    for line in lines:
        if "关于" in line and line.index("关于") >= 2:
            office = line[: line.index("关于")].strip()
            break
        if RE_OFFICE_LINE.match(line):
            office = line
            break
    if office is None and doc_number and "令" in doc_number:
        # 「中华人民共和国国务院令第736号」: the office is named before 令
        office = re.sub(r"^中华人民共和国", "", doc_number.split("令")[0]) or None
    date = None
    dated = [(line, d) for line in lines for d in RE_DATE.finditer(line)]
    pick = next(((line, d) for line, d in dated if any(w in line for w in PROMULGATION)), None) or (
        dated[0] if dated else None
    )
    if pick:
        y, mo, d = pick[1].groups()
        date = f"{int(y):04d}-{int(mo):02d}-{int(d):02d}"
    period = start = end = None
    m = RE_PERIOD.search(title)
    if m:
        numeral = m.group(1) or m.group(2) or m.group(3)
        try:
            n = cn_number(numeral)
        except ValueError:
            n = 0
        years = period_years(n)
        if years:
            period = f"{numeral}五"
            start, end = years
    if start is None:
        r = RE_RANGE.search(title)
        if r:
            start, end = int(r.group(1)), int(r.group(2))
    short = re.sub(r"^中华人民共和国", "", title.strip("《》")) or title
    meta: dict[str, Any] = {
        "title": title or None,
        "short_title": short or None,
        "doc_number": doc_number,
        "office": office,
        "date": date,
        "region": _region(title, office),
        "period": period,
        "start_year": start,
        "end_year": end,
        "kind": _kind(title) if title else "other",
    }
    for k in META_KEYS:
        if overrides.get(k) not in (None, ""):
            meta[k] = overrides[k]
    return meta
