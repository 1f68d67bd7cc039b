"""Answers with citations: ``ask(index, question, history)`` → ``Answer``.

The default answerer is extractive: every statement is a sentence of the plan (or a row of
its indicator table read field by field), so it cannot state what the plan does not. The
steps, each a plain function:

1. ``check_input`` — empty / too long / control characters.
2. ``resolve_followup`` — 「那2020年呢？」 + history → a standalone question (rules).
3. ``out_of_scope`` — other provinces, other periods, small talk, instructions to the system,
   topics whose key words the plan never uses → a refusal that says so (「本规划未涉及……」).
4. ``search`` — hybrid retrieval (policyqa.retrieve).
5. ``compose_*`` by question kind: indicator, 专栏, chapter/section navigation, list, free.
6. ``finish`` — renumber citations, check the contract (markers ↔ citations, verbatim quotes).

With an LLM configured (``Settings.llm_base_url``) the same evidence goes to the model
(policyqa.llm); its answer is checked and, on any failure, the extractive answer is returned
with ``mode = "llm-fallback:<reason>"``.

Left out: answering across several plans at once in one sentence; numeric reasoning (sums,
comparisons between indicators).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from policyqa.cite import Citations, contract_problems, renumber
from policyqa.index import Index
from policyqa.models import (
    KIND_HEADING,
    KIND_INDICATOR,
    KIND_NOTE,
    KIND_PARAGRAPH,
    KIND_TABLE_HEAD,
    Answer,
    Hit,
    Indicator,
    Unit,
)
from policyqa.retrieve import (
    Query,
    SearchTrace,
    analyze,
    idf,
    normalize_question,
    search,
    sentence_tokens,
    term_variants,
)
from policyqa.text import split_sentences, to_cn_number

History = Sequence[dict[str, Any]]
log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- input


def check_input(question: str, max_chars: int) -> str | None:
    """A message for input that cannot be a question, else None."""
    q = (question or "").strip()
    if not q:
        return "请输入问题。"
    if len(q) > max_chars:
        return f"问题太长（{len(q)} 字），请精简到 {max_chars} 字以内。"
    if not re.search(r"[\u4e00-\u9fffA-Za-z0-9]", q):
        return "没有读到可以检索的文字，请用中文提问，例如「2025年森林覆盖率目标是多少？」。"
    return None


# ----------------------------------------------------------------------------- follow-ups

RE_FOLLOWUP = re.compile(
    r"^(那|那么|那个|还有|另外|里面|其中)|呢[？?]?$|^(这一|该|本|这个|此)(章|节|专栏|项|指标)|^(它|其)的?"
)
# a pronoun and a where-question: 「这个在规划哪一章？」「它出自哪里」
RE_WHERE_FOLLOWUP = re.compile(
    r"^(这个|这些|这项|这条|这|它|那个|上面的?|刚才的?)(内容|说法|规定|要求)?(?=(在|是在|出自|属于|见于)?(规划)?(的)?"
    r"(哪一?[章节部分]|哪个[章节部分]|第几[章节]|哪里|什么位置|哪个位置))"
)
RE_BARE_WHERE = re.compile(
    r"(那|那么)?(在|是在|出自|属于|见于)?(规划)?(的)?(哪一?[章节部分]|哪个[章节部分]|第几[章节]|哪里|什么位置|哪个位置)[呢？?。]*"
)
RE_REF = re.compile(r"第[一二三四五六七八九十\d]{1,3}章(第[一二三四五六七八九十\d]{1,3}节)?|专栏\s*\d{1,2}")
RE_YEAR = re.compile(r"(20\d\d)\s*年?")


MAX_HISTORY_MESSAGES = 20  # follow-ups look back a few turns; older history is ignored


def clean_history(history: Any) -> list[dict[str, str]]:
    """The last messages of a history as {"role", "content": str}; anything malformed is skipped."""
    if not isinstance(history, (list, tuple)):
        return []
    out = []
    for m in list(history)[-MAX_HISTORY_MESSAGES:]:
        if isinstance(m, dict) and m.get("role") in ("user", "assistant"):
            out.append({"role": m["role"], "content": _text_of(m.get("content"))})
    return out


def _last_user(history: History) -> str | None:
    for m in reversed(history or ()):
        if m.get("role") == "user" and _text_of(m.get("content")).strip():
            return _text_of(m.get("content"))
    return None


def _last_assistant(history: History) -> str:
    for m in reversed(history or ()):
        if m.get("role") == "assistant":
            return _text_of(m.get("content"))
    return ""


def _text_of(content: Any) -> str:
    """Gradio 6 gives message content as a list of parts; plain strings also accepted."""
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return str(content or "")


def history_pairs(history: History) -> list[tuple[str, str]]:
    """Role/content messages → (question, answer) turns, oldest first (what policyqa.llm takes)."""
    pairs: list[tuple[str, str]] = []
    pending: str | None = None
    for m in history or ():
        role, text = m.get("role"), _text_of(m.get("content"))
        if role == "user":
            pending = text
        elif role == "assistant" and pending is not None:
            pairs.append((pending, text))
            pending = None
    return pairs


def resolve_followup(question: str, history: History, depth: int = 0) -> str:
    """Rewrite a follow-up into a standalone question using the last user turn.

    Rules: 「这一章/该节/这个专栏」 take the chapter/section/专栏 named in the previous question
    (or, failing that, the first one named in the previous answer); a short question that
    starts with 那/还有… or ends with 呢 is merged into the previous question, its year
    replacing the previous one. Anything else is returned unchanged.
    """
    q = question.strip()
    history = clean_history(history)
    prev = _last_user(history)
    if not prev or RE_SMALLTALK.search(q):
        return q
    # the previous question may itself have been a follow-up: resolve it first (bounded depth)
    last_user = max(i for i, m in enumerate(history) if m["role"] == "user")
    if depth < 3 and history[:last_user]:
        prev = resolve_followup(prev, history[:last_user], depth=depth + 1)
    # 「这一章」「该专栏」: carry the reference over
    for unit, pat in (
        ("章", r"第[一二三四五六七八九十\d]{1,3}章"),
        ("节", r"第[一二三四五六七八九十\d]{1,3}节"),
        ("专栏", r"专栏\s*\d{1,2}"),
    ):
        if re.search(rf"(这一|这|该|本|此)(个)?{unit}", q):
            m = re.search(pat, prev) or re.search(pat, _last_assistant(history))
            if m:
                ref = m.group(0)
                if unit == "节":
                    ch = re.search(r"第[一二三四五六七八九十\d]{1,3}章", prev)
                    ref = (ch.group(0) if ch else "") + ref
                return re.sub(rf"(这一|这|该|本|此)(个)?{unit}", ref, q)
    # 「这个在规划哪一章？」: where the previous question's topic is
    m = RE_WHERE_FOLLOWUP.match(q)
    if m:
        return f"{prev.rstrip('？?。')}，{q[m.end(1) :].lstrip('在')}"
    if RE_BARE_WHERE.fullmatch(q):  # 「在第几节？」 alone
        return f"{prev.rstrip('？?。')}，{q.lstrip('在')}"
    # 「第三节具体说了什么？」 after a question about a chapter: that chapter's section
    if re.search(r"第[一二三四五六七八九十\d]{1,3}节", q) and not re.search(
        r"第[一二三四五六七八九十\d]{1,3}章", q
    ):
        m = re.search(r"第[一二三四五六七八九十\d]{1,3}章", prev) or re.search(
            r"第[一二三四五六七八九十\d]{1,3}章", _last_assistant(history)
        )
        if m:
            return m.group(0) + q
    # 「那里面…」「其中…」: the previous question's chapter/section/专栏 carries over
    if re.match(r"^(那|这)?(里面|其中|这里面|那里面)", q):
        m = RE_REF.search(prev) or RE_REF.search(_last_assistant(history))
        if m:
            return m.group(0) + re.sub(r"^(那|这)?(里面|其中|这里面|那里面)", "", q)
    content = re.sub(r"[\W_]", "", re.sub(r"^(那么|那个|那|还有|另外|再)|呢$", "", q.rstrip("？?。")))
    if not RE_FOLLOWUP.search(q) or len(content) > 14:
        return q
    years = RE_YEAR.findall(q)
    if years and RE_YEAR.search(prev):
        return RE_YEAR.sub(f"{years[0]}年", prev, count=1)
    return f"{prev.rstrip('？?。')}，{content}？" if content else prev


# ----------------------------------------------------------------------------- out of scope

PROVINCES = (
    "北京 天津 河北 山西 内蒙古 辽宁 吉林 黑龙江 上海 江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 广东 海南 重庆 "
    "四川 贵州 云南 西藏 陕西 甘肃 青海 宁夏 新疆 台湾 香港 澳门 深圳 广州 杭州 成都 武汉"
).split()
RE_INSTRUCTION = re.compile(
    r"忽略|无视|系统提示|提示词|system\s*prompt|ignore (all|previous|the above)|编造|捏造|虚构|假装|扮演|角色扮演|越狱|jailbreak|你的(设定|指令|规则)",
    re.I,
)
RE_CREATIVE = re.compile(
    r"写一首|写首|作一首|作诗|写诗|写一篇|写篇|写个|写一个|编一个|编个|讲个故事|讲一个故事|翻译|写代码|代码|编程|python|java|帮我写|给我写",
    re.I,
)
RE_WEATHER = re.compile(
    r"天气(怎么样|如何|预报|好不好)|(今天|明天|后天|周末|下周)的?天气|会不会下雨|下不下雨|气温(多少|几度)|几度|weather",
    re.I,
)
RE_SMALLTALK = re.compile(
    r"^(你好|您好|hi|hello|嗨|谢谢|多谢|再见|你是谁|你叫什么|你能做什么|早上好|晚上好|哈喽|在吗|讲个笑话|今天天气)",
    re.I,
)
# words that carry no topic: a question made only of these names nothing the plan could cover
GENERIC = set(
    "目标 要求 措施 情况 工作 内容 多少 哪些 什么 怎么 如何 是否 有没有 规定 提出 主要 重点 方面 相关 政策 "
    "规划 广西 生态 环境 保护 生态环境 十四五 期间 时期 计划 年 2025 2020 2021 一下 问题 具体 我们 可以 能 会 "
    "谁 管 做 办 该 应该 需要 哪里 哪个 为什么 吗 呢 请问 告诉 说 讲 介绍 关于 有关 方面 全区 自治区 数字 数据 "
    "标准 金额 钱 元 万元 亿元 补贴 补助 资金 多少钱 怎么办 我家 家里 旁边 附近 周边 楼下 晚上 白天 现在 "
    "有人 没人 能管 管吗 能不能 可不可以 行不行 总是 经常 很多 咋办 咋整 不管 管不管 不敢 政府 部门 "
    "the what is of in and for to a how which does plan".split()
)


MIN_TOPIC_SHARE = 0.25  # share of the question's topic words one retrieved sentence must hold


def place_names(index: Index) -> frozenset[str]:
    """Place names of the domain dictionary (lines tagged ``ns`` in kb/dict.txt)."""
    if "places" not in index.memo:
        path = Path(index.settings.kb_dir) / "dict.txt"
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        names = {p[0] for p in (x.split() for x in lines) if len(p) >= 3 and p[2] == "ns"}
        index.memo["places"] = frozenset(names | {n + "市" for n in names})
    return index.memo["places"]


def missing_reference(q: Query, index: Index) -> str | None:
    """「专栏10」「第十五章」「第二章第九节」「第25项指标」: a part the plan does not have."""
    for doc in index.docs.values():
        chapters = {c.no: c for c in doc.chapters}
        if q.column_no is not None and q.column_no not in {c.no for c in doc.columns}:
            return f"专栏{q.column_no}（规划共有专栏1—{max((c.no for c in doc.columns), default=0)}）"
        if q.chapter_no is not None:
            ch = chapters.get(q.chapter_no)
            if ch is None:
                return f"第{q.chapter_no}章（规划共{len(chapters)}章）"
            if q.section_no is not None and q.section_no not in {x.no for x in ch.sections}:
                return f"第{to_cn_number(ch.no)}章第{q.section_no}节（该章共{len(ch.sections)}节）"
        if (
            q.explicit_indicator
            and q.indicator_nos
            and not set(q.indicator_nos) & {i.no for i in doc.indicators}
        ):
            return f"第{q.indicator_nos[0]}项指标（主要指标表共{len(doc.indicators)}项）"
    return None


def _sentences_of(hits: list[Hit]) -> list[str]:
    out = []
    for h in hits:
        out.append(h.unit.label)
        out += split_sentences(h.unit.text) or [h.unit.text]
    return out


def refusal_reason(q: Query, question: str, index: Index, hits: list[Hit]) -> str | None:
    """Why the plan cannot answer this question (a Chinese phrase for 「本规划未涉及……」), or None.

    In order: requests that are not questions about the plan (instructions to the system,
    small talk, writing or code, the weather); parts, periods, years and places the plan does
    not have; then topic coverage — one retrieved sentence must hold at least half of the
    question's topic words, a year the question asks about must stand in a sentence with its
    topic, and an amount of money must stand in a sentence with its topic.
    """
    t = q.normalized
    if RE_INSTRUCTION.search(t):
        return "对系统设定或规则的询问，也不会编造规划中没有的内容"
    if RE_SMALLTALK.search(t.strip()):
        return "闲聊话题"
    if RE_CREATIVE.search(t):
        return "写作、编程、翻译等请求（这里只回答规划中的内容）"
    if RE_WEATHER.search(t):
        return "天气预报"
    ref = missing_reference(q, index)
    if ref:
        return ref
    plan_text = "".join(index.source_canon.values())
    for period in re.findall(r"十[一二三五六七八九]五", t):
        if period not in plan_text:
            return f"“{period}”时期的内容（本规划是“十四五”规划，2021—2025年）"
    years = list(dict.fromkeys(RE_YEAR_NUM.findall(t)))
    unknown = [y for y in years if y not in plan_years(index)]
    if unknown:
        return f"{unknown[0]}年的情况（规划中没有这一年份的数据或目标）"
    if _is_english(question) and t == normalize_question(question):
        return "这一问题（问题中没有规划涉及的术语）"
    other = [p for p in PROVINCES if p in t]
    if other and "广西" not in t and not _province_in_plan_topic(other, question, index, hits):
        return f"{other[0]}等其他地区的情况"
    if not hits:
        return "这一问题"
    if q.chapter_no is not None or q.column_no is not None or (q.indicator_nos and q.explicit_indicator):
        return None  # a question about a named part of the plan that exists (checked above)
    if question_kind(q) in ("table", "outline"):
        return None  # about the plan's own structure: its outline and indicator table answer it
    # topic words of the question as asked (not the added plan terms); each matches itself or
    # one of the plan's terms for it (挖沙 → 采砂)
    asked = normalize_question(question)
    keys = topic_words(strip_references(asked), index) or topic_words(strip_references(t), index)
    # compared in lower case: the tokenizer lowers Latin words (pm2.5, vocs), the plan writes PM2.5
    variants = {k: tuple(v.lower() for v in term_variants(k, index.settings.kb_dir, t.lower())) for k in keys}

    def has(k: str, s_: str) -> bool:
        return any(v in s_ for v in variants.get(k, (k,)))

    if not keys:
        if q.indicator_nos or q.chapter_no or q.column_no:
            return None
        # no word of the plan at all: 「$(rm -rf /)」 would otherwise get whatever ranks first
        return "这一问题" if re.search(r"[\u4e00-\u9fff]", t) else "这一问题（问题中没有规划涉及的术语）"
    sentences = [s_.lower() for s_ in _sentences_of(hits[:5])]
    places = place_names(index)
    subject = [k for k in keys if k not in places]  # a place alone is no topic: the plan names them all
    best = max(sentences, key=lambda s_: (sum(has(k, s_) for k in subject), sum(has(k, s_) for k in keys)))
    share = sum(has(k, best) for k in keys) / len(keys)
    if not q.indicator_nos and (
        share < MIN_TOPIC_SHARE or (subject and not any(has(k, best) for k in subject))
    ):
        return "「" + "、".join(k for k in keys if not has(k, best))[:40] + "」"
    if _asks_amount(t) and not q.indicator_nos and not q.chapter_no and not q.column_no:
        # 「多少」「几」 asks for a figure: one sentence must hold the topic and a number
        need = max(1, round(MIN_TOPIC_SHARE * len(keys)))
        if not any(re.search(r"\d", s_) and sum(has(k, s_) for k in keys) >= need for s_ in sentences):
            return f"「{'、'.join(keys[:3])}」的具体数字"
    for y in years:
        if y in ("2020", "2025"):  # the indicator table's own years
            continue
        topic = [k for k in keys if k != y]
        if not any(y in s_ and (not topic or any(has(k, s_) for k in topic)) for s_ in sentences):
            return f"{y}年的「{'、'.join(topic[:3]) or '这一内容'}」"
    if _asks_amount(t) and re.search(r"补贴|补助|金额|多少钱|工资|价格|房价|收费|投资|资金|经费|预算", t):
        # an amount of money must stand in one sentence with the question's own topic words
        money_words = set("补贴 补助 金额 多少钱 工资 价格 收费 投资 资金 经费 预算 亿元 万元".split())
        need = [k for k in keys if k not in money_words]
        ok = any(
            re.search(r"\d+(\.\d+)?\s*(亿元|万元|元)", s_) and all(k in s_ for k in need) for s_ in sentences
        )
        if not ok:
            return "具体金额或补贴标准"
    return None


RE_YEAR_NUM = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")
RE_REFERENCE = re.compile(
    r"第\s*(?:[一二三四五六七八九十两零〇\d]{1,3}|几)\s*[章节项条个]|(?:什么|哪个)位置|专栏\s*[一二三四五六七八九十\d]{1,3}|(?:chapter|section|column|indicator)\s*\d+",
    re.I,
)


def strip_references(text: str) -> str:
    """The question without 第X章 / 专栏N / chapter N references (they are not topic words)."""
    return RE_REFERENCE.sub(" ", text)


def _province_in_plan_topic(provinces: list[str], question: str, index: Index, hits: list[Hit]) -> bool:
    """Does a retrieved sentence name the province together with the question's topic?

    「哪些市临近广东廉江核电项目…」: the plan's own sentence names 广东 beside 核电 — a question
    about the plan. 「云南的森林覆盖率」: 云南 stands only in a sentence about water co-governance,
    so Guangxi's 森林覆盖率 is no answer to it.
    """
    words = [
        w for w in topic_words(normalize_question(question), index) if not any(p in w for p in provinces)
    ]
    if not words:
        return False
    for s_ in _sentences_of(hits[:5]):
        if any(p in s_ for p in provinces) and sum(w in s_ for w in words) >= max(1, len(words) // 2):
            return True
    return False


def plan_years(index: Index) -> frozenset[str]:
    """Every year the plan's text mentions (「2015年」「2035年」…)."""
    if "years" not in index.memo:
        index.memo["years"] = frozenset(
            y for src in index.source_canon.values() for y in RE_YEAR_NUM.findall(src)
        )
    return index.memo["years"]


