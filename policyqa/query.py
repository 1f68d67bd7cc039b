"""One analysis of a question, computed once: ``analyze(question, index) → Query``.

A ``Query`` holds what every later step needs: the normalised text (and the same text with the
documents' terms for everyday and English words appended, for BM25), references to parts
(``Ref``), topic terms with their variants and weights, places, years, five-year periods, what
is asked (``Ask``), the indicator rows the question names, and the document it names.

Words come from ``policyqa.lexicon`` (kb/ files) and from the documents' own metadata and
structure; nothing here knows a particular document. Left out: spelling correction beyond the
synonym table (the dense retriever carries misspelt questions), coreference inside one question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from policyqa.lexicon import Lexicon, lexicon_for
from policyqa.refs import CHAPTER, COLUMN, INDICATOR, SECTION, Ref, find_refs, strip_refs
from policyqa.text import repair, to_simplified

if TYPE_CHECKING:
    from policyqa.index import Index


class Ask(StrEnum):
    AMOUNT = "amount"
    WHEN = "when"
    WHO = "who"
    WHERE = "where"
    WHETHER = "whether"
    LIST = "list"
    COMPARE = "compare"
    EXPLAIN = "explain"
    NAVIGATION = "navigation"
    OUTLINE = "outline"
    TABLE = "table"
    CLAIM = "claim"  # a premise to confirm or correct
    ISSUED = "issued"  # the document itself: who issued it, when, its 文号
    MONEY = "money"  # the amount asked is a sum of money (with AMOUNT only)


RE_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")
# five-year periods are how Chinese plans name themselves: 十三五, 十四五, 十五五
RE_PERIOD = re.compile(r"十[一二三四五六七八九]五")
RE_CJK = re.compile(r"[\u4e00-\u9fff]")
RE_LATIN_WORD = re.compile(r"[A-Za-z]{3,}")
# ask kinds whose cue phrases are removed before topic words are read (「在哪一节」「讲什么」);
# compare cues span topic words (「比2020年提高」) and stay
CUE_KINDS = ("where", "navigation", "outline", "when", "who", "whether", "claim", "list", "amount")
# keyness (stats.keyness) below which a word the documents use is everyday speech, not a topic
MIN_KEYNESS = 5.0
OOV_WEIGHT = 0.25  # share of a token's IDF kept for a word no document contains
STORY_WEIGHT = 0.4  # share of a word's weight kept when only the story before the request says it
# relative references to chapters: the last one
RE_LAST_CHAPTER = re.compile(r"最后一章|末章|最后一部分|the last chapter", re.I)


@dataclass(frozen=True)
class Term:
    """A topic word of the question, the documents' terms for it, and its weight (IDF)."""

    word: str
    variants: tuple[str, ...]
    weight: float
    place: bool = False  # a place the documents name (南宁, 漓江): a constraint, not a topic
    parts: tuple[str, ...] = ()  # the word's own sub-words (保护措施 → 保护, 措施), fillers left out
    known: bool = True  # the documents contain it (or a variant, or all its parts)
    # names a subject of its own (kb/lexicon/topics.txt: 户口, 个税) that no document uses: a
    # missing topic, not colloquial colour
    outside: bool = False
    # said only in the story a question tells before what it asks (「我在柳州上班，…。规划对施工
    # 工地的扬尘怎么要求？」): context, weighed less and no constraint
    story: bool = False
    # the weight as a share of the rarest possible word's (stats.max_idf): comparable across
    # libraries of any size, where the IDF itself is not
    rarity: float = 0.0

    @property
    def named(self) -> bool:
        """A word a refusal may name: one the documents use, or a subject they lack."""
        return self.known or self.outside

    def found_in(self, text_lower: str) -> bool:
        if any(v.lower() in text_lower for v in self.variants):
            return True
        return bool(self.parts) and all(p in text_lower for p in self.parts)


