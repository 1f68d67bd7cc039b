"""Citations: numbering, verbatim quotes, and the checks every answer passes before it leaves.

Scope: the contract between an answer's ``[n]`` markers and its citations — every marker
resolves, every citation is used, numbers run 1..m in order of first use, and every quote is
verbatim plan text (checked in the canonical form, see ``policyqa.text.canon``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from policyqa.models import Citation, Unit
from policyqa.text import canon, split_sentences

MARKER = re.compile(r"\[(\d{1,3})\]")


@dataclass
class Citations:
    """Hands out citation numbers; the same (unit, quote) pair keeps its number."""

    items: list[Citation] = field(default_factory=list)

    def cite(self, unit: Unit, quote: str | None = None) -> int:
        quote = (quote or unit.text).strip()
        for c in self.items:
            if c.id == unit.id and c.quote == quote:
                return c.n
        n = len(self.items) + 1
        self.items.append(Citation(n=n, id=unit.id, label=unit.label, location=unit.location, quote=quote))
        return n

    def marks(self, *ns: int) -> str:
        return "".join(f"[{n}]" for n in dict.fromkeys(ns))


def mark_each_sentence(quote: str, mark: str, strip: str = "。；，：") -> str:
    """A quote of several sentences with the mark after each (a reader checks each statement);
    the sentence ends are written as 。."""
    parts = [x.rstrip(strip) for x in split_sentences(quote)] or [quote.rstrip(strip)]
    return "".join(f"{x}{mark}。" for x in parts)


def renumber(answer: str, citations: list[Citation]) -> tuple[str, tuple[Citation, ...]]:
    """Drop markers that resolve to nothing and citations never used; renumber 1..m by first use."""
    by_n = {c.n: c for c in citations}
    order: list[int] = []
    for m in MARKER.finditer(answer):
        n = int(m.group(1))
        if n in by_n and n not in order:
            order.append(n)
    new_no = {old: i + 1 for i, old in enumerate(order)}

    def sub(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return f"[{new_no[n]}]" if n in new_no else ""

    text = MARKER.sub(sub, answer)
    cites = tuple(
        Citation(n=new_no[c.n], id=c.id, label=c.label, location=c.location, quote=c.quote)
        for c in sorted((by_n[o] for o in order), key=lambda c: new_no[c.n])
    )
    return text, cites


def markers_in(text: str) -> list[int]:
    return [int(m.group(1)) for m in MARKER.finditer(text)]


def contract_problems(
    answer_text: str, citations: tuple[Citation, ...], source_canon: dict[str, str]
) -> list[str]:
    """What is wrong with an answer's citations (empty list = the contract holds)."""
    problems = []
    ns = [c.n for c in citations]
    if ns != list(range(1, len(ns) + 1)):
        problems.append(f"citation numbers are not 1..{len(ns)}: {ns}")
    used = set(markers_in(answer_text))
    if used - set(ns):
        problems.append(f"markers without citation: {sorted(used - set(ns))}")
    if set(ns) - used:
        problems.append(f"citations never used: {sorted(set(ns) - used)}")
    for c in citations:
        src = source_canon.get(c.location.doc)
        if src is None or not canon(c.quote) or canon(c.quote) not in src:
            problems.append(f"quote [{c.n}] not found verbatim in {c.location.doc}")
    return problems
