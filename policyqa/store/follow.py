"""A replica follows the Chroma server: opens at start with retries, then switches to newer builds.

``open_with_retry`` is for start-up: a server that is down (or has no build yet) is reported in
Chinese and retried with exponential backoff instead of exiting, so an orchestrator does not see
a crash loop. A wrong setting (another embedder, another dictionary) is not retried.

``Follower`` runs in a daemon thread: every ``settings.poll_seconds`` it writes this replica's
heartbeat (the build it serves, so prune keeps that build) and, when the server's ``current``
differs from the build being served, opens the new one and swaps ``state.index``. Requests read
``state.index`` once when they start, so those in flight finish on the old build. ``error`` holds
the last failure (server lost) for ``/v1/health``; it clears when a poll succeeds again. A new
build this replica cannot serve (another embedder or dictionary) is not an outage: the replica
keeps answering from the build it has and says why in ``stale``.

Left out: following the server in the CLI (each command opens the current build once), and
switching back to an older build when ``current`` moves backwards — it is followed like any
other change.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from policyqa.errors import BackendError, IndexMismatchError, IndexMissingError, PolicyQAError
from policyqa.settings import Settings

log = logging.getLogger("policyqa.replica")

BACKOFF_MAX_S = 30.0


def open_with_retry(
    settings: Settings,
    opener: Callable[[], Any],
    *,
    say: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    attempts: int | None = None,
) -> Any:
    """``opener()`` until it succeeds; BackendError / IndexMissingError are retried after 1, 2,
    4 … ``BACKOFF_MAX_S`` seconds (``attempts`` bounds the tries, for tests; None: forever)."""
    delay, n = 1.0, 0
    while True:
        n += 1
        try:
            return opener()
        except (BackendError, IndexMissingError) as e:
            if attempts is not None and n >= attempts:
                raise
            say(f"暂时无法打开索引：{e} {delay:g} 秒后重试（第 {n} 次；Ctrl+C 退出）。")
            sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)


def replica_name(port: int | None = None) -> str:
    # unique per process even when two replicas on one host share a port number across restarts
    return f"{socket.gethostname()}-{port or 0}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Follower:
    """Keeps ``state.index`` on the server's current build. ``on_switch(new_index)`` runs on the
    new index before it is swapped in (warm-up)."""

    def __init__(
        self,
        settings: Settings,
        state: Any,
        *,
        name: str | None = None,
        on_switch: Callable[[Any], None] | None = None,
    ) -> None:
        self.settings = settings
        self.state = state
        self.name = name or replica_name()
        self.on_switch = on_switch
        self.error: str | None = None
        self.stale: str | None = None  # why the current published build is not being served
        self.checked_at: float | None = None
        self.switches = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> bool:
        """One round: heartbeat, then switch if the server's current build is another. True
        when it switched."""
        from policyqa.index import open_index
        from policyqa.store.publish import current_build, heartbeat

        served = self.state.index
        try:
            heartbeat(self.settings, self.name, served.build_id)
            target = current_build(self.settings)
            switched = False
            if target and target != served.build_id:
                log.info("switching from build %s to %s", served.build_id, target)
                new = open_index(self.settings, embedder=served.embedder, build_id=target)
                new.query_vectors = served.query_vectors  # same embedder: the cached vectors hold
                if self.on_switch is not None:
                    self.on_switch(new)
                self.state.index = new  # requests that already read the old one keep it
                heartbeat(self.settings, self.name, new.build_id)
                self.switches += 1
                switched = True
            self.error = self.stale = None
            self.checked_at = time.time()
            return switched
        except IndexMismatchError as e:  # restarting with the new settings is the fix, not waiting
            if self.stale != str(e):
                log.warning("cannot switch to the published build: %s", e)
            self.error, self.stale, self.checked_at = None, str(e), time.time()
        except PolicyQAError as e:
            if self.error != str(e):
                log.warning("following the Chroma server failed: %s", e)
            self.error = str(e)
        except Exception as e:  # never let the thread die: the next poll tries again
            log.exception("following the Chroma server failed")
            self.error = f"跟随 Chroma 服务上的新版本时出错（{type(e).__name__}），稍后自动重试。"
        return False

    def start(self) -> Follower:
        self._thread = threading.Thread(target=self._run, name="policyqa-follower", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.poll_seconds):
            self.poll_once()

    def status(self) -> dict[str, Any]:
        return {
            "replica": self.name,
            "poll_seconds": self.settings.poll_seconds,
            "checked_at": self.checked_at,
            "switches": self.switches,
            "error": self.error,
            "stale": self.stale,
        }