def _is_english(question: str) -> bool:
    return not re.search(r"[\u4e00-\u9fff]", question) and len(re.findall(r"[A-Za-z]{3,}", question)) >= 3


def _asks_amount(t: str) -> bool:
    """Does the question ask for a figure? (「哪几类」 asks which and 「第几章」 where, not how many.)"""
    return bool(re.search(r"多少|(?<![哪第])几|金额|数额", t))


def topic_words(text: str, index: Index) -> list[str]:
    """The question's content words (≥ 2 characters, not generic), as the tokenizer cuts them.

    Latin words count only when the plan uses them (PM2.5, VOCs) or they are written as an
    acronym (GDP): ordinary English words cannot be looked up in a Chinese text.
    """
    words = index.tokenizer.words(text)
    if "vocab" not in index.memo:
        index.memo["vocab"] = frozenset().union(*(r.vocab_dict.keys() for r in index.bm25.values()))
    vocab = index.memo["vocab"]
    out = []
    for w in dict.fromkeys(words):
        if len(w) < 2 or w in GENERIC or w.isdigit():
            continue
        if (
            re.fullmatch(r"[a-z0-9.\-]+", w)
            and w not in vocab
            and not re.search(rf"\b{re.escape(w.upper())}\b", text)
        ):
            continue
        out.append(w)
    return out