@dataclass(frozen=True)
class Query:
    text: str  # as asked
    normalized: str  # simplified, repaired, with the documents' terms for its words appended
    asked: str = ""  # simplified and repaired, nothing appended
    refs: tuple[Ref, ...] = ()
    terms: tuple[Term, ...] = ()
    years: tuple[int, ...] = ()
    periods: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()  # gazetteer regions named (full names)
    asks: frozenset[Ask] = frozenset()
    indicator_nos: tuple[int, ...] = ()  # rows the question names by number or by name
    doc: str | None = None  # the document the question names (title, short title, 文号)
    scope: tuple[str, ...] = ()  # documents left in scope after region / period conflicts (empty: all)
    english: bool = False
    content_chars: int = 0  # characters left once references, cues and fillers are removed
    # asks who issued the document, when, its 文号 — and nothing else (see ``_about_document``)
    about_document: bool = False
    names_table: bool = False  # names the indicator table itself (asks.yaml ``table_named``)
    extra: dict[str, str] = field(default_factory=dict, compare=False)  # debugging notes

    # references by kind (the first of each)
    def ref(self, kind: str) -> Ref | None:
        return next((r for r in self.refs if r.kind == kind), None)

    @property
    def chapter_no(self) -> int | None:
        s = self.ref(SECTION)
        if s is not None and s.chapter is not None:
            return s.chapter
        c = self.ref(CHAPTER)
        return c.no if c else None

    @property
    def section_no(self) -> int | None:
        s = self.ref(SECTION)
        return s.no if s else None

    @property
    def column_no(self) -> int | None:
        cols = [r for r in self.refs if r.kind == COLUMN]
        return cols[0].no if len(cols) == 1 else None  # 「专栏2至专栏9」 names no one 专栏

    @property
    def explicit_indicator(self) -> bool:
        return self.ref(INDICATOR) is not None

    @property
    def topic(self) -> tuple[Term, ...]:
        """The terms that are no places."""
        return tuple(t for t in self.terms if not t.place)

    @property
    def places(self) -> tuple[str, ...]:
        """Places that constrain the answer: named in what is asked, not only in the story."""
        return tuple(t.word for t in self.terms if t.place and not t.story)

    def has(self, ask: Ask) -> bool:
        return ask in self.asks

    def with_terms(self, terms: tuple[Term, ...]) -> Query:
        return replace(self, terms=terms)


def normalize_question(text: str) -> str:
    """Simplified, repaired text; invisible and control characters removed."""
    # lone surrogates (valid in JSON, not in UTF-8) crash the e5 engine; zero-width and bidi
    # marks split words invisibly (「森\u200b林」)
    t = re.sub(r"[\ud800-\udfff]", "\ufffd", text or "")
    t = re.sub(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]", "", t)
    t = to_simplified(t)
    t = re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", " ", t)
    return repair(t).strip()


def is_english(text: str) -> bool:
    return not RE_CJK.search(text) and len(RE_LATIN_WORD.findall(text)) >= 2


def expand(text: str, lex: Lexicon) -> str:
    """Append the documents' terms for English words (an English question) and everyday words."""
    low = f" {text.lower()} "
    found: list[str] = []
    if is_english(text) or len(RE_LATIN_WORD.findall(text)) >= 3:
        for en, zh in lex.glossary:
            if re.search(rf"(?<![a-z]){re.escape(en)}(?![a-z])", low):
                found += zh
                low = low.replace(en, " ")
    for word, plan in lex.synonyms:
        if word in low and not all(p in text for p in plan):
            found += plan
            low = low.replace(word, " ")
    extra = [w for w in dict.fromkeys(found) if w not in text]
    return f"{text} {' '.join(extra)}" if extra else text


def asks_in(text: str, lex: Lexicon) -> frozenset[Ask]:
    """What the text asks; MONEY only when the request asks a figure and names money (「养了多少头
    猪。规划对治污资金有什么要求？」 asks no sum)."""
    asks = {a for a in Ask if a != Ask.MONEY and lex.ask_matches(a.value, text)}
    request = lex.request_part(text) if Ask.AMOUNT in asks else ""
    if lex.ask_matches(Ask.AMOUNT.value, request) and lex.ask_matches(Ask.MONEY.value, request):
        asks.add(Ask.MONEY)
    return frozenset(asks)


