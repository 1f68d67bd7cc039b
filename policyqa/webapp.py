"""The web app: ``build_app(state)`` returns the gradio Blocks (not launched); ``app.py`` launches.

Tabs: 问答 (chat with a 出处 panel, feedback, Markdown export), 浏览规划 (outline → text, the
indicator table, search) and, in admin mode only, 管理 (re-ingest, manifest, feedback log; each
action checks the admin password). Named API endpoints: ``/ask``, ``/search``, ``/outline``;
every UI event is private (not callable through gradio_client).

One ``Index`` is opened at startup and shared by all requests through ``AppState`` (ask and
search only read it); a re-ingest builds a new index and swaps the reference, so requests in
flight finish on the old one. HTML comes from ``policyqa.render`` (plain, tested functions).

Import this module only after setting ``GRADIO_ANALYTICS_ENABLED`` (app.py does).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import hmac
import json
import logging
import math
import os
import queue
import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import gradio as gr

from policyqa import render
from policyqa.answer import ask, check_input
from policyqa.errors import PolicyQAError
from policyqa.feedback import append_feedback, feedback_record, read_feedback, replace_feedback
from policyqa.index import Index, build_index, open_index
from policyqa.models import Answer
from policyqa.retrieve import search, warm
from policyqa.settings import Settings
from policyqa.webassets import CSS, i18n, page_js, theme

log = logging.getLogger("policyqa.app")

EXAMPLES = ("2025年森林覆盖率目标是多少？", "专栏8包括哪些工程？", "工地扬尘谁管？")
MAX_K = 20  # the browse tab's slider
API_MAX_K = 50  # /search
DEFAULT_K = 5
PRIVATE = "private"  # gradio 6 spelling of show_api=False: no API docs, not callable by clients
EXPORT_PREFIX = "policyqa-exports-"
EXPORT_TTL_S = 3600


class AdminGuard:
    """Checks the admin password with a per-process backoff: after ``max_failures`` wrong
    passwords within ``window_s`` seconds, every attempt (right or wrong) is refused for
    ``lockout_s`` seconds. Counts live in memory under a lock; the password is never logged."""

    def __init__(
        self,
        max_failures: int = 5,
        window_s: float = 60.0,
        lockout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: collections.deque[float] = collections.deque()
        self._locked_until = 0.0

    def check(self, given: str | None, settings: Settings) -> str | None:
        """None when ``given`` is the admin password, else the (Chinese) message to show."""
        with self._lock:
            now = self.clock()
            if now < self._locked_until:
                return f"口令错误次数过多，请 {math.ceil(self._locked_until - now)} 秒后再试。"
            if password_ok(given, settings):
                self._failures.clear()
                return None
            self._failures.append(now)
            while self._failures and self._failures[0] <= now - self.window_s:
                self._failures.popleft()
            if len(self._failures) >= self.max_failures:
                self._failures.clear()
                self._locked_until = now + self.lockout_s
                log.warning(
                    "admin password: %d wrong attempts, refusing attempts for %.0f s",
                    self.max_failures,
                    self.lockout_s,
                )
                return f"口令不正确。错误次数过多，请 {math.ceil(self.lockout_s)} 秒后再试。"
            return "口令不正确。"


@dataclass
class AppState:
    """What every request shares: settings, the open index (swapped on re-ingest), the LLM."""

    settings: Settings
    index: Index
    llm: Any = None
    admin: bool = False
    rebuild_lock: threading.Lock = field(default_factory=threading.Lock)
    admin_guard: AdminGuard = field(default_factory=AdminGuard)
    _export_dir: Path | None = field(default=None, repr=False)
    _export_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def export_dir(self) -> Path:
        """This process's directory for conversation exports, made on first use with
        ``tempfile.mkdtemp`` (mode 0700, a fresh random name: no other local user can read it
        or plant a symlink in it) under ``settings.home`` when that exists, else the system
        temp directory; removed when the process exits."""
        with self._export_lock:
            if self._export_dir is None or not self._export_dir.is_dir():
                home = Path(self.settings.home)
                parent = str(home.resolve()) if home.is_dir() else None
                prune_dead_exports(Path(parent or tempfile.gettempdir()))
                d = Path(tempfile.mkdtemp(prefix=export_prefix(), dir=parent)).resolve()
                atexit.register(shutil.rmtree, d, ignore_errors=True)
                self._export_dir = d
            return self._export_dir


# ----------------------------------------------------------------------------- plain helpers


def export_prefix(pid: int | None = None) -> str:
    """``policyqa-exports-<host>-<pid>-``: whose folder it is, so a later process can tell."""
    host = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:40]
    return f"{EXPORT_PREFIX}{host}-{os.getpid() if pid is None else pid}-"


def prune_dead_exports(parent: Path) -> list[Path]:
    """Remove export folders whose process is gone (killed, so its atexit never ran): they hold
    people's conversations. Only folders of this host and this user; a folder of a live process,
    of another host (a home shared between replicas) or of another user is left alone."""
    mine = export_prefix(0)[: -len("0-")]  # policyqa-exports-<host>-
    removed = []
    with contextlib.suppress(OSError):
        for d in parent.iterdir():
            pid_text = d.name[len(mine) :].split("-", 1)[0]
            if not d.name.startswith(mine) or not pid_text.isdigit() or d.is_symlink():
                continue
            try:
                if d.stat().st_uid != os.getuid():
                    continue
                os.kill(int(pid_text), 0)
                continue  # alive
            except ProcessLookupError:
                pass
            except OSError:  # PermissionError: alive, another user's process
                continue
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def history_of(answers: list[Answer]) -> list[dict[str, str]]:
    """The conversation as ask() takes it: alternating user / assistant messages."""
    out: list[dict[str, str]] = []
    for a in answers:
        out.append({"role": "user", "content": a.question})
        out.append({"role": "assistant", "content": a.answer})
    return out


def parse_history_json(text: str) -> list[dict[str, Any]]:
    """``history_json`` of /ask: "" or a JSON list of {"role", "content"} objects."""
    if not (text or "").strip():
        return []
    try:
        data = json.loads(text)
    except ValueError as e:
        raise PolicyQAError(f"history_json 不是有效的 JSON：{e.msg}（第 {e.pos} 个字符）。") from None
    return checked_history(data, "history_json")


def checked_history(data: Any, name: str = "history") -> list[dict[str, Any]]:
    """``data`` if it is a list of {"role": "user"|"assistant", "content"} objects, else a
    PolicyQAError naming the field ``name``."""
    if not isinstance(data, list) or not all(
        isinstance(m, dict) and m.get("role") in ("user", "assistant") and "content" in m for m in data
    ):
        raise PolicyQAError(f'{name} 应为列表，元素形如 {{"role": "user" 或 "assistant", "content": "…"}}。')
    return data


def safe_ask(
    state: AppState,
    question: str,
    history: list[dict[str, Any]],
    on_token=None,
    *,
    index: Index | None = None,
    doc: str | None = None,
) -> Answer:
    """ask() that never takes the page down: a failure becomes a non-answer with mode "error".
    ``index``: the index this request read from ``state`` (default: the live one now);
    ``doc``: answer from that document only (None: the whole library)."""
    scope = {"doc": doc} if doc else {}
    try:
        return ask(
            state.index if index is None else index,
            question,
            history,
            llm=state.llm,
            on_token=on_token,
            **scope,
        )
    except PolicyQAError as e:
        log.warning("ask failed: %s", e)
        text = str(e)
    except Exception:
        log.exception("ask failed")
        text = "抱歉，服务暂时出错，未能作答，请稍后再试。"
    return Answer(question=question or "", answer=text, answerable=False, mode="error")


def write_export(answers: list[Answer], directory: Path, asked: list[datetime] | None = None) -> str:
    """Write the conversation as Markdown to a new file (unique name, mode 0600) in
    ``directory`` (``AppState.export_dir()``); exports older than an hour are removed. Returns the path."""
    cutoff = time.time() - EXPORT_TTL_S
    for old in directory.glob("policyqa-chat-*.md"):
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:
            pass
    data = render.render_export_markdown(answers, asked=asked or ()).encode("utf-8")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    while True:
        stamp = datetime.now(render.DISPLAY_TZ)
        path = directory / f"policyqa-chat-{stamp:%Y%m%d-%H%M%S}-{secrets.token_hex(4)}.md"
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            continue
        break
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return str(path)


def drop_export(path: str | None) -> None:
    """Delete an export file written by ``write_export`` (gone already: nothing to do)."""
    if path:
        with contextlib.suppress(OSError):
            Path(path).unlink()


def parse_k(k: Any, high: int = API_MAX_K) -> int:
    """The number of hits asked for: an integer clamped to 1..``high``; DEFAULT_K when missing
    or not a number."""
    if isinstance(k, bool):
        return DEFAULT_K
    try:
        n = float(k)
    except (TypeError, ValueError):
        return DEFAULT_K
    if not math.isfinite(n):
        return DEFAULT_K
    return max(1, min(int(n), high))


def checked_search(
    index: Index, settings: Settings, question: str, k: Any, high: int = API_MAX_K, doc: str | None = None
) -> list:
    """search() behind the same input check as ask, in one document when ``doc`` is given.
    Raises PolicyQAError with a Chinese message for unusable input or a failed search (the
    cause is logged)."""
    problem = check_input(question, settings.max_question_chars)
    if problem:
        raise PolicyQAError(problem)
    try:
        scope = {"doc": doc} if doc else {}
        return search(index, question, k=parse_k(k, high), **scope)
    except PolicyQAError as e:
        log.warning("search failed: %s", e)
        raise
    except Exception:
        log.exception("search failed")
        raise PolicyQAError("检索暂时出错，请稍后再试。") from None


def record_vote(
    settings: Settings,
    answers: list[Answer],
    vote: str,
    comment: str,
    *,
    answer_id: str | None = None,
    previous: tuple[str, str] | list[str] | None = None,
) -> tuple[str, bool, tuple[str, str]]:
    """Record a 👍/👎 on the latest answer: (status line for the page, saved, (vote, comment)).

    One vote per answer: ``previous`` is this answer's earlier (vote, comment) in the session.
    The same vote again without a new comment changes nothing; another vote, or a new comment,
    replaces the earlier line of the log (keeping the earlier comment when no new one is given).
    A log that cannot be written is logged and reported in a short line; nothing else fails."""
    comment = (comment or "").strip()
    if not answers:
        return "请先提问，再对回答评价。", False, ("", "")
    name = "有帮助" if vote == "up" else "没帮助"
    if previous is not None:
        old_vote, old_comment = previous
        if old_vote == vote and not comment:
            return f"这条回答已评价为「{name}」，每条回答只记一次。", False, (old_vote, old_comment)
        comment = comment or old_comment
    record = feedback_record(answers[-1], vote, comment, answer_id=answer_id)
    try:
        if previous is None:
            append_feedback(settings.feedback_path, record)
        else:
            replace_feedback(settings.feedback_path, record)
    except OSError as e:
        log.error("feedback log %s not writable: %s", settings.feedback_path, e)
        return "⚠️ 反馈暂时无法保存（服务器记录文件不可写），不影响继续提问。", False, ("", "")
    if previous is not None:
        status = f"已改为：{name}。每条回答只记一次评价。"
    else:
        status = "已记录：有帮助，谢谢！" if vote == "up" else "已记录：没帮助。谢谢指正，我们会改进。"
    return status, True, (vote, comment)


def password_ok(given: str | None, settings: Settings) -> bool:
    expected = settings.admin_password
    if not expected:
        return False
    return hmac.compare_digest(str(given or "").encode("utf-8"), expected.encode("utf-8"))


# ----------------------------------------------------------------------------- page assets

HEAD_TITLE = render.APP_TITLE


def launch_assets(state: AppState | None = None) -> dict[str, Any]:
    """Page-level arguments for ``Blocks.launch`` (gradio 6 takes them there, not in Blocks()).
    With ``state``, gradio may also hand out files of its export directory (which may lie
    outside the working and temp directories gradio allows by default)."""
    limit = state.settings.max_question_chars if state is not None else Settings().max_question_chars
    assets: dict[str, Any] = {"css": CSS, "js": page_js(limit), "theme": theme(), "i18n": i18n()}
    if state is not None:
        assets["allowed_paths"] = [str(state.export_dir())]
    return assets


# ----------------------------------------------------------------------------- the app


def build_app(state: AppState) -> gr.Blocks:
    """The Blocks for ``state`` (public, or admin when ``state.admin``). Not launched.

    With several documents in the index, a selector under the header (``_scope_slot``) limits
    both the chat and the browse tabs to one of them; with one document it is hidden."""
    with gr.Blocks(title=HEAD_TITLE, analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        docs = state.index.docs
        doc = next(iter(docs.values()), None)
        meta = doc.meta if doc else {}
        title = meta.get("title") or (doc.title if doc else "")
        number = f"（{meta['doc_number']}）" if meta.get("doc_number") else ""
        basis = f"《{render.esc(title)}》{render.esc(number)}"
        if len(docs) > 1:
            basis = f"《{render.esc(title)}》等 {len(docs)} 份文件的"
        gr.HTML(
            f'<div class="pq-header"><h1>{render.esc(render.APP_TITLE)}</h1>'
            f"<p>依据{basis}原文作答：每句话都标注出处，"
            "点击角标即可核对规划原文；规划没有写到的内容，会如实说明。</p></div>"
        )
        scope = _scope_slot(state)
        with gr.Tabs():
            with gr.Tab("问答", id="chat"):
                _chat_tab(state, scope)
            with gr.Tab("浏览规划", id="browse"):
                _browse_tab(state, scope)
            if state.admin:
                with gr.Tab("管理", id="admin"):
                    _admin_tab(state)
        _api(state)
    return demo


def doc_choices(docs: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, id) of the document selector: 全部文件 ("") first, then each document."""
    return [("全部文件", ""), *((f"《{d.meta.get('title') or d.title}》", d.id) for d in docs.values())]