# ----------------------------------------------------------------------------- composition helpers


def score_sentence(
    index: Index, q_tokens: list[str], sentence: str, toks: frozenset[str] | None = None
) -> float:
    """IDF mass of the question tokens found in the sentence."""
    toks = toks if toks is not None else frozenset(index.tokenizer(sentence))
    return sum(idf(index, t) for t in set(q_tokens) if t in toks)


def _chapter_label(index: Index, doc: str, no: int) -> str:
    ch = next(c for c in index.docs[doc].chapters if c.no == no)
    return f"第{to_cn_number(no)}章「{ch.title}」"


def _strip_lead(s: str) -> str:
    return s[2:] if s.startswith("——") else s


# ----------------------------------------------------------------------------- indicator answers


def _is_figure(v: str | None) -> bool:
    return v is not None and bool(re.fullmatch(r"[\d.]+", v))


def _year(year: int, v: str | None, target: bool) -> str:
    """「2025年目标为62.6」 for a figure, 「2025年目标“以国家下达指标为准”」 for words."""
    head = f"{year}年目标" if target else f"{year}年"
    if v is None:
        return f"{head}表中未列"
    if v == "—":
        return f"{head}表中为“—”（未列数值）"
    return f"{head}为{v}" if _is_figure(v) else f"{head}“{v}”"


