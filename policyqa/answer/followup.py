"""Follow-ups: a short question that leans on the previous one becomes a standalone question.

The previous user question is analysed (itself resolved first, a few turns deep) and the
follow-up's own pieces are substituted into it by kind: a year for its year, a place for its
place, a reference for its reference, topic words for its topic words (「漓江有什么保护措施？」 +
「那南流江呢？」 → 「南流江有什么保护措施？」). A follow-up that only asks something new of the
same topic (「这个是约束性的吗？」「在哪一节？」) is appended to the previous topic. A pronoun for a
part (「这一章」「该专栏」) takes the previous question's (or answer's) reference.

Everything is text in, text out, so the standalone question can be shown to the user. Left
out: more than one entity of a kind substituted at once; history older than the last
``MAX_HISTORY_MESSAGES`` messages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from policyqa import stats
from policyqa.lexicon import Lexicon
from policyqa.query import Query, analyze, normalize_question
from policyqa.refs import CHAPTER, COLUMN, SECTION, Ref, find_refs

History = Sequence[dict[str, Any]]
MAX_HISTORY_MESSAGES = 20
MAX_FOLLOWUP_CHARS = 16  # longer questions stand on their own
# 「这一章」「该节」「这个专栏」: a pronoun for a part, by the kind it stands for
_PART_PRONOUN = re.compile(r"(这一|这|该|本|此|那)(个)?(章|节|专栏)")
_PART_KIND = {"章": CHAPTER, "节": SECTION, "专栏": COLUMN}


def text_of(content: Any) -> str:
    """Gradio 6 gives message content as a list of parts; plain strings also accepted."""
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return str(content or "")


def clean_history(history: Any) -> list[dict[str, str]]:
    """The last messages of a history as {"role", "content": str}; anything malformed is skipped."""
    if not isinstance(history, (list, tuple)):
        return []
    out = []
    for m in list(history)[-MAX_HISTORY_MESSAGES:]:
        if isinstance(m, dict) and m.get("role") in ("user", "assistant"):
            out.append({"role": m["role"], "content": text_of(m.get("content"))})
    return out


def history_pairs(history: History) -> list[tuple[str, str]]:
    """Role/content messages → (question, answer) turns, oldest first (what policyqa.llm takes)."""
    pairs: list[tuple[str, str]] = []
    pending: str | None = None
    for m in history or ():
        role, text = m.get("role"), text_of(m.get("content"))
        if role == "user":
            pending = text
        elif role == "assistant" and pending is not None:
            pairs.append((pending, text))
            pending = None
    return pairs


def _last(history: list[dict[str, str]], role: str) -> tuple[int, str] | None:
    for i in range(len(history) - 1, -1, -1):
        if history[i]["role"] == role and history[i]["content"].strip():
            return i, history[i]["content"]
    return None


def is_followup(q: Query, lex: Lexicon) -> bool:
    pat = lex.guards.get("followup")
    short = len(re.sub(r"[\W_]", "", q.asked)) <= MAX_FOLLOWUP_CHARS
    if _PART_PRONOUN.search(q.asked):
        return True
    if q.asks and any(t.known and not t.place for t in q.terms):
        # its own question about its own topic (「那要维持生态水位的是哪几个湖库？」): a leading 那
        # does not make it lean on the previous one
        return False
    # a short question with no topic or reference of its own can only lean on the previous one
    return short and (bool(pat and pat.search(q.asked)) or (not q.terms and not q.refs))


def _strip_cue(text: str, lex: Lexicon) -> str:
    """The follow-up without its leading 那/还有 and trailing 呢."""
    t = re.sub(r"^(那么|那个|那|还有|另外|再|然后)", "", text.strip())
    return re.sub(r"呢[？?。！!]*$", "", t).strip("，,。？? ")


def resolve(question: str, history: History, index: Any, lex: Lexicon, depth: int = 0) -> str:
    """The follow-up as a standalone question (unchanged when it is none)."""
    history = clean_history(history)
    prev_turn = _last(history, "user")
    if prev_turn is None:
        return question
    q = analyze(question, index, lex)
    if lex.guard_kind(q.asked):
        return question
    i, prev = prev_turn
    bare_section = any(r.kind == SECTION and r.chapter is None for r in q.refs) and q.chapter_no is None
    if not is_followup(q, lex) and not bare_section:
        return question
    if depth < 3 and history[:i]:
        prev = resolve(prev, history[:i], index, lex, depth + 1)
    p = analyze(prev, index, lex)
    if bare_section and p.chapter_no and not is_followup(q, lex):
        # 「第三节具体写了什么」 after a question about a chapter: that chapter's section
        return Ref(CHAPTER, p.chapter_no).label + q.asked
    base = p.asked.rstrip("？?。！! ")
    cur = _strip_cue(q.asked, lex)

    # a pronoun for a part takes the previous question's (or answer's) reference of that kind
    m = _PART_PRONOUN.search(cur)
    if m:
        kind = _PART_KIND[m.group(3)]
        answer = _last(history, "assistant")
        pool = [r.ref for r in find_refs(p.asked)] + ([r.ref for r in find_refs(answer[1])] if answer else [])
        ref = next((r for r in pool if r.kind == kind or (kind == CHAPTER and r.kind == SECTION)), None)
        if ref is not None:
            label = (
                ref.label
                if not (kind == CHAPTER and ref.kind == SECTION)
                else Ref(CHAPTER, ref.chapter).label
            )
            if kind == SECTION and ref.chapter is None and p.chapter_no:
                label = Ref(CHAPTER, p.chapter_no).label + label
            return cur[: m.start()] + label + cur[m.end() :] + "？"

    out, replaced = base, False
    # a reference for a reference (「第三节呢」 after 「第二章第一节…」 keeps the chapter)
    for r in find_refs(cur):
        prev_same = next((x for x in find_refs(out) if x.ref.kind == r.ref.kind), None)
        if prev_same is not None:
            label = r.ref.label
            if r.ref.kind == SECTION and r.ref.chapter is None and prev_same.ref.chapter:
                label = Ref(CHAPTER, prev_same.ref.chapter).label + label
            out = out[: prev_same.start] + label + out[prev_same.end :]
            replaced = True
        elif r.ref.kind == SECTION and p.chapter_no and not q.chapter_no:
            return Ref(CHAPTER, p.chapter_no).label + cur + ("" if cur.endswith(("？", "?")) else "？")
    # a year for a year
    if q.years and p.years and q.years[0] != p.years[0]:
        out = re.sub(rf"{p.years[0]}\s*年?", f"{q.years[0]}年", out, count=1)
        replaced = True
    # a place for a place
    if q.places and p.places:
        out = out.replace(p.places[0], q.places[0], 1)
        replaced = True
    # topic words for topic words
    elif q.topic and p.topic and not replaced:
        # the span of the previous topic words is replaced by the new topic as written
        spans = sorted((out.find(t.word), out.find(t.word) + len(t.word)) for t in p.topic if t.word in out)
        if spans:
            # the longest run of topic words (gaps of a particle or two): the cue words around it stay
            runs = [list(spans[0])]
            for s_, e_ in spans[1:]:
                if s_ - runs[-1][1] <= 2:
                    runs[-1][1] = max(runs[-1][1], e_)
                else:
                    runs.append([s_, e_])
            a, b = max(runs, key=lambda r: r[1] - r[0])
            new = _strip_cue(q.asked, lex)
            modified = None
            if new.endswith("的") and len(new) > 1:
                # 「那农村的呢」: another modifier of the same head, placed where the documents
                # write it: before the run (农村黑臭水体 → 农村黑臭水体治理), in place of its first
                # word (城市黑臭水体 → 农村黑臭水体), or of that word's own modifier (钢铁行业 →
                # 水泥行业, 危险废物 → 医疗废物). When the text settles nothing, one word stands
                # before the run (the head kept) and a topic of several words replaces it
                new = new[:-1]
                modified = _modified(out[a:b], spans, a, new, index)
                if modified is None and len(q.topic) == 1:
                    modified = new + out[a:b]
            out = out[:a] + (modified if modified is not None else new) + out[b:]
            replaced = True
    if replaced:
        return out + "？"
    rest = cur
    return f"{base}，{rest}？" if rest else base + "？"


def _modified(run: str, spans: list[tuple[int, int]], a: int, mod: str, index: Any) -> str | None:
    """The run of topic words with the modifier ``mod`` put in where the documents write it
    (see ``resolve``); None when the text settles nothing."""
    first_end = max(e for s_, e in spans if s_ == a) - a
    first = run[:first_end]
    nxt = next((run[s_ - a : e - a] for s_, e in spans if s_ - a == first_end), "")
    if stats.in_text(index, mod + first):
        return mod + run
    if nxt and stats.in_text(index, mod + nxt):
        return mod + run[first_end:]
    for p in index.tokenizer(first):
        if p != first and first.startswith(p) and stats.in_text(index, mod + first[len(p) :]):
            return mod + run[len(p) :]
    return None


def standalone(question: str, history: History, index: Any, lex: Lexicon) -> str:
    """``resolve`` with a bound on length (a pathological history cannot grow the question)."""
    s = resolve(lex.plain(normalize_question(question)) or question, history, index, lex)
    if s == lex.plain(normalize_question(question)):
        return question
    return s if len(s) <= 4 * max(len(question), 50) else question
