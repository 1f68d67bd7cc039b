"""The optional LLM answerer: prompt a LangChain chat model with numbered evidence, then check
every sentence it wrote against that evidence before anything is shown as an answer.

Control flow is plain functions (no chains): ``llm_answer`` renders ``prompts/answer.yaml``,
calls the model, and hands the text to ``check_llm_output``, a pure function that keeps only
sentences whose citation markers resolve and whose numbers all occur in the cited evidence.
Failures never raise: ``llm_answer`` returns an ``LLMOutcome`` whose ``reason`` is a short
token ("timeout", "error", "unchecked", "no_answer") for the caller's
``mode="llm-fallback:<reason>"``.

Scope: the check is lexical. It catches invented citations, uncited sentences and numbers that
are not in the cited text; it does not catch a wrong claim worded without numbers. Chinese
numerals (十四五, 两倍) are not checked. The read timeout is per network read (the OpenAI
client's semantics), not a deadline on a whole streamed answer.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from policyqa.models import KIND_INDICATOR, Answer, Citation, Hit, Unit
from policyqa.prompts import load_prompt, render
from policyqa.text import canon, split_sentences

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

    from policyqa.settings import Settings

log = logging.getLogger(__name__)

NO_ANSWER = "NO_ANSWER"  # the refusal token the answer prompt asks for

# Fallback reasons (short English tokens; the caller writes mode="llm-fallback:<reason>").
OK = "ok"
TIMEOUT = "timeout"
ERROR = "error"
UNCHECKED = "unchecked"  # the model answered, but no sentence survived the check
REFUSED = "no_answer"  # the model (or the lack of evidence) says the question is not answered

# History turns given to the model: enough for pronouns, short enough to keep the prompt small.
_HISTORY_TURNS = 3
_HISTORY_ANSWER_CHARS = 300


def chat_model_from_settings(settings: Settings) -> BaseChatModel | None:
    """A ChatOpenAI client for ``settings.llm_base_url``; None when no LLM is configured.

    No retries: a slow or failing server means falling back to the extractive answer now.
    ``use_responses_api=False``: OpenAI-compatible servers (vLLM, llama.cpp, Ollama) speak
    /chat/completions only.
    """
    if not settings.llm_base_url:
        return None
    # Imported here so that the extractive-only path never loads the OpenAI client.
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key or "not-needed",
        timeout=settings.llm_timeout,
        max_retries=0,
        temperature=0,
        use_responses_api=False,
    )


# ----------------------------------------------------------------------------- the check

# [1]  [1,2]  [1、3]  [2-4]  and the full-width ［1］ 【1】 forms.
_MARKER = re.compile(r"[\[［【]\s*(\d{1,3}(?:\s*[,，、\-–~～]\s*\d{1,3})*)\s*[\]］】]")
_LEADING_MARKERS = re.compile(rf"^(?:\s*{_MARKER.pattern})+")
# An Arabic number as written in the plan: 2025, 97.7, 1,200, 35%. Not part of a longer number.
_NUMBER = re.compile(r"(?<![\d.])\d+(?:,\d{3}(?!\d))*(?:\.\d+)?%?")
_FULLWIDTH = str.maketrans("０１２３４５６７８９．％，", "0123456789.%,")
_LIST_PREFIX = re.compile(r"^(?:#{1,6}\s+|[-*+•·]\s+|\d{1,2}[.)．]\s+|\d{1,2}、|[（(]\d{1,2}[)）]\s*)")
_REFUSAL = re.compile(r"NO[_\s]?ANSWER", re.I)
_CONTENT = re.compile(r"[\w\u3400-\u9fff]")
_SENT_END = ("。", "！", "？", "；", "!", "?", ";")


@dataclass(frozen=True)
class Dropped:
    """A sentence of the model's output that was not kept, and why.

    ``reason``: "no_marker" (no marker resolving to an evidence item) or
    "number_not_in_evidence: <numbers>" (numbers absent from every cited evidence text).
    """

    sentence: str
    reason: str


@dataclass(frozen=True)
class CheckResult:
    """What ``check_llm_output`` made of the model's text.

    ``answer`` is the kept sentences with markers renumbered 1..m in order of first use, and
    ``citations[n-1]`` is what ``[n]`` refers to. ``invalid_markers`` are marker numbers that
    resolved to no evidence item (removed). ``reason`` is "ok", "no_answer" or "unchecked".
    """

    answer: str
    citations: tuple[Citation, ...]
    kept: tuple[str, ...]
    dropped: tuple[Dropped, ...]
    invalid_markers: tuple[int, ...] = ()
    no_answer: bool = False

    @property
    def ok(self) -> bool:
        return not self.no_answer and bool(self.kept)

    @property
    def reason(self) -> str:
        if self.no_answer:
            return REFUSED
        return OK if self.kept else UNCHECKED


def _marker_numbers(group: str) -> list[int]:
    """The evidence numbers in one marker's inside: "1", "1,2", "1、3", "2-4"."""
    out: list[int] = []
    for part in re.split(r"\s*[,，、]\s*", group.strip()):
        rng = re.fullmatch(r"(\d+)\s*[\-–~～]\s*(\d+)", part)
        if rng and int(rng[1]) <= int(rng[2]) <= int(rng[1]) + 20:
            out.extend(range(int(rng[1]), int(rng[2]) + 1))
        else:  # a plain number, or a reversed/huge range: take the numbers as written
            out.extend(int(x) for x in re.findall(r"\d+", part))
    return out