def indicator_statements(ind: Indicator) -> list[str]:
    """The row read out field by field, values exactly as printed; one statement per scope."""
    attr = f"，属{ind.attribute}指标" if ind.attribute else ""
    if ind.rows:
        return [
            f"{ind.display_name}（{r.scope}）：{_year(r.baseline.year, r.baseline.value, False)}，"
            f"{_year(r.target.year, r.target.value, True)}{attr}"
            for r in ind.rows
        ]
    body = (
        f"{ind.display_name}：{_year(ind.baseline.year, ind.baseline.value, False)}，"
        f"{_year(ind.target.year, ind.target.value, True)}"
    )
    if ind.remark:
        body += f"（{ind.remark}）"
    return [body + attr]


def compose_indicator(index: Index, q: Query, hits: list[Hit], cites: Citations) -> list[str]:
    lines: list[str] = []
    inds = [
        h.unit
        for h in hits
        if h.unit.kind == KIND_INDICATOR and h.unit.location.indicator_no in q.indicator_nos
    ]
    for u in inds:
        ind = u.indicator
        assert ind is not None
        doc = index.docs[u.doc]
        # The row alone supports the statement (the years are the table's columns), so it is the
        # one citation: every citation is one the statement needs.
        ns = [cites.cite(u)]
        cat = f" · {ind.category}类" if ind.category else ""
        note = "；表中未标注该项的约束性/预期性" if not ind.attribute else ""
        lines.append(f"#### 专栏{u.location.column_no} 主要指标 · 第{ind.no}项{cat}{note}")
        lines += [f"{st}{cites.marks(*ns)}。" for st in indicator_statements(ind)]
        for n in ind.notes:
            nu = next((x for x in doc.units if x.kind == KIND_NOTE and x.title == f"注{n.marker}"), None)
            if nu is not None:
                lines.append(f"表注{n.marker}：{n.text.rstrip('。')}{cites.marks(cites.cite(nu))}。")
        # the prose may state the same measure (e.g. 近岸海域优良水质比例 95.5% in 第一章)
        keys = _name_words(index, ind.name)
        prose = [h.unit for h in hits if h.unit.kind == KIND_PARAGRAPH]
        prose += [x for x in doc.units if x.kind == KIND_PARAGRAPH and x not in prose]
        for p in prose:
            sent = next(
                (
                    x
                    for x in split_sentences(p.text)
                    if keys and all(k in x for k in keys) and re.search(r"\d", x)
                ),
                None,
            )
            if sent:
                clause = _clause_with(sent, keys[0])
                lines.append(f"规划正文：{clause.rstrip('。；')}{cites.marks(cites.cite(p, clause))}。")
                break
    return lines


