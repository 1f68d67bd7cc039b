"""Plain JSON routes beside gradio's API: ``POST /v1/ask``, ``POST /v1/check``, ``GET /v1/search``,
``GET /v1/outline``, ``GET /v1/health``.

Why a second API: gradio's goes through its event queue and a server-sent-event stream (two
HTTP requests per question and ~20–40 ms of overhead per answer, measured); a portal's backend,
a load balancer or the evaluation suite wants one POST and one JSON reply. The answer is the
same contract as ``policyqa ask --json`` (``Answer.to_dict()``).

Status codes: 200 an answer (a refusal or an unusable question is an answer too:
``answerable: false`` and its ``mode``); 400 a malformed request: not JSON, no ``question``
string, a malformed ``history``, a bad ``k``, an unknown document filter (``{"error": "<Chinese message>"}``); 413 a body over ``MAX_BODY`` bytes; 503 the index or a
backend is unavailable, or the server is busy (with ``Retry-After``); 500 anything else, logged
with its traceback but never sent.

Admission (``Admission``): at most ``concurrency`` requests computed at once and at most
``queue_max`` waiting; one more gets 503 at once, so a flood is queued and bounded instead of
piling up threads. Concurrent questions still share engine calls (``embed.QueryBatcher``).

``POST /v1/check`` takes one answer or a list of answers in the contract (from any system) and
returns ``{"results": [{"question", "ok", "problems"}…], "summary": {…}}`` — the same verdicts as
``policyqa check --json`` (``policyqa.check``), against the live index's documents.

A document filter — ``"doc"`` in the /v1/ask body, ``?doc=`` on /v1/search — limits the answer or
the hits to that document (its id, the file name's stem); an id the index does not hold is a 400
that lists the known ids, never an empty success.

``GET /v1/health`` names the build being served (``index``). With a Chroma server it also
reports the replica's follower (``replica``: its name, last successful poll, switches, last
error, and ``stale``: why a newer published build is not served) and answers 503 ``{"status": "unavailable", "error": "<Chinese message>"}`` while the
server cannot be reached, so a load balancer can take the replica out of rotation; it returns
to 200 by itself once a poll succeeds again.

Not here: the admin functions (re-ingest, logs; only in the admin page, behind its password),
per-client rate limits and authentication (a reverse proxy's job).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from policyqa.answer import ask
from policyqa.errors import PolicyQAError, UnknownDocumentError, check_document

if TYPE_CHECKING:
    from policyqa.webapp import AppState

log = logging.getLogger("policyqa.api")

MAX_BODY = 64 * 1024  # a question is at most a few thousand characters; history stays small
# a batch of answers to check, each with its quotes: larger, but still bounded
MAX_CHECK_BODY = 2 * 1024 * 1024
MAX_CHECK_ANSWERS = 500


class Busy(Exception):
    """More requests waiting than the queue holds."""


class Admission:
    """A bounded waiting room in front of a fixed number of workers (one event loop's state:
    no lock needed). ``waiting`` counts requests not yet admitted."""

    def __init__(self, concurrency: int, queue_max: int) -> None:
        self.concurrency = concurrency
        self.queue_max = queue_max
        self.waiting = 0
        self.running = 0
        self.turned_away = 0
        self._sem = asyncio.Semaphore(concurrency)

    async def run(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` in a worker thread once a slot is free; Busy when the queue is full."""
        if self.waiting >= self.queue_max:
            self.turned_away += 1
            raise Busy
        self.waiting += 1
        try:
            await self._sem.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            return await to_thread.run_sync(fn)
        finally:
            self.running -= 1
            self._sem.release()


@dataclass
class Reply:
    """What a handler returns before it becomes a response: a status and a JSON body."""

    status: int
    body: dict[str, Any]


def error(status: int, message: str) -> Reply:
    return Reply(status, {"error": message})