def _scope_slot(state: AppState) -> gr.Dropdown:
    """The document selector: which document the chat answers from and the browse tabs show
    ("" = all). Hidden while the index holds one document."""
    docs = state.index.docs
    return gr.Dropdown(
        choices=doc_choices(docs),
        value="",
        label="查阅范围",
        visible=len(docs) > 1,
        elem_id="pq-doc",
        interactive=True,
    )


def new_conversation() -> dict[str, Any]:
    """Per-session bookkeeping beside the answers: a random id (names this conversation's
    answers in the feedback log, so a changed vote replaces the earlier one), when each
    question was asked (for the export) and the votes given, by answer id."""
    return {"id": secrets.token_hex(8), "asked": [], "votes": {}}


def answer_id(conv: dict[str, Any], turn: int) -> str:
    return f"{conv['id']}-{turn}"


def _chat_tab(state: AppState, scope: gr.Dropdown) -> None:
    answers = gr.State([])
    conv_state = gr.State({})
    limit = state.settings.max_question_chars
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=300):
            chat = gr.Chatbot(
                label="对话",
                height=520,
                elem_id="pq-chat",
                latex_delimiters=[],
                feedback_options=None,
                layout="bubble",
                # per-message copy only: the share button posts to Hugging Face (does nothing
                # here) and the export below replaces "copy conversation"
                buttons=["copy"],
                autoscroll=False,  # the page script shows the latest question at the top instead
                placeholder="可以问规划的目标指标、重点工程、各章内容，也可以用口语提问。",
            )
            with gr.Row():
                msg = gr.Textbox(
                    label="问题",  # hidden, but read by screen readers (gradio's default is English)
                    show_label=False,
                    placeholder="请输入问题，回车发送",
                    scale=5,
                    lines=1,
                    max_lines=4,
                    elem_id="pq-input",
                )
                send = gr.Button("提问", variant="primary", scale=1, min_width=80, elem_id="pq-send")
            gr.HTML(
                f'<div id="pq-count" aria-live="polite" data-max="{limit}"></div>'
                '<div class="pq-ex-label">试试这些问题：</div>'
            )
            with gr.Row(elem_classes="pq-examples"):
                ex_buttons = [gr.Button(q, size="sm", variant="secondary") for q in EXAMPLES]
            with gr.Row():
                new_chat = gr.Button("新对话", size="sm", elem_id="pq-new")
                export = gr.DownloadButton(
                    "导出对话（Markdown）", value=None, size="sm", interactive=False, elem_id="pq-export"
                )
            with gr.Accordion("这条回答有帮助吗？", open=False, elem_id="pq-feedback"):
                comment = gr.Textbox(
                    label="补充意见（可选，请勿填写个人信息）", lines=2, max_lines=5, max_length=1000
                )
                with gr.Row():
                    up = gr.Button("👍 有帮助", size="sm", elem_id="pq-up")
                    down = gr.Button("👎 没帮助", size="sm", elem_id="pq-down")
                fb_status = gr.Markdown("", elem_id="pq-feedback-status")
        with gr.Column(scale=2, min_width=300):
            sources = gr.HTML(render.render_sources([], {}), elem_id="pq-sources")

    outputs = [msg, chat, answers, sources, export, fb_status, conv_state]

    def respond(
        question: str, past: list[Answer], shown: list[dict], conv: dict | None = None, doc: str | None = None
    ) -> Iterator[tuple]:
        question = question or ""
        if not question.strip():
            yield (gr.skip(),) * 7
            return
        conv = dict(conv) if conv else new_conversation()
        index = state.index  # one build for the whole request, even if an admin swaps it meanwhile
        turn = len(past) + 1
        # an unusable question (too long ...) stays in the box so that it can be edited
        keep = question if check_input(question, state.settings.max_question_chars) else ""
        shown = [*shown, {"role": "user", "content": render.render_question(question)}]
        live = {"role": "assistant", "content": render.render_partial("", llm=False)}
        yield (keep, [*shown, live], past, gr.skip(), gr.skip(), "", gr.skip())
        history = history_of(past)
        if state.llm is not None and question.strip():
            answer = None
            for partial, done in _stream_llm(state, index, question, history, doc or None):
                if done is not None:
                    answer = done
                    break
                live = {"role": "assistant", "content": render.render_partial(partial, llm=True)}
                yield (gr.skip(), [*shown, live], *(gr.skip(),) * 5)
        else:
            answer = safe_ask(state, question, history, index=index, doc=doc or None)
            # extractive answers are ready at once: show them in a few line-aligned chunks
            for chunk in render.stream_chunks(answer.answer)[:-1]:
                text = render.answer_html(chunk, turn, (c.n for c in answer.citations))
                live = {"role": "assistant", "content": text}
                yield (gr.skip(), [*shown, live], *(gr.skip(),) * 5)
                time.sleep(0.04)
        assert answer is not None
        past = [*past, answer]
        conv["asked"] = [*conv.get("asked", []), datetime.now(render.DISPLAY_TZ)]
        shown = [*shown, {"role": "assistant", "content": render.render_answer(answer, turn)}]
        html_sources = render.render_sources(past, index.units)
        path = write_export(past, state.export_dir(), conv["asked"])
        drop_export(conv.get("export"))  # only the newest export of a conversation is kept
        conv["export"] = path
        yield keep, shown, past, html_sources, gr.DownloadButton(value=path, interactive=True), "", conv

    inputs = [msg, answers, chat, conv_state, scope]
    msg.submit(respond, inputs, outputs, api_visibility=PRIVATE)
    send.click(respond, inputs, outputs, api_visibility=PRIVATE)
    for b, q in zip(ex_buttons, EXAMPLES, strict=True):
        b.click(lambda q=q: q, None, msg, api_visibility=PRIVATE, queue=False).then(
            respond, inputs, outputs, api_visibility=PRIVATE
        )

    def reset(conv: dict | None = None) -> tuple:
        """A new conversation: chat, 出处 panel, numbering, follow-up history, export, votes.
        The old conversation's export file is deleted (a shared terminal must not keep it)."""
        drop_export((conv or {}).get("export"))
        return (
            "",
            [],
            [],
            render.render_sources([], {}),
            gr.DownloadButton(value=None, interactive=False),
            "",
            new_conversation(),
        )

    new_chat.click(reset, conv_state, outputs, api_visibility=PRIVATE, queue=False)
    # the chat's own 🗑 button clears the bubbles in the browser; this clears everything else
    chat.clear(reset, conv_state, outputs, api_visibility=PRIVATE, queue=False)

    def vote(kind: str) -> Callable[[str, list[Answer], dict], tuple]:
        def handler(text: str, past: list[Answer], conv: dict | None) -> tuple:
            conv = dict(conv) if conv else new_conversation()
            key = answer_id(conv, len(past))
            votes = dict(conv.get("votes", {}))
            status, saved, given = record_vote(
                state.settings, past, kind, text, answer_id=key, previous=votes.get(key)
            )
            if saved:
                votes[key] = given
                conv["votes"] = votes
            return status, ("" if saved else gr.skip()), conv

        return handler

    fb_in, fb_out = [comment, answers, conv_state], [fb_status, comment, conv_state]
    up.click(vote("up"), fb_in, fb_out, api_visibility=PRIVATE)
    down.click(vote("down"), fb_in, fb_out, api_visibility=PRIVATE)