def _name_words(index: Index, name: str) -> list[str]:
    """The distinctive words of an indicator name (「近岸海域」「优良」「水质」), for finding it in prose."""
    core = re.sub(r"^(设区城市|单位地区生产总值|地表水质量)", "", name)
    core = re.sub(r"(比例|比率|面积|重点工程减排量|降低)$", "", core)
    return [w for w in index.tokenizer.words(core) if len(w) >= 2]


def _clause_with(sentence: str, key: str) -> str:
    """The comma clause(s) of a sentence that mention ``key`` (verbatim), with what follows it."""
    parts = re.split(r"(?<=[，；])", sentence)
    for i, p in enumerate(parts):
        if key in p:
            out = p
            # keep the next clause when it carries the figure (「…比例保持90.9%以上，其中2020年达到95.5%」)
            if i + 1 < len(parts) and re.search(r"\d", parts[i + 1]):
                out += parts[i + 1]
            return out.rstrip("，；")
    return sentence


# ----------------------------------------------------------------------------- column answers


def compose_column(index: Index, q: Query, hits: list[Hit], cites: Citations) -> list[str]:
    lines: list[str] = []
    for doc in index.docs.values():
        col = next((c for c in doc.columns if c.no == q.column_no), None)
        if col is None:
            continue
        col_unit = next(u for u in doc.units if u.id == col.id)
        if not col.items:  # the indicator table: its rows by category
            n = cites.cite(col_unit)
            lines.append(
                f"专栏{col.no}为「{col.title}」，共列出{len(doc.indicators)}项指标{cites.marks(n)}："
            )
            rows = [u for u in doc.units if u.kind == KIND_INDICATOR and u.location.column_no == col.no]
            cats: dict[str, list[Unit]] = {}
            for u in rows:
                cats.setdefault((u.indicator.category if u.indicator else None) or "其他", []).append(u)
            for cat, us in cats.items():
                names = "、".join(u.indicator.display_name for u in us if u.indicator)
                lines.append(f"- {cat}：{names}{cites.marks(*(cites.cite(u) for u in us))}")
            return lines
        lines.append(f"#### 专栏{col.no} {col.title}（共{len(col.items)}项）")
        for item in col.items:
            u = index.units[item.id]
            first = split_sentences(u.text)[0]
            lines.append(f"- {first.rstrip('。；')}{cites.marks(cites.cite(u, first))}。")
    return lines


# ----------------------------------------------------------------------------- navigation