def parse_ask_body(raw: bytes) -> tuple[str, list[dict[str, Any]], str | None] | Reply:
    """The question, history and document filter (None: all documents) of a /v1/ask body, or
    the 400 to send. Pure: whether the document exists is checked against the index later."""
    from policyqa.webapp import checked_history

    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return error(400, '请求体应为 UTF-8 编码的 JSON，形如 {"question": "…", "history": []}。')
    if not isinstance(data, dict):
        return error(400, '请求体应为 JSON 对象，形如 {"question": "…", "history": []}。')
    question = data.get("question")
    if not isinstance(question, str):
        return error(400, "缺少字段 question（字符串）。")
    try:
        history = checked_history(data.get("history") or [], "history")
    except PolicyQAError as e:
        return error(400, str(e))
    doc = data.get("doc")
    if doc is not None and not isinstance(doc, str):
        return error(400, "字段 doc 应为文档编号（字符串），省略则在全部文档中作答。")
    return question, history, doc or None


def document_error(state: AppState, doc: str | None) -> Reply | None:
    """The 400 for a document filter the live index does not hold, else None."""
    try:
        check_document(doc, state.index.docs)
    except UnknownDocumentError as e:
        return error(400, str(e))
    return None


def answer_reply(
    state: AppState, question: str, history: list[dict[str, Any]], doc: str | None = None
) -> Reply:
    """ask() on the live index as a Reply; never raises."""
    try:
        answer = ask(state.index, question, history, llm=state.llm, doc=doc)
    except PolicyQAError as e:  # index gone or damaged, Chroma server down: say what to run
        log.warning("ask failed: %s", e)
        return error(503, str(e))
    except Exception:
        log.exception("ask failed")
        return error(500, "抱歉，服务暂时出错，未能作答，请稍后再试。")
    return Reply(200, answer.to_dict())


def parse_check_body(raw: bytes) -> list[dict[str, Any]] | Reply:
    """The answers of a /v1/check body (one answer object or a list), or the 400 to send. Pure."""
    from policyqa.check import validate_answer

    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return error(400, "请求体应为 UTF-8 编码的 JSON：一个回答（回答契约），或回答的列表。")
    answers = data if isinstance(data, list) else [data]
    if not answers:
        return error(400, "回答列表为空。")
    if len(answers) > MAX_CHECK_ANSWERS:
        return error(400, f"一次最多核对 {MAX_CHECK_ANSWERS} 条回答（收到 {len(answers)} 条）。")
    for i, a in enumerate(answers, 1):
        problem = validate_answer(a)
        if problem:
            where = f"第 {i} 条回答：" if isinstance(data, list) else ""
            return error(400, f"{where}{problem}。")
    return answers


def check_reply(library: Any, answers: list[dict[str, Any]]) -> Reply:
    """Check answers against ``library`` (``policyqa.check.Library``) as a Reply."""
    from policyqa.check import check_answers, summarize

    try:
        results = check_answers(answers, library)
    except Exception:
        log.exception("check failed")
        return error(500, "抱歉，核对时出错，请稍后再试。")
    return Reply(200, {"results": [r.to_dict() for r in results], "summary": summarize(results)})


def search_reply(state: AppState, question: str, k: Any, doc: str | None = None) -> Reply:
    from policyqa.answer import check_input
    from policyqa.retrieve import search
    from policyqa.webapp import checked_search, parse_k

    problem = check_input(question, state.settings.max_question_chars)
    if problem:
        return error(400, problem)
    unknown = document_error(state, doc)
    if unknown:
        return unknown
    try:
        if doc:  # checked_search (shared with the web page) has no document filter
            hits = search(state.index, question, k=parse_k(k), doc=doc)
        else:
            hits = checked_search(state.index, state.settings, question, k)
    except PolicyQAError as e:
        return error(503, str(e))
    except Exception:
        log.exception("search failed")
        return error(500, "检索暂时出错，请稍后再试。")
    return Reply(200, {"question": question, "hits": [h.to_dict() for h in hits]})


def respond(reply: Reply) -> JSONResponse:
    headers = {"Retry-After": "1"} if reply.status == 503 else None
    return JSONResponse(reply.body, status_code=reply.status, headers=headers)