def _stream_llm(
    state: AppState, index: Index, question: str, history: list[dict[str, Any]], doc: str | None = None
) -> Iterator[tuple[str, Answer | None]]:
    """Run ask() with the LLM in a thread; yield (text so far, None) per token batch, then
    (text, answer) once the checked answer is ready."""
    q: queue.Queue[str | None] = queue.Queue()
    result: dict[str, Answer] = {}

    def work() -> None:
        try:
            result["answer"] = safe_ask(state, question, history, on_token=q.put, index=index, doc=doc)
        finally:
            q.put(None)

    threading.Thread(target=work, name="policyqa-ask", daemon=True).start()
    text, last = "", 0.0
    while True:
        tok = q.get()
        if tok is None:
            break
        text += tok
        if time.monotonic() - last > 0.08:
            last = time.monotonic()
            yield text, None
    yield text, result["answer"]


def _browse_tab(state: AppState, scope: gr.Dropdown) -> None:
    docs = state.index.docs
    many = len(docs) > 1

    def doc_of(key: str):
        return state.index.docs.get(key.split("|", 1)[0])

    def in_scope(doc: str | None) -> list:
        """The documents the selector shows ("" or None: all)."""
        return [d for d in state.index.docs.values() if not doc or d.id == doc]

    def chapters_of(doc: str | None) -> list[tuple[str, str]]:
        return [e for d in in_scope(doc) for e in render.outline_entries(d, prefix_doc=many and not doc)]

    chapters = chapters_of(None)

    def parts_for(key: str) -> list[tuple[str, str]]:
        d = doc_of(key or "")
        if d is None:
            return []
        if key.endswith("|front"):
            return [("通知与前言", key)]
        return render.chapter_parts(d, int(key.split("|c", 1)[1]))

    def show(key: str | None) -> str:
        d = doc_of(key or "")
        if d is None or not key:
            return '<div class="pq-muted">请选择章节。</div>'
        return render.render_units(render.units_for(d, key), d)

    def pick_chapter(key: str | None) -> tuple:
        parts = parts_for(key or "")
        first = parts[0][1] if parts else None
        return gr.Radio(choices=parts, value=first), show(first)

    with gr.Tabs():
        with gr.Tab("目录与原文"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=1, min_width=260):
                    first_ch = chapters[1][1] if len(chapters) > 1 else (chapters[0][1] if chapters else None)
                    # a list, not a dropdown: long chapter names wrap instead of being cut
                    ch = gr.Radio(choices=chapters, value=first_ch, label="章", elem_id="pq-chapter")
                    init_parts = parts_for(first_ch or "")
                    init_part = init_parts[0][1] if init_parts else None
                    part = gr.Radio(choices=init_parts, value=init_part, label="节 / 专栏", elem_id="pq-part")
                with gr.Column(scale=3, min_width=260):
                    text = gr.HTML(show(init_part), elem_id="pq-text")
            ch.change(pick_chapter, ch, [part, text], api_visibility=PRIVATE)
            part.change(show, part, text, api_visibility=PRIVATE)

            def pick_doc(doc: str | None) -> Any:
                entries = chapters_of(doc)
                return gr.Radio(choices=entries, value=entries[0][1] if entries else None)

            scope.change(pick_doc, scope, ch, api_visibility=PRIVATE)

        with gr.Tab("主要指标"):  # short: the tab row must fit a 390 px phone
            inds = [i for d in docs.values() for i in d.indicators]
            rows = render.indicator_rows(inds)
            cats = ["全部", *dict.fromkeys(r[0] for r in rows if r[0])]
            with gr.Row():
                cat = gr.Dropdown(choices=cats, value="全部", label="类别", scale=1, min_width=120)
                filt = gr.Textbox(
                    label="筛选", placeholder="输入关键词，如 水质、约束性、62.6", scale=3, min_width=160
                )
            # our own table, not gr.Dataframe: it fits a phone (rows become cards) and says so
            # when a filter matches nothing
            table = gr.HTML(render.render_indicator_table(rows), elem_id="pq-indicators")
            gr.HTML(render.render_indicator_notes(inds))

            def do_filter(c: str, t: str, doc: str | None = None) -> str:
                cur = render.indicator_rows([i for d in in_scope(doc) for i in d.indicators])
                return render.render_indicator_table(render.filter_indicator_rows(cur, c, t))

            for source in (cat, filt, scope):
                source.change(do_filter, [cat, filt, scope], table, api_visibility=PRIVATE)

        with gr.Tab("检索原文"):
            with gr.Row():
                sq = gr.Textbox(
                    label="检索", placeholder="如：农村生活污水、尾矿库、海洋垃圾", scale=4, min_width=200
                )
                sk = gr.Slider(1, MAX_K, value=5, step=1, label="条数", scale=1, min_width=160)
                sb = gr.Button("检索", variant="primary", scale=1, min_width=80)
            hits = gr.HTML(render.render_hits("", []), elem_id="pq-hits")

            def do_search(q: str | None, k: float | None, doc: str | None = None) -> str:
                q = q or ""
                if not q.strip():
                    return render.render_hits("", [])
                try:
                    found = checked_search(state.index, state.settings, q, k, MAX_K, doc=doc or None)
                    return render.render_hits(q, found)
                except PolicyQAError as e:
                    return f'<div class="pq-muted">{render.esc(e)}</div>'

            sq.submit(do_search, [sq, sk, scope], hits, api_visibility=PRIVATE)
            sb.click(do_search, [sq, sk, scope], hits, api_visibility=PRIVATE)