@dataclass(frozen=True)
class Named:
    """A name a question may use for a part of the library: a document's title, a 专栏's or a
    section's title, an indicator's name."""

    kind: str  # "doc", COLUMN, SECTION, INDICATOR
    doc: str
    no: int
    name: str
    chapter: int | None = None


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


def names_sharing(index: Index, text: str, kind: str) -> list[Named]:
    """The names of ``kind`` that share at least two adjacent characters with the text, in
    library order. A bigram index is built once per index, so a question looks at the names
    it could match rather than at every document's (every matcher below needs a common
    substring of two characters or more)."""
    table = index.memo.get("query.names")
    if table is None:
        entries: list[Named] = []
        for d in index.docs.values():
            meta = d.meta or {}
            for name in (d.title, meta.get("title"), meta.get("short_title"), meta.get("doc_number")):
                if name:
                    entries.append(Named("doc", d.id, 0, name))
            entries += [Named(COLUMN, d.id, c.no, c.title) for c in d.columns]
            entries += [Named(SECTION, d.id, s.no, s.title, c.no) for c in d.chapters for s in c.sections]
            entries += [Named(INDICATOR, d.id, i.no, i.name.lower()) for i in d.indicators]
        grams: dict[str, list[int]] = {}
        for n, e in enumerate(entries):
            for g in _bigrams(e.name.lower()):
                grams.setdefault(g, []).append(n)
        table = (entries, grams)
        index.memo["query.names"] = table
    entries, grams = table
    hits = sorted({n for g in _bigrams(text.lower()) for n in grams.get(g, ())})
    return [entries[n] for n in hits if entries[n].kind == kind]


def named_doc(text: str, index: Index) -> str | None:
    """The document the question names by title, short title or 文号 (the longest name wins)."""
    best: tuple[int, str] | None = None
    for e in names_sharing(index, text, "doc"):
        if len(e.name) >= 4 and e.name in text and (best is None or len(e.name) > best[0]):
            best = (len(e.name), e.doc)
    return best[1] if best else None


def document_names(index: Index, doc: str) -> list[str]:
    d = index.docs[doc]
    meta = d.meta or {}
    return [n for n in (d.title, meta.get("title"), meta.get("short_title"), meta.get("doc_number")) if n]


def _covered(name: str, q: str, generic: frozenset[str]) -> int:
    """How many characters of ``name`` lie in common substrings (≥ 2 chars) with ``q``,
    not counting characters that are too common in indicator names to identify one."""
    covered = [False] * len(name)
    for i in range(len(name)):
        for j in range(len(name), i + 1, -1):
            if name[i:j] in q:
                for x in range(i, j):
                    covered[x] = True
                break
    return sum(1 for i, c in enumerate(covered) if c and name[i] not in generic)


def indicator_generic_chars(index: Index) -> frozenset[str]:
    """Characters found in at least a third of the indicator names (比例, 率, 的 …): derived
    from the documents' tables, not listed by hand."""
    from policyqa import stats

    return stats.indicator_generic_chars(index)


def match_indicators(text: str, index: Index, doc: str | None = None) -> tuple[tuple[str, int], ...]:
    """(doc, indicator no) of the rows whose names the question names well enough.

    Score = the name's distinctive characters covered by substrings shared with the question
    (≥ 4, and ≥ 40 % of the name); the best score wins, ties keep all.
    """
    generic = indicator_generic_chars(index)
    passing: list[tuple[float, str, int]] = []
    low = text.lower()
    for e in names_sharing(index, low, INDICATOR):
        if doc and e.doc != doc:
            continue
        name = e.name
        core = sum(1 for c in name if c not in generic) or len(name)
        cov = _covered(name, low, generic)
        if cov >= min(4, core) and cov / core >= 0.4:
            passing.append((cov + cov / core / 100, e.doc, e.no))
    if len(passing) > 2:  # names several measures at once: every one of them (a narrative question)
        return tuple((d, no) for _, d, no in passing)
    if not passing:
        return ()
    top = max(s for s, _, _ in passing)
    return tuple((d, no) for s, d, no in passing if s >= top - 1e-9)


