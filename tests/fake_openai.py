"""A scripted OpenAI-compatible chat server for tests (stdlib only).

Serves ``POST /v1/chat/completions`` on 127.0.0.1 (a free port), answering from a queue of
``Reply`` objects: a JSON completion, or ``stream: true`` Server-Sent Events (``data: {...}``
chunks ending with ``data: [DONE]``), after an optional delay, or an HTTP error. The real
``ChatOpenAI`` client code runs against it. Not handled: tools, logprobs, n > 1, auth.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted reply. ``delay`` seconds pass before anything is sent; ``status`` != 200
    sends an OpenAI-style error body instead; ``chunk_chars`` sets the SSE chunk size."""

    text: str = ""
    status: int = 200
    delay: float = 0.0
    chunk_chars: int = 3


class FakeOpenAI:
    """``with FakeOpenAI() as srv: srv.push(Reply("…")); ChatOpenAI(base_url=srv.base_url)``.

    ``requests`` records each request body (parsed JSON), in order. An empty queue answers 500.
    """

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def push(self, *replies: Reply | str) -> None:
        for r in replies:
            self.replies.append(Reply(r) if isinstance(r, str) else r)

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes handlers sleeping in a delay
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._json(
                        404, {"error": {"message": f"no route {self.path}", "type": "not_found"}}
                    )
                fake.requests.append(body)
                reply = (
                    fake.replies.popleft() if fake.replies else Reply(status=500, text="no scripted reply")
                )
                if reply.delay and fake._stop.wait(reply.delay):
                    return
                try:
                    if reply.status != 200:
                        self._json(reply.status, {"error": {"message": reply.text, "type": "server_error"}})
                    elif body.get("stream"):
                        self._sse(body, reply)
                    else:
                        self._json(200, _completion(body, reply.text))
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            def _json(self, status: int, obj: dict[str, Any]) -> None:
                data = json.dumps(obj, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _sse(self, body: dict[str, Any], reply: Reply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                step = max(1, reply.chunk_chars)
                pieces = [reply.text[i : i + step] for i in range(0, len(reply.text), step)]
                deltas = [{"role": "assistant", "content": ""}] + [{"content": p} for p in pieces]
                for delta in deltas:
                    self._event(_chunk(body, delta, None))
                self._event(_chunk(body, {}, "stop"))
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

            def _event(self, obj: dict[str, Any]) -> None:
                self.wfile.write(b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n")
                self.wfile.flush()

        return Handler


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": max(1, len(text)), "total_tokens": 1 + len(text)},
    }


def _chunk(body: dict[str, Any], delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