def _admin_tab(state: AppState) -> None:
    gr.Markdown("管理操作都需要口令（环境变量 POLICYQA_ADMIN_PASSWORD 中设置的口令）。")
    pw = gr.Textbox(label="管理口令", type="password", max_lines=1)
    with gr.Row():
        b_manifest = gr.Button("查看索引清单")
        b_feedback = gr.Button("查看反馈记录")
        force = gr.Checkbox(label="强制重建（忽略未变化检查）", value=False)
        b_rebuild = gr.Button("重新构建索引（读取 kb/）", variant="stop")
    status = gr.Markdown("")
    manifest = gr.JSON(label="索引清单 manifest.json", visible=False)
    fb = gr.Dataframe(
        headers=["时间", "评价", "问题", "意见", "模式"], interactive=False, wrap=True, visible=False
    )
    guard = state.admin_guard

    def show_manifest(p: str) -> tuple:
        if denied := guard.check(p, state.settings):
            return denied, gr.JSON(visible=False)
        m = state.index.manifest
        return render.manifest_summary(m), gr.JSON(value=m, visible=True)

    def show_feedback(p: str) -> tuple:
        if denied := guard.check(p, state.settings):
            return denied, gr.Dataframe(visible=False)
        recs = read_feedback(state.settings.feedback_path, limit=500)
        ups = sum(r.get("vote") == "up" for r in recs)
        rows = [
            [
                _local(r.get("time", "")),
                "👍" if r.get("vote") == "up" else "👎",
                r.get("question", ""),
                r.get("comment", ""),
                r.get("mode", ""),
            ]
            for r in recs
        ]
        head = f"最近 {len(recs)} 条反馈：有帮助 {ups}，没帮助 {len(recs) - ups}（{state.settings.feedback_path}）"
        return head, gr.Dataframe(value=rows or [["", "", "", "", ""]], visible=True)

    def rebuild(p: str, forced: bool) -> Iterator[str]:
        """Build a new index in a worker thread and show its progress. The worker holds
        ``rebuild_lock`` for its whole life and swaps ``state.index`` itself, so a page that
        disconnects (this generator closed) neither frees the lock early nor skips the swap."""
        if denied := guard.check(p, state.settings):
            yield denied
            return
        if not state.rebuild_lock.acquire(blocking=False):
            yield "已有重建任务在进行，请稍候。"
            return
        q: queue.Queue[str | None] = queue.Queue()
        out: dict[str, Any] = {}

        def work() -> None:
            try:
                embedder = state.index.embedder
                build_index(state.settings, force=forced, progress=q.put, embedder=embedder)
                new = open_index(state.settings, embedder=embedder)
                warm(new)
                state.index = new  # requests in flight keep the index they started with
                out["index"] = new
                log.info("index swapped to build %s", new.build_id)
            except Exception as e:  # shown to the admin; the old index keeps serving
                log.error("re-ingest failed: %s: %s", type(e).__name__, e)
                out["error"] = e
            finally:
                state.rebuild_lock.release()
                q.put(None)

        try:
            threading.Thread(target=work, name="policyqa-ingest", daemon=True).start()
        except BaseException:
            state.rebuild_lock.release()
            raise
        lines: list[str] = []
        while (line := q.get()) is not None:
            if line.lstrip().startswith("向量") and lines and lines[-1].lstrip().startswith("向量"):
                lines[-1] = line
            else:
                lines.append(line)
            yield "```\n" + "\n".join(lines[-20:]) + "\n```"
        if "error" in out:
            e = out["error"]
            msg = str(e) if isinstance(e, PolicyQAError) else f"{type(e).__name__}: {e}"
            yield f"重建失败，仍使用原索引：{msg}"
            return
        yield "已切换到新索引。\n\n" + render.manifest_summary(out["index"].manifest)

    b_manifest.click(show_manifest, pw, [status, manifest], api_visibility=PRIVATE)
    b_feedback.click(show_feedback, pw, [status, fb], api_visibility=PRIVATE)
    b_rebuild.click(rebuild, [pw, force], status, api_visibility=PRIVATE, concurrency_limit=1)