def _numbers(text: str) -> list[str]:
    """Arabic numbers in ``text``, normalised: ASCII digits, no thousands commas, no % sign.

    The percent sign is dropped because the plan often puts the unit in a column header
    ("比率（%） 97.7") while a sentence writes "97.7%".
    """
    t = text.translate(_FULLWIDTH)
    return [m.group(0).replace(",", "").rstrip("%") for m in _NUMBER.finditer(t)]


def _bigrams(text: str) -> set[str]:
    t = canon(_MARKER.sub("", text))
    return {t[i : i + 2] for i in range(len(t) - 1)} if len(t) > 1 else {t}


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) offsets in ``text`` of its sentences (split_sentences strips them)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for s in split_sentences(text):
        start = text.find(s, pos)
        if start < 0:  # cannot happen: split_sentences only strips; be safe anyway
            continue
        spans.append((start, start + len(s)))
        pos = start + len(s)
    return spans or [(0, len(text))]


def evidence_text(unit: Unit, label: bool = True) -> str:
    """What the model sees of a unit (and what its numbers are checked against).

    An indicator row is followed by the table's column names, so that 「2025年目标为62.6」 can
    be read (and checked) from 「17.森林覆盖率(%) 62.5 62.6 约束性」. Quotes still come from
    ``unit.text`` only.
    """
    text = unit.text
    if unit.kind == KIND_INDICATOR:
        text += "\n（表中各列依次为：类别、指标、2020年、2025年、指标属性）"
    return f"{unit.label}\n{text}" if label else text


def best_quote(unit_text: str, statements: Sequence[str]) -> str:
    """The sentence(s) of ``unit_text`` that best support ``statements``, verbatim.

    For each statement the evidence sentence with the most shared character bigrams wins
    (ties: the earlier one). If the winners lie within three consecutive sentences the quote is
    that whole contiguous stretch; otherwise it is the single sentence that wins most often.
    """
    spans = _sentence_spans(unit_text)
    grams = [_bigrams(unit_text[a:b]) for a, b in spans]
    chosen: list[int] = []
    for st in statements:
        sg = _bigrams(st)
        scores = [len(sg & g) for g in grams]
        chosen.append(max(range(len(spans)), key=lambda i: (scores[i], -i)))
    if not chosen:
        chosen = [0]
    lo, hi = min(chosen), max(chosen)
    if hi - lo < 3:
        return unit_text[spans[lo][0] : spans[hi][1]]
    top = max(set(chosen), key=lambda i: (chosen.count(i), -i))
    return unit_text[spans[top][0] : spans[top][1]]