def compose_navigation(index: Index, q: Query, cites: Citations) -> list[str]:
    """What a chapter or section covers: its heading, intro sentence, sections and lead phrases."""
    lines: list[str] = []
    for doc in index.docs.values():
        ch = next((c for c in doc.chapters if c.no == q.chapter_no), None)
        if ch is None:
            continue
        head = index.units.get(ch.id)
        if q.section_no is not None:
            sec = next((s for s in ch.sections if s.no == q.section_no), None)
            if sec is None:
                continue
            sh = index.units.get(sec.id)
            lines.append(f"#### {_chapter_label(index, doc.id, ch.no)} › 第{to_cn_number(sec.no)}节")
            if sh is not None:
                lines.append(f"{sh.text}{cites.marks(cites.cite(sh))}。")
            for uid in sec.unit_ids:
                u = index.units[uid]
                sent = u.lead or split_sentences(u.text)[0]
                lines.append(f"- {_strip_lead(sent).rstrip('。；')}{cites.marks(cites.cite(u, sent))}。")
            for col in doc.columns:
                if col.chapter_no == ch.no and col.section_no == sec.no:
                    cu = index.units[col.id]
                    lines.append(f"- {cu.text}{cites.marks(cites.cite(cu))}")
            return lines
        lines.append(f"#### {_chapter_label(index, doc.id, ch.no)}")
        if head is not None:
            lines.append(f"{head.text}{cites.marks(cites.cite(head))}。")
        if ch.intro_ids:
            u = index.units[ch.intro_ids[0]]
            sent = split_sentences(u.text)[0]
            lines.append(f"{sent.rstrip('。')}{cites.marks(cites.cite(u, sent))}。")
        for sec in ch.sections:
            sh = index.units.get(sec.id)
            if sh is not None:
                lines.append(f"- {sh.text}{cites.marks(cites.cite(sh))}")
        for col in doc.columns:
            if col.chapter_no == ch.no:
                cu = index.units[col.id]
                lines.append(f"- {cu.text}{cites.marks(cites.cite(cu))}")
    return lines


def compose_table(index: Index, q: Query, cites: Citations) -> list[str]:
    """The indicator table as a whole: every row, or those of one attribute (约束性/预期性) or
    one category (环境治理类 …), each row cited. Counts are of the table's own rows."""
    t = q.normalized
    lines: list[str] = []
    for doc in index.docs.values():
        rows = [u for u in doc.units if u.kind == KIND_INDICATOR and u.indicator is not None]
        if not rows:
            continue
        col = rows[0].location.column_no
        attrs = [a for a in ("约束性", "预期性") if a in t]
        cats = [c for c in dict.fromkeys(u.indicator.category for u in rows) if c and c in t]
        chosen = [
            u
            for u in rows
            if (not attrs or u.indicator.attribute in attrs) and (not cats or u.indicator.category in cats)
        ]
        what = "、".join([f"{c}类" for c in cats] + [f"属{a}" for a in attrs])
        head = f"#### 专栏{col} 主要指标共{len(rows)}项"
        lines.append(head + (f"，其中{what}的{len(chosen)}项" if what else ""))
        for u in chosen:
            ind = u.indicator
            attr = ind.attribute or "表中未标注约束性/预期性"
            lines.append(f"- 第{ind.no}项 {ind.name}：{attr}{cites.marks(cites.cite(u))}")
    return lines


def compose_outline(index: Index, cites: Citations, columns: bool = False) -> list[str]:
    """The plan's chapters (or, asked about 专栏, its boxed columns), each heading cited."""
    lines: list[str] = []
    for doc in index.docs.values():
        n_sec = sum(len(c.sections) for c in doc.chapters)
        lines.append(f"#### 规划共{len(doc.chapters)}章、{n_sec}节、{len(doc.columns)}个专栏")
        if columns:
            for col in doc.columns:
                cu = index.units.get(col.id)
                if cu is not None:
                    lines.append(f"- {cu.text}{cites.marks(cites.cite(cu))}")
            continue
        for ch in doc.chapters:
            head = index.units.get(ch.id)
            if head is not None:
                lines.append(f"- {head.text}（{len(ch.sections)}节）{cites.marks(cites.cite(head))}")
    return lines


# ----------------------------------------------------------------------------- free and list questions

CITY_NAMES = "南宁 柳州 桂林 梧州 北海 防城港 钦州 贵港 玉林 百色 贺州 河池 来宾 崇左".split()
RE_LIST_Q = re.compile(r"哪些|哪几|哪个|列举|包括什么|有什么|都有|分别")


def candidate_sentences(
    index: Index, hits: list[Hit], limit_units: int = 6
) -> list[tuple[int, Unit, str, frozenset]]:
    """(hit rank, unit, sentence, tokens) for the sentences of the top hits (not table rows)."""
    out = []
    for rank, h in enumerate(hits[:limit_units]):
        u = h.unit
        if u.kind in (KIND_INDICATOR, KIND_HEADING, KIND_TABLE_HEAD):
            continue
        for sent, toks in sentence_tokens(index, u):
            out.append((rank, u, sent, toks))
    return out


def compose_free(index: Index, q: Query, hits: list[Hit], cites: Citations, *, want: int = 4) -> list[str]:
    """The sentences that best answer the question, most relevant first, each cited.

    Score = IDF-weighted overlap of question tokens with the sentence, plus a prior for the
    hit's rank, plus a bonus for figures when the question asks for an amount and for city
    names when it asks 「哪些市」. A bare lead phrase (「强化生物安全监管。」) brings the
    sentence that develops it; a sentence is never used twice.
    """
    q_tokens = index.tokenizer(q.normalized)
    is_list = bool(RE_LIST_Q.search(q.normalized))
    asks_city = bool(re.search(r"哪些(市|城市|地方|地区)|哪几个(市|城市)|哪些设区市", q.normalized))
    asks_amount = _asks_amount(q.normalized)
    cands = candidate_sentences(index, hits, 8)
    scored = []
    for i, (rank, u, sent, toks) in enumerate(cands):
        sc = score_sentence(index, q_tokens, sent, toks) + 1.5 / (1 + rank)
        if asks_city:
            sc += 1.0 * sum(1 for c in CITY_NAMES if c in sent)
        if asks_amount and re.search(r"\d", sent):
            sc += 1.5
        scored.append((sc, i, u, sent))
    scored.sort(key=lambda x: (-x[0], x[1]))
    if not scored:
        return []
    top = scored[0][0]
    n_want = 6 if is_list else want
    lines: list[str] = []
    used: set[str] = set()
    for sc, _, u, sent in scored:
        if len(lines) >= n_want or sc <= 0.5 or sc < 0.35 * top:
            break
        if sent in used:
            continue
        parts = [sent]
        if u.lead and sent == u.lead:  # a bare topic sentence: bring the sentence that develops it
            sents = split_sentences(u.text)
            if len(sents) > 1 and sents[1] not in used:
                parts.append(sents[1])
        used.update(parts)
        n = cites.cite(u, "".join(parts))
        body = "".join(f"{_strip_lead(x).rstrip('。；')}{cites.marks(n)}。" for x in parts)
        lines.append(("- " if is_list else "") + body)
    return lines