def _local(iso: str) -> str:
    """A log time (ISO, UTC) as people read it; the text unchanged if it is not ISO."""
    try:
        return render.local_time(datetime.fromisoformat(iso))
    except (TypeError, ValueError):
        return str(iso or "")


def _api(state: AppState) -> None:
    """The public API: /ask, /search, /outline (JSON in, JSON out)."""

    def api_ask(question: str, history_json: str = "") -> dict:
        """Answer a question from the plan. history_json: "" or a JSON list of {"role", "content"}.
        Returns the answer contract (answer with [n] markers, citations, mode, ...)."""
        try:
            history = parse_history_json(history_json)
        except PolicyQAError as e:
            raise gr.Error(str(e)) from None
        answer = safe_ask(state, question or "", history)
        if answer.mode == "error":
            raise gr.Error(answer.answer)
        return answer.to_dict()

    def api_search(question: str, k: int = DEFAULT_K) -> dict:
        """The top-k units of the plan for a question: {"question", "hits": [{id, score, label, location, text}]}.
        k: 1–50 (5 when missing). Unusable input raises an error with a Chinese message."""
        text = question if isinstance(question, str) else ("" if question is None else str(question))
        try:
            hits = checked_search(state.index, state.settings, text, k)
        except PolicyQAError as e:
            raise gr.Error(str(e)) from None
        return {"question": question, "hits": [h.to_dict() for h in hits]}

    def api_outline() -> dict:
        """The plan's structure: {"documents": [{title, meta, chapters, columns, indicators, ...}]}."""
        return {"documents": [d.outline() for d in state.index.docs.values()]}

    gr.api(api_ask, api_name="ask")
    gr.api(api_search, api_name="search")
    gr.api(api_outline, api_name="outline")