@dataclass
class _Sentence:
    text: str
    line: int


def _segments(text: str) -> tuple[list[_Sentence], dict[int, bool]]:
    """Split model output into sentences: by line (list items, headings), then split_sentences.

    Markers written after the full stop ("……。[1]") are moved back to their sentence; a clause
    ending in ；without a marker is joined to the next clause (its marker covers both); a piece
    with no content of its own (only markers) joins the previous sentence.
    """
    sentences: list[_Sentence] = []
    is_item: dict[int, bool] = {}
    for ln, raw in enumerate(text.splitlines()):
        line = raw.strip()
        m = _LIST_PREFIX.match(line)
        is_item[ln] = bool(m) and not line.startswith("#")
        if m:
            line = line[m.end() :].strip()
        line = line.replace("**", "")  # bold adds nothing to a checked answer and hides "。**[1]"
        if not line:
            continue
        pieces = split_sentences(line)
        merged: list[str] = []
        for p in pieces:
            lead = _LEADING_MARKERS.match(p)
            if lead and merged:  # "……。[1]" → "……[1]。"
                prev, marks = merged[-1], lead.group(0).strip()
                cut = len(prev) - 1 if prev.endswith(_SENT_END) else len(prev)
                merged[-1] = prev[:cut] + marks + prev[cut:]
                p = p[lead.end() :].strip()
            if not p:
                continue
            if merged and merged[-1].endswith(("；", ";")) and not _MARKER.search(merged[-1]):
                merged[-1] += p
            else:
                merged.append(p)
        for p in merged:
            if not _CONTENT.search(_MARKER.sub("", p)) and sentences:
                sentences[-1].text += p  # markers (or punctuation) alone: they belong to the previous
            elif _CONTENT.search(_MARKER.sub("", p)):
                sentences.append(_Sentence(p, ln))
    return sentences, is_item


def check_llm_output(text: str, hits: Sequence[Hit]) -> CheckResult:
    """Check the model's answer against the evidence it was given (``hits``, numbered from 1).

    Keeps a sentence only if it carries at least one marker resolving to an evidence item and
    every Arabic number in it (markers aside) occurs in the union of its cited items (label and
    text). Markers that resolve to nothing are removed. Kept markers are renumbered 1..m in
    order of first use; each citation quotes, verbatim from ``unit.text``, the sentence(s) best
    supporting the statements that cite it. Pure: no I/O, no model.
    """
    if _REFUSAL.search(text):
        return CheckResult("", (), (), (), no_answer=True)
    n_ev = len(hits)
    ev_numbers = [set(_numbers(evidence_text(h.unit))) for h in hits]
    sentences, is_item = _segments(text)

    kept: list[tuple[_Sentence, list[int]]] = []  # sentence, valid evidence numbers (1-based)
    dropped: list[Dropped] = []
    invalid: list[int] = []
    for s in sentences:
        cited: list[int] = []
        for m in _MARKER.finditer(s.text):
            for k in _marker_numbers(m.group(1)):
                if 1 <= k <= n_ev:
                    if k not in cited:
                        cited.append(k)
                elif k not in invalid:
                    invalid.append(k)
        if not cited:
            dropped.append(Dropped(s.text, "no_marker"))
            continue
        allowed = set().union(*(ev_numbers[k - 1] for k in cited))
        missing = [x for x in dict.fromkeys(_numbers(_MARKER.sub("", s.text))) if x not in allowed]
        if missing:
            dropped.append(Dropped(s.text, "number_not_in_evidence: " + ", ".join(missing)))
            continue
        kept.append((s, cited))

    # Renumber in order of first use and rewrite the markers.
    new_no: dict[int, int] = {}
    for _, cited in kept:
        for k in cited:
            new_no.setdefault(k, len(new_no) + 1)

    def rewrite(m: re.Match[str]) -> str:
        seen: list[int] = []
        for k in _marker_numbers(m.group(1)):
            if k in new_no and new_no[k] not in seen:
                seen.append(new_no[k])
        return "".join(f"[{n}]" for n in seen)

    out_lines: dict[int, list[str]] = {}
    kept_text: list[str] = []
    for s, _ in kept:
        t = _MARKER.sub(rewrite, s.text)
        t = re.sub(r"(\[\d+\])\s*(?=\[)", r"\1", t)  # "[1] [2]" → "[1][2]"
        kept_text.append(t)
        out_lines.setdefault(s.line, []).append(t)
    answer = "\n".join(("- " if is_item.get(ln) else "") + "".join(parts) for ln, parts in out_lines.items())

    citations = []
    for k, n in sorted(new_no.items(), key=lambda kv: kv[1]):
        unit = hits[k - 1].unit
        statements = [s.text for s, cited in kept if k in cited]
        citations.append(
            Citation(
                n=n,
                id=unit.id,
                label=unit.label,
                location=unit.location,
                quote=best_quote(unit.text, statements),
            )
        )
    return CheckResult(
        answer=answer,
        citations=tuple(citations),
        kept=tuple(kept_text),
        dropped=tuple(dropped),
        invalid_markers=tuple(invalid),
    )