RE_WHERE_Q = re.compile(
    r"(在|见|属于)?(规划)?(的)?(哪一|哪个|哪|第几)(章|节|部分|个章节|个专栏|个位置)|在哪里(提到|讲|写)|出自哪"
    r"|(什么|哪个)位置"
)


def compose_where(index: Index, q: Query, hits: list[Hit], cites: Citations) -> list[str]:
    """「碳达峰在哪一节？」: name the place of the best hit, citing its heading and a sentence."""
    lines: list[str] = []
    shown: set[str] = set()
    for h in hits[:2]:
        u = h.unit
        loc = u.location
        heading = None
        if loc.column_no is not None:
            heading = index.units.get(f"{u.doc}:col{loc.column_no}")
        elif loc.chapter_no is not None and loc.section_no is not None:
            heading = index.units.get(f"{u.doc}:ch{loc.chapter_no:02d}.s{loc.section_no:02d}")
        elif loc.chapter_no is not None:
            heading = index.units.get(f"{u.doc}:ch{loc.chapter_no:02d}")
        if heading is None:
            continue
        if heading.id not in shown:  # the second hit may sit in the same place, or elsewhere
            lines.append(f"#### {'另见' if lines else '相关内容见'}：{u.label}")
            lines.append(f"{heading.text}{cites.marks(cites.cite(heading))}。")
            shown.add(heading.id)
        sent = max(
            split_sentences(u.text), key=lambda x: score_sentence(index, index.tokenizer(q.normalized), x)
        )
        lines.append(f"{_strip_lead(sent).rstrip('。；')}{cites.marks(cites.cite(u, sent))}。")
    return lines


# ----------------------------------------------------------------------------- the whole answer


# the indicator table as a whole: 「哪些指标是约束性的」「专栏1一共有多少项指标」
RE_TABLE_Q = re.compile(
    r"指标[^，。？?]{0,12}(哪些|哪几|多少项|几项|多少个|几个|一共|总共|共有)"
    r"|(哪些|哪几|多少项|几项|多少个|几个|一共|总共)[^，。？?]{0,8}指标"
    r"|(哪些|哪几|多少|几)[^，。？?]{0,4}(约束性|预期性)|(约束性|预期性)[^，。？?]{0,4}(哪些|哪几|多少|几)"
)
# the plan's outline: 「规划一共有多少章」「有哪几章」
RE_OUTLINE_Q = re.compile(
    r"(一共|总共|共有|共|多少|(?<!第)几)个?(章|节|专栏)|(章|节|专栏)[^，。？?]{0,3}(一共|总共|共有|多少|几)个"
    r"|(哪些|哪几)章|结构|目录"
)
RE_OUTLINE_WORDS = re.compile(
    r"一共|总共|共有|共|多少|几|个|章节|章|节|专栏|哪些|结构|目录|框架|这个|这份|本|分|什么|怎样|怎么样|如何"
)


RE_TABLE_WORDS = re.compile(
    r"专栏[1一]|主要指标|指标表|指标体系|指标|哪些|哪几|多少项|几项|多少个|几个|多少|一共|总共|共有|列了|列出|提出了?"
    r"|包括|有|是|属于|里|中|的|规划|[？?，。\s]"
)


def is_table_question(q: Query) -> bool:
    """The whole indicator table, or its rows of one attribute or category — not a question that
    only mentions 指标 (「哪些指标以国家下达指标为准」 asks about targets: left to the other routes)."""
    t = q.normalized
    if (
        q.indicator_nos
        or q.column_no not in (None, 1)
        or q.chapter_no is not None
        or not RE_TABLE_Q.search(t)
    ):
        return False
    rest = re.sub(
        r"约束性|预期性|环境治理|应对气候变化|环境风险防控|生态保护|类", "", RE_TABLE_WORDS.sub("", t)
    )
    return not rest


def question_kind(q: Query) -> str:
    t = q.normalized
    if is_table_question(q):
        return "table"
    if (
        q.chapter_no is None
        and q.column_no is None
        and not q.indicator_nos
        and RE_OUTLINE_Q.search(t)
        and not RE_OUTLINE_WORDS.sub("", RE_TABLE_WORDS.sub("", t))
    ):
        return "outline"  # nothing else asked (「广西有多少个节日」 is no outline question)
    if RE_WHERE_Q.search(q.normalized) and q.chapter_no is None and q.column_no is None:
        return "where"  # 「森林覆盖率在第几章」 asks the place, even of an indicator
    if q.indicator_nos:
        return "indicator"
    if q.column_no is not None and q.content_chars <= 4:
        return "column"
    if q.chapter_no is not None and (
        q.content_chars <= 2
        or (q.section_no is not None and RE_LIST_Q.search(q.normalized) and q.content_chars <= 4)
    ):
        return "navigation"
    return "free"