def health_reply(state: AppState, admission: Admission, follower: Any = None) -> Reply:
    """The health body; 503 when the follower's last poll of the Chroma server failed."""
    index = state.index
    body: dict[str, Any] = {
        "status": "ok",
        "index": index.build_id,
        "embedder": index.manifest["embedder"]["name"],
        "llm": state.llm is not None,
        "concurrency": admission.concurrency,
        "queue_max": admission.queue_max,
        "running": admission.running,
        "waiting": admission.waiting,
        "turned_away": admission.turned_away,
        "query_cache": {"hits": index.query_vectors.hits, "misses": index.query_vectors.misses},
    }
    if follower is None:
        return Reply(200, body)
    body["replica"] = follower.status()
    if follower.error:
        body.update(status="unavailable", error=follower.error)
        return Reply(503, body)
    return Reply(200, body)


def routes(state: AppState, admission: Admission, follower: Any = None) -> list[Route]:
    """The /v1 routes for ``state`` (for ``FastAPI(routes=...)`` via gradio's ``app_kwargs``).

    ``follower`` (``policyqa.store.follow.Follower``, with a Chroma server) feeds the health route."""

    async def admitted(fn: Callable[[], Reply]) -> JSONResponse:
        try:
            return respond(await admission.run(fn))
        except Busy:
            return respond(error(503, "服务繁忙，请稍后再试。"))

    async def ask_route(request: Request) -> JSONResponse:
        size = request.headers.get("content-length")
        if size and size.isdigit() and int(size) > MAX_BODY:
            return respond(error(413, f"请求体过大（上限 {MAX_BODY // 1024} KB）。"))
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return respond(error(413, f"请求体过大（上限 {MAX_BODY // 1024} KB）。"))
        parsed = parse_ask_body(raw)
        if isinstance(parsed, Reply):
            return respond(parsed)
        question, history, doc = parsed
        unknown = document_error(state, doc)
        if unknown:
            return respond(unknown)
        return await admitted(lambda: answer_reply(state, question, history, doc))

    # The checker's view of the library, rebuilt when the admin page swaps in a new index.
    libraries: dict[str, Any] = {}

    def library() -> Any:
        from policyqa.check import library_from_index

        index = state.index
        lib = libraries.get(index.build_id)
        if lib is None:  # two threads may both build it: harmless, and no lock on the hot path
            lib = library_from_index(index)
            libraries.clear()
            libraries[index.build_id] = lib
        return lib

    async def check_route(request: Request) -> JSONResponse:
        size = request.headers.get("content-length")
        too_big = error(413, f"请求体过大（上限 {MAX_CHECK_BODY // 1024 // 1024} MB）。")
        if size and size.isdigit() and int(size) > MAX_CHECK_BODY:
            return respond(too_big)
        raw = await request.body()
        if len(raw) > MAX_CHECK_BODY:
            return respond(too_big)
        parsed = parse_check_body(raw)
        if isinstance(parsed, Reply):
            return respond(parsed)
        return await admitted(lambda: check_reply(library(), parsed))

    async def search_route(request: Request) -> JSONResponse:
        question = request.query_params.get("q", "")
        k = request.query_params.get("k", "")
        doc = request.query_params.get("doc") or None
        return await admitted(lambda: search_reply(state, question, k, doc))

    async def outline_route(request: Request) -> JSONResponse:
        return respond(Reply(200, {"documents": [d.outline() for d in state.index.docs.values()]}))

    async def health_route(request: Request) -> JSONResponse:
        return respond(health_reply(state, admission, follower))

    return [
        Route("/v1/ask", ask_route, methods=["POST"]),
        Route("/v1/check", check_route, methods=["POST"]),
        Route("/v1/search", search_route, methods=["GET"]),
        Route("/v1/outline", outline_route, methods=["GET"]),
        Route("/v1/health", health_route, methods=["GET"]),
    ]