# ----------------------------------------------------------------------------- model calls


@dataclass(frozen=True)
class LLMOutcome:
    """The result of one ``llm_answer`` call.

    ``answer`` is set (mode "llm") only when ``reason == "ok"``. Otherwise ``reason`` is one of
    "timeout", "error", "unchecked", "no_answer" and the caller falls back to the extractive
    answer with ``mode = outcome.mode`` ("llm-fallback:<reason>"). ``raw`` is the model's text
    as received, ``detail`` the exception for logs.
    """

    answer: Answer | None
    reason: str
    raw: str = ""
    check: CheckResult | None = None
    detail: str = ""

    @property
    def mode(self) -> str:
        return "llm" if self.answer is not None else f"llm-fallback:{self.reason}"


def _pairs(history: Sequence[Any]) -> list[tuple[str, str]]:
    """(question, answer) turns from (q, a) tuples or from role/content messages as
    ``answer.ask`` and the app pass them (content may be gradio's list of text parts)."""
    if not history or not isinstance(history[0], dict):
        return [(q, a) for q, a in history]

    def text(c: Any) -> str:
        if isinstance(c, list):
            return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in c)
        return str(c or "")

    pairs: list[tuple[str, str]] = []
    for m in history:
        if m.get("role") == "user":
            pairs.append((text(m.get("content")), ""))
        elif m.get("role") == "assistant" and pairs and not pairs[-1][1]:
            pairs[-1] = (pairs[-1][0], text(m.get("content")))
    return pairs


def _history_vars(history: Sequence[Any]) -> list[dict[str, str]]:
    """The last turns as {question, answer}; old markers are stripped (their numbers referred to
    other evidence) and long answers cut."""
    turns = []
    for q, a in _pairs(history)[-_HISTORY_TURNS:]:
        a = _MARKER.sub("", a).strip()
        if len(a) > _HISTORY_ANSWER_CHARS:
            a = a[:_HISTORY_ANSWER_CHARS] + "……"
        turns.append({"question": q.strip(), "answer": a})
    return turns


def _failure_reason(exc: BaseException) -> str:
    """ "timeout" if a timeout is anywhere in the exception chain (openai.APITimeoutError wraps
    the HTTP library's), else "error"."""
    e: BaseException | None = exc
    for _ in range(10):
        if e is None:
            break
        if isinstance(e, TimeoutError) or "Timeout" in type(e).__name__:
            return TIMEOUT
        e = e.__cause__ or e.__context__
    return ERROR