def _split_typos(text: str, index: Index) -> list[str]:
    """Two characters the tokenizer leaves single because one is a homophone typo (垃圾分累 →
    分 / 累): the pair, when no dictionary lists it and it sounds like a word of the documents
    (分类) with a character in common (``spelling.correct``)."""
    from policyqa import spelling, stats

    spans = index.tokenizer.word_spans(text)
    out = []
    for (a, b), (c, d) in zip(spans, spans[1:], strict=False):
        pair = text[a:d]
        if b - a == 1 and d - c == 1 and RE_CJK.fullmatch(text[a]) and RE_CJK.fullmatch(text[c]):
            # a pair the general dictionary lists (讲到) is meant as written
            known = stats.in_text(index, pair) or index.tokenizer.general_frequency(pair)[0] > 0
            if not known and spelling.correct(pair, index):
                out.append(pair)
    return out


def topic_terms(text: str, index: Index, lex: Lexicon) -> tuple[Term, ...]:
    """Content words of the question (≥ 2 characters, not fillers, not ask cues), each with
    the documents' terms for it and its IDF. Latin words count only when the documents use
    them (PM2.5, VOCs) or they are written as an acronym (GDP)."""
    from policyqa import spelling, stats

    vocab = stats.vocabulary(index)
    places = stats.place_names(index)
    out: list[Term] = []
    for w in dict.fromkeys([*index.tokenizer.words(text), *_split_typos(text, index)]):
        if len(w) < 2 or w in lex.fillers or w.isdigit() or RE_YEAR.fullmatch(w):
            continue
        if (
            re.fullmatch(r"[a-z0-9.\-]+", w)
            and w not in vocab
            and not re.search(rf"\b{re.escape(w.upper())}\b", text)
        ):
            continue
        if any(lex.ask_matches(a, w) for a in ("navigation", "outline")) and w not in vocab:
            continue
        if RE_PERIOD.fullmatch(w):
            continue  # a period is scope (checked by the guard), not topic
        # and the abbreviation the documents define for it (挥发性有机物 (VOCs)), or its term
        variants = tuple(dict.fromkeys((*lex.variants(w, text), *stats.aliases(index, w))))
        if not any(stats.in_corpus(index, v) for v in variants):
            fixed = spelling.correct(w, index)  # 杨尘 → 扬尘
            if fixed:
                variants = (*variants, *lex.variants(fixed, text))
        # weighed by the forms the documents use: a variant they lack would count as the rarest word
        # (the table's terms are the documents' own: found in their text, they are used)
        used = [v for v in variants if stats.in_corpus(index, v) or (v != w and stats.in_text(index, v))]
        weight = max(stats.idf(index, v.lower()) for v in used or [w])
        # a compound the documents write apart (保护措施 → 保护…措施): its parts, fillers dropped
        parts = tuple(
            p for p in index.tokenizer(w) if p != w and len(p) >= 2 and p not in lex.fillers and p in w
        )
        parts = tuple(p for p in parts if not any(p != o and p in o for o in parts))
        known = bool(used) or bool(parts and all(stats.in_corpus(index, p) for p in parts))
        if used and max(stats.keyness(index, v.lower()) for v in used) < MIN_KEYNESS:
            # everyday speech the documents happen to use (就是, 办法, 一起): colour, not topic
            known = False
        elif not used and known and min(stats.keyness(index, p) for p in parts) < MIN_KEYNESS:
            # known only through its parts, one of them everyday speech (一天到晚: 一天 … 到晚)
            known = False
        # a subject word counts as used only as itself (or the table's word for it): its parts
        # prove nothing (养老 and 保险 in a plan are no 养老保险)
        outside = w in lex.topics and not used
        known = known and not outside
        if not known and not outside:
            # a word no document uses is colloquial colour more often than the topic (「扑面」
            # 「外头」): it weighs little, and the guard refuses questions made only of such words
            weight *= OOV_WEIGHT
        place = w in places or w.rstrip("市县区") in places
        if place and w not in places:
            # 「贺州市」 is named 「贺州」 in 「贺州、岑溪等市」
            variants = (*variants, w.rstrip("市县区"))
        rarity = weight / stats.max_idf(index)
        out.append(Term(w, variants, weight, place, parts, known, outside, rarity=rarity))
    # a subject word the tokenizer cut into pieces or glued to its neighbours (「查酒驾」)
    low = text.lower()
    seen = " ".join(t.word for t in out)
    for w in sorted(lex.topics, key=lambda w: (-len(w), w)):  # longest first, in a fixed order
        if w in low and w not in seen and not stats.in_corpus(index, w):
            out.append(Term(w, (w,), stats.idf(index, w), known=False, outside=True))
            seen += " " + w
    # an everyday phrase the tokenizer does not keep as one word (「钱从哪里出」) still brings the
    # documents' terms for it
    covered = {v for t in out for v in t.variants}
    for asked, plan in lex.synonyms:
        if asked in low and not set(plan) & covered:
            weight = max(stats.idf(index, p.lower()) for p in plan)
            out.append(Term(plan[0], plan, weight, rarity=weight / stats.max_idf(index)))
            covered.update(plan)
    return tuple(out)