def refusal(
    question: str, reason: str, hits: list[Hit], standalone: str | None, timings: dict[str, float]
) -> Answer:
    near = []
    for h in hits[:3]:
        lab = h.unit.label
        if lab not in near:
            near.append(lab)
    text = f"本规划未涉及{reason}，无法依据规划作答。"
    if near and not reason.startswith(("对系统", "闲聊")):
        text += "\n\n规划中相关度较高的部分：" + "；".join(f"「{x}」" for x in near) + "。"
    if reason == "闲聊话题":
        text = (
            "您好！我只回答《广西生态环境保护“十四五”规划》中的内容，例如「2025年森林覆盖率目标是多少？」"
            "「专栏8包括哪些工程？」「第七章讲什么？」。"
        )
    return Answer(
        question=question,
        answer=text,
        answerable=False,
        citations=(),
        mode="refusal",
        timings_ms=timings,
        standalone_question=standalone,
    )


def ask(
    index: Index,
    question: str,
    history: History = (),
    *,
    llm: Any = None,
    on_token: Callable[[str], None] | None = None,
    k: int = 8,
) -> Answer:
    """Answer a question from the plan. Never raises for any input string (bad input gets a
    non-answerable ``Answer`` with ``mode="invalid"``); ``llm`` is an optional chat model."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    problem = check_input(question, index.settings.max_question_chars)
    if problem:
        return Answer(
            question=question or "", answer=problem, answerable=False, mode="invalid", timings_ms={}
        )
    history = clean_history(history)
    standalone = resolve_followup(question, history)
    if len(standalone) > 2 * index.settings.max_question_chars:
        standalone = question
    if llm is not None and standalone == question and history and RE_FOLLOWUP.search(question):
        from policyqa.llm import rewrite_question

        standalone = rewrite_question(question, history_pairs(history), llm) or standalone
    trace = SearchTrace()
    hits = search(index, standalone, k=k, trace=trace)
    timings.update({f"search.{k_}": v for k_, v in trace.timings_ms.items()})
    q = trace.query or analyze(standalone, index)
    t1 = time.perf_counter()
    timings["search"] = (t1 - t0) * 1000
    reason = refusal_reason(q, standalone, index, hits)
    if reason:
        timings["total"] = (time.perf_counter() - t0) * 1000
        return refusal(question, reason, hits, standalone, timings)

    try:
        extractive = compose(index, q, hits)
    except AssertionError:  # a composition bug: log it, and answer nothing rather than break the contract
        log.exception("answer failed its citation check: %r", standalone)
        extractive = None
    timings["compose"] = (time.perf_counter() - t1) * 1000
    if extractive is None:
        timings["total"] = (time.perf_counter() - t0) * 1000
        return refusal(question, "这一问题的具体内容", hits, standalone, timings)
    text, cites = extractive
    if not re.search(r"[\u4e00-\u9fff]", question):
        text = "#### Answer from the plan (in Chinese), with citations\n" + text
    answer = Answer(
        question=question,
        answer=text,
        answerable=True,
        citations=cites,
        mode="extractive",
        timings_ms=timings,
        standalone_question=standalone,
    )
    if llm is not None:
        answer = _try_llm(index, answer, standalone, hits, llm, history, on_token)
    timings["total"] = (time.perf_counter() - t0) * 1000
    return replace(answer, timings_ms=timings)


def compose(index: Index, q: Query, hits: list[Hit]) -> tuple[str, tuple] | None:
    """The extractive answer text and its citations, or None when nothing fits."""
    cites = Citations()
    kind = question_kind(q)
    lines: list[str] = []
    if kind == "indicator":
        lines = compose_indicator(index, q, hits, cites)
    elif kind == "column":
        lines = compose_column(index, q, hits, cites)
    elif kind == "navigation":
        lines = compose_navigation(index, q, cites)
    elif kind == "where":
        lines = compose_where(index, q, hits, cites)
    elif kind == "table":
        lines = compose_table(index, q, cites)
    elif kind == "outline":
        lines = compose_outline(index, cites, columns="专栏" in q.normalized)
    if not lines:
        lines = compose_free(index, q, hits, cites)
    if not lines:
        return None
    text, final = renumber("\n".join(lines), cites.items)
    problems = contract_problems(text, final, index.source_canon)
    if problems:  # a bug, not a user error: never ship an answer that breaks the contract
        raise AssertionError("; ".join(problems))
    return text, final


def _try_llm(
    index: Index,
    extractive: Answer,
    question: str,
    hits: list[Hit],
    llm: Any,
    history: History,
    on_token: Callable[[str], None] | None,
) -> Answer:
    from policyqa import llm as llm_mod

    try:
        outcome = llm_mod.llm_answer(question, hits, llm, history=history_pairs(history), on_token=on_token)
    except Exception as e:  # the LLM path must never take the answer down
        return replace(
            extractive, mode=f"llm-fallback:{type(e).__name__}", notice="大模型暂不可用，已改用原文摘录回答。"
        )
    ans = getattr(outcome, "answer", outcome)
    reason = getattr(outcome, "reason", "unchecked")
    if ans is None:
        return replace(
            extractive, mode=f"llm-fallback:{reason}", notice="大模型暂不可用，已改用原文摘录回答。"
        )
    if contract_problems(ans.answer, ans.citations, index.source_canon):
        return replace(
            extractive,
            mode="llm-fallback:unchecked",
            notice="大模型的回答未通过引用核验，已改用原文摘录回答。",
        )
    return replace(ans, question=extractive.question, standalone_question=question)
