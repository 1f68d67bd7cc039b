"""The words the answerer works with, read once from ``kb/``: cue phrases, fillers, regions,
synonyms, the English glossary and the user-facing messages.

Files (all optional; a missing file means an empty table):

- ``kb/lexicon/asks.yaml``: what a question asks (amount, when, where, list, …) → cue patterns;
- ``kb/lexicon/guard.yaml``: requests that are no questions about the documents, and follow-up cues;
- ``kb/lexicon/fillers.txt``: words that carry no topic;
- ``kb/lexicon/topics.txt``: words that name a subject of their own (社保, 户口, 个税): a question
  about one that no document uses is not covered, however many other words it shares;
- ``kb/lexicon/regions.tsv``: a gazetteer (name, kind, short forms, optional parent region);
- ``kb/lexicon/messages.yaml``: refusal and partial-answer messages with placeholders;
- ``kb/synonyms.tsv`` (everyday word → the documents' terms), ``kb/glossary-en.tsv`` (English).

``lexicon_for(kb_dir)`` caches one ``Lexicon`` per directory and file stamps, so an edited kb/
is picked up without a restart and nothing is re-read while answering. ``fingerprint`` hashes
every file; the index manifest records it. Left out: morphology (the synonym table lists each
variant it wants).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

LEXICON_FILES = (
    "lexicon/asks.yaml",
    "lexicon/guard.yaml",
    "lexicon/fillers.txt",
    "lexicon/topics.txt",
    "lexicon/regions.tsv",
    "lexicon/messages.yaml",
    "lexicon/dialect.tsv",
    "synonyms.tsv",
    "glossary-en.tsv",
)


def _compile(fragments: list[str]) -> re.Pattern[str]:
    # an empty list must match nothing (an empty alternation would match everywhere)
    return re.compile("|".join(f"(?:{f})" for f in fragments) if fragments else r"(?!x)x", re.I)


def _terms(path: Path) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """A two-column table (asked → the documents' terms), longest asked word first."""
    if not path.exists():
        return ()
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#") and "\t" in line:
            asked, plan = line.split("\t", 1)
            pairs.append((asked.strip().lower(), tuple(plan.split())))
    return tuple(sorted(pairs, key=lambda p: -len(p[0])))


def _words(path: Path) -> frozenset[str]:
    """A word list: whitespace-separated words, ``#`` lines are comments."""
    if not path.exists():
        return frozenset()
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(w.lower() for line in lines if not line.startswith("#") for w in line.split())


def _yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must be a mapping")
    return data


_SENTENCE = re.compile(r"[^。！？!?\n]+[。！？!?]*")
_AFTER_GREETING = re.compile(r"^[\s，,。.！!？?~～、]+")
_GREETING_PARTICLE = re.compile(r"^(啊|呀|哈|啦|呐|哦|你|您|大家)+")  # 你好啊, 谢谢你


def request_part(
    text: str,
    imperative: re.Pattern[str] | None = None,
    asker: re.Pattern[str] | None = None,
    asks: Callable[[str], bool] | None = None,
) -> str:
    """What a text requests: its sentences that end in a question mark and those that open
    with an imperative (``imperative``: 「帮我…」「请…」, kb/lexicon/asks.yaml), wherever they
    stand; its last sentence too when there is no question mark, or when it ends unpunctuated
    and is not hearsay that asks nothing (``asks`` says whether it asks). The story told around a question is
    left out (「我家在柳州。」 after it as much as before it)."""
    sents = [s for s in _SENTENCE.findall(text) if s.strip("。！？!? ")]
    if len(sents) < 2:
        return text
    asked = [
        s
        for i, s in enumerate(sents)
        if s.rstrip()[-1:] in "？?" or (imperative is not None and imperative.match(s.strip()))
    ]
    last = sents[-1].rstrip()
    if last not in asked and (
        not any(s.rstrip()[-1:] in "？?" for s in sents)
        or (
            last[-1:] not in "。！!.…；;"
            and not (asker is not None and asker.search(last.strip()))
            and (asks is None or asks(last))
        )
    ):
        # a last sentence left open after a question (「…禁止打鱼了？还会不会放鱼苗啊」) is
        # asked too: residents drop the question mark, not the full stop of a story. One about
        # the asker (「…？我家在柳州」, ``asker``) or one that asks nothing (「…？听讲是从外省
        # 拉过来的」) is still story.
        asked.append(sents[-1])
    return "".join(asked) or text


@dataclass(frozen=True)
class Region:
    name: str
    kind: str  # province / city / area / country
    forms: tuple[str, ...]  # every way of writing it, the full name first
    parent: str | None = None  # the gazetteer name of the region it lies in (南宁市 → 广西壮族自治区)


@dataclass(frozen=True)
class Lexicon:
    asks: dict[str, re.Pattern[str]] = field(default_factory=dict)
    guards: dict[str, re.Pattern[str]] = field(default_factory=dict)
    fillers: frozenset[str] = frozenset()
    topics: frozenset[str] = frozenset()
    regions: tuple[Region, ...] = ()
    synonyms: tuple[tuple[str, tuple[str, ...]], ...] = ()
    glossary: tuple[tuple[str, tuple[str, ...]], ...] = ()
    messages: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    # dialect form → standard written form, longest form first (see plain)
    dialect: tuple[tuple[str, str], ...] = ()
    # the regions' forms of two or more characters by their first two characters (see regions_in)
    _heads: dict[str, tuple[tuple[str, int], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _dialect: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        heads: dict[str, list[tuple[str, int]]] = {}
        for i, r in enumerate(self.regions):
            for f in dict.fromkeys(r.forms):
                if len(f) >= 2:
                    heads.setdefault(f[:2], []).append((f, i))
        object.__setattr__(self, "_heads", {k: tuple(v) for k, v in heads.items()})
        forms = "|".join(re.escape(f) for f, _ in self.dialect)
        object.__setattr__(self, "_dialect", re.compile(forms) if forms else None)

    def plain(self, text: str) -> str:
        """The text with dialect forms in standard written Chinese (冇 → 没有, 唔 → 不), in one
        pass so that a replacement is never replaced again."""
        if self._dialect is None:
            return text
        table = dict(self.dialect)
        return self._dialect.sub(lambda m: table[m.group(0)], text)

    def ask_matches(self, kind: str, text: str) -> bool:
        pat = self.asks.get(kind)
        return bool(pat and pat.search(text))

    def guard_kind(self, text: str) -> str | None:
        """The first guard kind (instruction, smalltalk, …) whose cue the text holds.

        Instructions to the system count anywhere in the text; the other kinds only in what it
        requests (``request_part``): a resident's story that mentions a school essay or today's
        weather before asking about dust is no request for either."""
        request = self.request_part(text)
        for kind, pat in self.guards.items():
            if kind == "followup":
                continue
            if pat.search(text if kind == "instruction" else request):
                return kind
        return None

    def request_part(self, text: str) -> str:
        """``request_part`` with this lexicon's imperative openings."""
        from policyqa.query import Ask

        def asks(sentence: str) -> bool:
            # only hearsay that asks nothing is dropped: residents' own ways of asking
            # (「要罚款不」「咋办」「顺便讲个故事」) are not all cue phrases
            told = self.ask_matches("told", sentence.strip())
            return not told or any(self.ask_matches(a.value, sentence) for a in Ask if a != Ask.MONEY)

        return request_part(text, self.asks.get("imperative"), self.asks.get("asker"), asks)

    def ranked_within(self, text: str, form: str) -> bool:
        """Is every mention of the region ``form`` followed by a ranking (asks.yaml
        ``ranked_within``: 「在全国排第几」「稳居全国第3位」)? Then the text ranks its own region
        within that one: the region is a yardstick, not what the text is about."""
        pat = self.asks.get("ranked_within")
        ends = [m.end() for m in re.finditer(re.escape(form), text)]
        return bool(pat and ends) and all(pat.match(text[e:]) for e in ends)

    def strip_greeting(self, text: str) -> str:
        """The text without the greetings it opens with (「你好，」「谢谢！」), when a question is
        left; a greeting alone is returned as it is (small talk). A cue counts as a greeting only
        when punctuation or the end follows it (「hi」 is not the start of 「highest」)."""
        pat = self.guards.get("smalltalk")
        rest = text.strip()
        while pat is not None:
            m = pat.match(rest)
            if m is None or not m.group(0):
                break
            tail = rest[m.end() :]
            if not pat.match(tail):  # 「您好您好，」 is two greetings
                tail = _GREETING_PARTICLE.sub("", tail, count=1)
            sep = _AFTER_GREETING.match(tail)
            if sep is None and tail and not pat.match(tail):
                break
            rest = tail[sep.end() :] if sep else tail
            if not rest:
                return text
        return rest

    def regions_in(self, text: str) -> list[tuple[Region, str]]:
        """Regions the text names, with the form used: longest forms first over the whole
        gazetteer (吉林市 before 吉林, 广西壮族自治区 before 西宁's 西宁 in 「广西宁明」), then
        the gazetteer's order; no overlaps, one form per region.

        Only the forms whose first two characters occur in the text are tried (a few hundred
        regions, one lookup per character pair), so the cost grows with the text, not the
        gazetteer."""
        cands = {
            (f, i) for k in range(len(text) - 1) for f, i in self._heads.get(text[k : k + 2], ()) if f in text
        }
        found: list[tuple[Region, str]] = []
        seen: set[int] = set()
        taken = text
        for f, i in sorted(cands, key=lambda c: (-len(c[0]), c[1])):
            if i not in seen and f in taken:
                seen.add(i)
                found.append((self.regions[i], f))
                taken = taken.replace(f, "\0" * len(f))
        return found

    def region(self, name: str) -> Region | None:
        """The gazetteer entry for a name written any of its ways (「广西」 → 广西壮族自治区).
        A form written exactly wins over one inside the name (吉林市 is the city, not 吉林省)."""
        for r in self.regions:
            if name in r.forms:
                return r
        for r in self.regions:
            if any(f in name for f in r.forms if len(f) >= 2):
                return r
        return None

    def variants(self, word: str, question: str = "") -> tuple[str, ...]:
        """A word and the documents' terms for it (挖沙 → 采砂). The table's word may sit inside
        the token (「放鞭炮」 holds 「鞭炮」) or the token inside the table's word as the question
        writes it (「广场舞」 cut as 广场 / 舞)."""
        out = [word]
        low = word.lower()
        for asked, plan in self.synonyms:
            if asked in low or (len(low) >= 2 and low in asked and asked in question.lower()):
                out += plan
        return tuple(dict.fromkeys(out))

    def message(self, key: str, **values: str) -> str:
        """A message of messages.yaml (``refusal.other_region`` style keys) with its placeholders."""
        node: Any = self.messages
        for part in key.split("."):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if not isinstance(node, str):
            raise KeyError(f"kb/lexicon/messages.yaml has no message {key!r}")
        return node.format_map(_Blank(values))


class _Blank(dict):
    """format_map values; a placeholder with no value renders empty, never raises."""

    def __missing__(self, key: str) -> str:
        return ""


def lexicon_fingerprint(kb_dir: Path) -> str:
    h = hashlib.sha256(b"lexicon/v1")
    for rel in LEXICON_FILES:
        p = Path(kb_dir) / rel
        h.update(rel.encode() + b"\0")
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def load_lexicon(kb_dir: Path) -> Lexicon:
    kb = Path(kb_dir)
    asks = {k: _compile([str(x) for x in v or []]) for k, v in _yaml(kb / "lexicon/asks.yaml").items()}
    guards = {k: _compile([str(x) for x in v or []]) for k, v in _yaml(kb / "lexicon/guard.yaml").items()}
    fillers = _words(kb / "lexicon/fillers.txt")
    regions = []
    reg_path = kb / "lexicon/regions.tsv"
    if reg_path.exists():
        for line in reg_path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                cols = line.split("\t")
                name, kind = cols[0].strip(), (cols[1].strip() if len(cols) > 1 else "region")
                forms = (name, *(cols[2].split() if len(cols) > 2 else ()))
                parent = cols[3].strip() if len(cols) > 3 else ""
                regions.append(Region(name, kind, tuple(dict.fromkeys(forms)), parent or None))
    return Lexicon(
        asks=asks,
        guards=guards,
        fillers=fillers,
        topics=_words(kb / "lexicon/topics.txt"),
        regions=tuple(regions),
        synonyms=_terms(kb / "synonyms.tsv"),
        glossary=_terms(kb / "glossary-en.tsv"),
        messages=_yaml(kb / "lexicon/messages.yaml"),
        dialect=tuple((a, b[0]) for a, b in _terms(kb / "lexicon/dialect.tsv") if b),
        fingerprint=lexicon_fingerprint(kb),
    )


_CACHE: dict[Path, tuple[tuple[int, ...], Lexicon]] = {}
_LOCK = threading.Lock()


def lexicon_for(kb_dir: Path) -> Lexicon:
    """The lexicon of ``kb_dir``, loaded once and again only when one of its files changes."""
    kb = Path(kb_dir).resolve()
    stamps = tuple((kb / rel).stat().st_mtime_ns if (kb / rel).exists() else 0 for rel in LEXICON_FILES)
    with _LOCK:
        cached = _CACHE.get(kb)
        if cached is None or cached[0] != stamps:
            _CACHE[kb] = (stamps, load_lexicon(kb))
        return _CACHE[kb][1]