def mark_story(terms: tuple[Term, ...], asked: str, lex: Lexicon) -> tuple[Term, ...]:
    """Terms said only in the story around what a question asks (``Lexicon.request_part``) are
    context: kept, at ``STORY_WEIGHT``, and a place among them (「我家在柳州。」) is where the
    asker lives, not a constraint on the answer. A one-sentence question is all request. When
    the request names no term (「……。规划管不管？」) the story is all there is: its words keep
    their weight, its places still constrain nothing. A term the synonym table added (its word
    not in the question) counts as asked."""
    request = lex.request_part(asked).lower()
    low = asked.lower()
    if request == low:
        return terms

    def in_story(t: Term) -> bool:
        return t.word.lower() in low and not any(v.lower() in request for v in (t.word, *t.variants))

    if all(in_story(t) for t in terms):
        return tuple(replace(t, story=True) if t.place else t for t in terms)
    return tuple(replace(t, weight=t.weight * STORY_WEIGHT, story=True) if in_story(t) else t for t in terms)


def asked_clauses(request: str, lex: Lexicon) -> str:
    """The request without its clauses about the asker (kb/lexicon/asks.yaml ``asker``: 「我在深圳
    上班，规划对扬尘怎么要求？」), when a clause after them is left; used for regions only (a place
    the asker lives in is no scope conflict)."""
    clauses = [c for c in re.split(r"(?<=[，,；;])", request) if c.strip("，,；; ")]
    if len(clauses) < 2:
        return request
    kept = [c for c in clauses[:-1] if not lex.ask_matches("asker", c)] + clauses[-1:]
    return "".join(kept)


_PLACE_SUFFIX = re.compile(r"[市省县区港湾州盟]+")


def _word_at(index: Index, text: str, name: str) -> bool:
    """Is ``name`` a word of the text: it begins a word and ends one, or the rest of its word is
    a place suffix (「湛江港」「佛山市」)? 大理 in 「大理石」, 新乡 in 「美丽新乡村」 and 长春 in
    「长春藤」 are no places, nor is 上海 in 「江上海上」 (see ``_read_across``)."""
    spans = index.tokenizer.word_spans(text)
    starts = {a for a, _ in spans}
    end_of = {i: b for a, b in spans for i in range(a, b)}
    for m in re.finditer(re.escape(name), text):
        a, b = m.span()
        if a not in starts:
            continue
        word_end = end_of.get(b - 1, b)
        if _read_across(index, text, a, b):
            continue
        if word_end == b or _PLACE_SUFFIX.fullmatch(text[b:word_end]):
            return True
    return False


