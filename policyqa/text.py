"""Pure text helpers: PDF-artefact repair, the canonical form quotes are checked in,
Chinese numerals, sentence splitting, traditional → simplified.

Scope: the artefacts seen in text extracted from Chinese government PDFs (spaces inside CJK
runs, ``<p>`` tags, TeX-ish sub/superscripts). Not handled: full-width/half-width digit
folding, OCR errors.
"""

from __future__ import annotations

import functools
import re

CJK = r"\u3400-\u9fff\uf900-\ufaff"
# CJK characters and full-width punctuation: a space next to one of these is a PDF artefact.
_WIDE = CJK + r"\u3000-\u303f\uff00-\uffef\u2014\u2018\u2019\u201c\u201d\u2460-\u2473\u2160-\u217f"
_SPACE_NEXT_TO_WIDE = re.compile(rf"(?<=[{_WIDE}])[ \u00a0\u3000]+|[ \u00a0\u3000]+(?=[{_WIDE}])")
_TAGS = re.compile(r"</?p\s*>", re.I)
_PM = re.compile(r"PM\s*_?\s*\{?\s*(2\.5|10)(?:\s*\})?")
_O3 = re.compile(r"(?<![A-Za-z])O\s*_?\{?3\}?(?![0-9])")
_SUPER_MARK = re.compile(r"\s*\^\s*([①②③④⑤⑥⑦⑧⑨⑩])")
_CUBE = re.compile(r"m\s+³")
_WS = re.compile(r"\s+")


def repair(raw: str) -> str:
    """Repair PDF-extraction artefacts in one line or paragraph of text.

    Drops ``<p>`` tags, writes PM2.5 / O₃ / μg/m³ / footnote markers one way, and removes
    spaces next to CJK characters. Spaces between Latin words are kept (single).
    """
    t = _TAGS.sub(" ", raw)
    t = _PM.sub(lambda m: f"PM{m.group(1)}", t)
    t = _O3.sub("O₃", t)
    t = _SUPER_MARK.sub(r"\1", t)
    t = _CUBE.sub("m³", t)
    t = t.replace("\t", " ")
    t = _SPACE_NEXT_TO_WIDE.sub("", t)
    t = re.sub(r"[ \u00a0]{2,}", " ", t)
    return t.strip()


def canon(text: str) -> str:
    """The form in which quotes are compared with the source: repaired, whitespace removed."""
    return _WS.sub("", repair(text))


def quote_in_source(quote: str, source_canon: str) -> bool:
    """Is ``quote`` in the source (given as ``canon(source)``), whitespace aside?"""
    q = canon(quote)
    return bool(q) and q in source_canon


_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}


_RE_CN_NUMBER = re.compile(
    r"^(?:([一二两三四五六七八九])?十([一二三四五六七八九])?|([零〇一二两三四五六七八九]))$"
)
_RE_CN_HUNDRED = re.compile(r"^([一二两三四五六七八九])百(?:[零〇]?([一二三四五六七八九十].*))?$")


def cn_number(s: str) -> int:
    """Chinese numeral (一 … 九百九十九, as articles are numbered: 第一百零五条) or Arabic digits
    → int. Raises ValueError for anything else (「十十」「二二」 included)."""
    s = s.strip()
    if s.isascii() and s.isdigit():
        return int(s)
    h = _RE_CN_HUNDRED.match(s)
    if h:
        rest = h.group(2)
        # 一百一十 is written with 一十; 一百十 (rare) is read the same way
        rest_no = cn_number(rest[1:] if rest and rest.startswith("一十") else rest) if rest else 0
        return _DIGITS[h.group(1)] * 100 + rest_no
    m = _RE_CN_NUMBER.match(s)
    if not m:
        raise ValueError(f"not a Chinese numeral: {s!r}")
    tens, ones, single = m.groups()
    if single:
        return _DIGITS[single]
    return (_DIGITS[tens] if tens else 1) * 10 + (_DIGITS[ones] if ones else 0)


_CN = "一二三四五六七八九"


def to_cn_number(n: int) -> str:
    """int (1–999) → Chinese numeral as used in headings (第十三章, 第一百零五条)."""
    if n >= 100:
        hundreds, rest = divmod(n, 100)
        if rest == 0:
            return _CN[hundreds - 1] + "百"
        tail = to_cn_number(rest)
        return _CN[hundreds - 1] + "百" + ("零" + tail if rest < 10 else ("一" + tail if rest < 20 else tail))
    if n < 10:
        return _CN[n - 1]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else _CN[tens - 1]) + "十" + ("" if ones == 0 else _CN[ones - 1])


_SENT_END = re.compile(r"(?<=[。！？；!?;])")


def split_sentences(text: str) -> list[str]:
    """Split on 。！？； keeping the punctuation; a closing quote stays with its sentence."""
    parts = []
    for p in _SENT_END.split(text):
        if parts and p[:1] in "”’」』）)":
            parts[-1] += p[:1]
            p = p[1:]
        if p.strip():
            parts.append(p)
    return [p.strip() for p in parts if p.strip()]


@functools.lru_cache(maxsize=1)
def _t2s():  # noqa: ANN202 - opencc's converter type
    import opencc

    return opencc.OpenCC("t2s")


@functools.lru_cache(maxsize=16384)  # the same sentences are converted on every question
def to_simplified(text: str) -> str:
    """Traditional → simplified Chinese (OpenCC t2s); other text unchanged."""
    if not re.search(f"[{CJK}]", text):
        return text
    return _t2s().convert(text)