def _call(model: BaseChatModel, messages: list[BaseMessage], on_token: Callable[[str], None] | None) -> str:
    """The model's reply text: streamed (each chunk passed to ``on_token``) or in one call."""
    if on_token is None:
        return model.invoke(messages).text
    parts: list[str] = []
    for chunk in model.stream(messages):
        t = chunk.text
        if t:
            parts.append(t)
            on_token(t)
    return "".join(parts)


def llm_answer(
    question: str,
    hits: list[Hit],
    model: BaseChatModel,
    *,
    history: Sequence[tuple[str, str]] = (),
    on_token: Callable[[str], None] | None = None,
) -> LLMOutcome:
    """Answer ``question`` from ``hits`` with ``model``, keeping only checked sentences.

    ``history`` is earlier (question, answer) turns, oldest first; it helps the model read the
    question and is never evidence. With ``on_token`` the reply is streamed and every chunk is
    passed on as it arrives: that is the UNCHECKED text, for a live preview only; show
    ``outcome.answer`` once this returns. Never raises for model/network failures.
    """
    if not hits:
        return LLMOutcome(None, REFUSED, detail="no evidence")
    evidence = [
        {"n": i, "label": h.unit.label, "text": evidence_text(h.unit, label=False)}
        for i, h in enumerate(hits, 1)
    ]
    messages = render(
        load_prompt("answer"),
        question=question,
        evidence=evidence,
        history=_history_vars(history),
        refusal=NO_ANSWER,
    )
    t0 = time.perf_counter()
    try:
        raw = _call(model, messages, on_token)
    except Exception as e:  # any client/HTTP failure means "fall back", never a crash
        reason = _failure_reason(e)
        log.warning("LLM call failed (%s): %s: %s", reason, type(e).__name__, e)
        return LLMOutcome(None, reason, detail=f"{type(e).__name__}: {e}")
    ms = (time.perf_counter() - t0) * 1000
    check = check_llm_output(raw, hits)
    if not check.ok:
        return LLMOutcome(None, check.reason, raw=raw, check=check)
    answer = Answer(
        question=question,
        answer=check.answer,
        answerable=True,
        citations=check.citations,
        mode="llm",
        timings_ms={"llm": ms},
    )
    return LLMOutcome(answer, OK, raw=raw, check=check)


_REWRITE_PREFIX = re.compile(r"^(?:改写后的完整问题|改写后的问题|完整问题|问题)\s*[:：]\s*")
_QUOTE_PAIRS = {"“": "”", "「": "」", "『": "』", '"': '"', "'": "'"}


def rewrite_question(question: str, history: Sequence[tuple[str, str]], model: BaseChatModel) -> str | None:
    """The follow-up ``question`` rewritten as a standalone question using ``history``.

    Without history the question is returned as is (no model call). None when the model call
    fails or its reply does not look like one question (empty, a refusal, far too long).
    """
    if not history:
        return question
    messages = render(load_prompt("rewrite"), question=question, history=_history_vars(history))
    try:
        raw = model.invoke(messages).text
    except Exception as e:  # fall back to the question as typed
        log.warning("question rewrite failed (%s): %s: %s", _failure_reason(e), type(e).__name__, e)
        return None
    lines = [ln.strip() for ln in raw.strip().splitlines() if ln.strip()]
    if not lines or _REFUSAL.search(lines[0]):
        return None
    out = _REWRITE_PREFIX.sub("", lines[0]).strip()
    # Unwrap「…」 around the whole reply, but keep quotes inside it (“十四五”时期…).
    close = _QUOTE_PAIRS.get(out[:1])
    if close and out.endswith(close) and len(out) > 2 and out[0] not in out[1:-1] and close not in out[1:-1]:
        out = out[1:-1].strip()
    if not out or len(out) > max(200, 4 * len(question)):
        return None
    return out