def _read_across(index: Index, text: str, a: int, b: int) -> bool:
    """Do dictionary words overlap both ends of text[a:b] (「江上海上」 reads 江上 / 海上 as well as
    上海)? Then the name is not read as a word of its own."""
    if a == 0 or b >= len(text):
        return False
    freq = index.tokenizer.general_frequency
    return freq(text[a - 1 : a + 1])[0] > 0 and freq(text[b - 1 : b + 1])[0] > 0


def analyze(question: str, index: Index, lex: Lexicon | None = None) -> Query:
    """Read a question once into a ``Query``. Pure given the index and lexicon."""
    lex = lex or lexicon_for(index.settings.kb_dir)
    asked = lex.plain(normalize_question(question))
    normalized = expand(asked, lex)
    doc = named_doc(asked, index)
    refs = [m.ref for m in find_refs(normalized, doc=doc)]
    rest = strip_refs(asked)
    if doc:
        for name in document_names(index, doc):
            rest = rest.replace(name, " ")
    if not any(r.kind == CHAPTER for r in refs) and RE_LAST_CHAPTER.search(asked):
        chapters = [c.no for d in index.docs.values() if not doc or d.id == doc for c in d.chapters]
        if chapters:
            refs.append(Ref(CHAPTER, max(chapters), doc=doc))
            rest = RE_LAST_CHAPTER.sub(" ", rest)
    if not any(r.kind == COLUMN for r in refs):
        col = column_named(rest, index, doc)
        if col:
            refs.append(col[0])
            rest = rest.replace(col[1], " ")
    # a section named by its whole title (「主要目标」) is a reference too
    if not any(r.kind in (CHAPTER, SECTION) for r in refs):
        named = section_named(rest, index, doc)
        if named:
            refs.append(named[0])
            rest = rest.replace(named[1], " ")
    asks = asks_in(asked, lex)
    # cue phrases say what is asked, periods say when: neither is the topic
    rest = RE_PERIOD.sub(" ", rest)
    about_document = Ask.ISSUED in asks and _about_document(rest, index, lex)
    for kind in CUE_KINDS:
        pat = lex.asks.get(kind)
        if pat is not None:
            rest = pat.sub(" ", rest)
    years = tuple(dict.fromkeys(int(y) for y in RE_YEAR.findall(asked)))
    periods = tuple(dict.fromkeys(RE_PERIOD.findall(asked)))
    # a region of the story (「我在深圳上班。规划对扬尘怎么要求？」) is no scope conflict
    request = asked_clauses(lex.request_part(asked), lex)
    regions = tuple(
        dict.fromkeys(
            r.name
            for r, form in lex.regions_in(asked)
            if form in request and _word_at(index, asked, form) and not lex.ranked_within(asked, form)
        )
    )
    english = is_english(asked)
    terms = mark_story(topic_terms(rest if not english else normalized, index, lex), asked, lex)

    # the documents' words found for misspelt ones (杨尘 → 扬尘) are searched for too
    fixes = [v for t in terms if t.known for v in t.variants[1:] if v.lower() not in normalized.lower()]
    if fixes:
        normalized = f"{normalized} {' '.join(dict.fromkeys(fixes))}"
    ind_nos: list[int] = [r.no for r in refs if r.kind == INDICATOR]
    # a named chapter, section or 专栏 without indicator rows scopes the question away from tables,
    # unless the table is named too (「指标表中的…与第一章所述的…相差多少」 reads both)
    names_table = lex.ask_matches("table_named", asked)
    scoped_away = not names_table and (
        any(r.kind in (CHAPTER, SECTION) for r in refs)
        or any(r.kind == COLUMN and not _column_has_rows(index, r) for r in refs)
    )
    if not ind_nos and lex.ask_matches("indicator_attribute", normalized) and not scoped_away:
        matched = match_indicators(normalized, index, doc)
        if len(matched) <= 2:  # several measures at once: a narrative question
            ind_nos = [no for _, no in matched]
    content = rest
    for a in ("navigation", "outline", "table"):
        pat = lex.asks.get(a)
        if pat is not None:
            content = pat.sub(" ", content)
    titles = _titles_of(index, refs)
    content_words = [
        w
        for w in index.tokenizer.words(content)
        if w not in lex.fillers
        and not (len(w) >= 2 and any(w in t for t in titles))  # 「实施保障」 restates it
    ]
    content_chars = sum(len(re.findall(r"[\u4e00-\u9fffA-Za-z0-9]", w)) for w in content_words)
    return Query(
        text=question,
        normalized=normalized,
        asked=asked,
        refs=tuple(dict.fromkeys(refs)),
        terms=terms,
        years=years,
        periods=periods,
        regions=regions,
        asks=asks,
        indicator_nos=tuple(dict.fromkeys(ind_nos)),
        doc=doc,
        english=english,
        content_chars=content_chars,
        names_table=names_table,
        about_document=about_document,
    )


def _about_document(rest: str, index: Index, lex: Lexicon) -> bool:
    """Is the issuing asked of the document itself: once the cues, the documents' names and the
    words for "this document" (asks.yaml ``document_self``) are gone, is nothing left?
    「禁燃限放规定是谁发布的」「新的规划什么时候出台」 ask about something else, which the notice
    before this one does not date."""
    left = rest
    for kind in ("issued", *CUE_KINDS):  # the issuing cue first: it holds 哪年 / 谁 of its own
        pat = lex.asks.get(kind)
        if pat is not None:
            left = pat.sub(" ", left)
    for d in index.docs:
        for name in sorted(document_names(index, d), key=len, reverse=True):
            left = left.replace(name, " ")
    own = lex.asks.get("document_self")
    if own is not None:
        left = own.sub(" ", left)
    return not re.search(r"[\u4e00-\u9fffA-Za-z0-9]", left)


def section_named(text: str, index: Index, doc: str | None = None) -> tuple[Ref, str] | None:
    """The section whose whole title (≥ 4 characters) the text contains, if exactly one."""
    found = [
        (Ref(SECTION, e.no, chapter=e.chapter, doc=e.doc), e.name)
        for e in names_sharing(index, text, SECTION)
        if (not doc or e.doc == doc) and len(e.name) >= 4 and e.name in text
    ]
    return found[0] if len(found) == 1 else None


def column_named(text: str, index: Index, doc: str | None = None) -> tuple[Ref, str] | None:
    """The 专栏 a question names by its title (「大气治理工程专栏」 for 「大气环境综合治理工程」):
    most of the title's characters in shared substrings, if exactly one 专栏 qualifies.
    Returns the ref and the text to blank out (the matched run of the question)."""
    found = []
    for e in names_sharing(index, text, COLUMN):
        if doc and e.doc != doc:
            continue
        title = re.sub(r"[“”\"《》（）()]", "", e.name)
        if len(title) < 4:
            continue
        share = _covered(title, text, frozenset()) / len(title)
        if share >= (0.5 if "专栏" in text else 0.75):
            found.append((share, Ref(COLUMN, e.no, doc=e.doc), title))
    if not found:
        return None
    found.sort(key=lambda x: -x[0])
    if len(found) > 1 and found[1][0] == found[0][0]:
        return None
    return found[0][1], "专栏"


def _column_has_rows(index: Index, ref: Ref) -> bool:
    docs = [ref.doc] if ref.doc else list(index.docs)
    return any(u.indicator is not None for d in docs for u in index.by_column.get((d, ref.no), ()))


def _titles_of(index: Index, refs: list[Ref]) -> list[str]:
    """The titles of the chapters, sections and 专栏 the references name."""
    out: list[str] = []
    for d in index.docs.values():
        for r in refs:
            if r.doc and r.doc != d.id:
                continue
            if r.kind == COLUMN:
                out += [c.title for c in d.columns if c.no == r.no]
            for c in d.chapters:
                if r.kind == CHAPTER and c.no == r.no:
                    out.append(c.title)
                if r.kind == SECTION and (r.chapter is None or c.no == r.chapter):
                    out += [s.title for s in c.sections if s.no == r.no]
    return out
