"""Feedback on answers: one JSON line per 👍/👎, appended to ``Settings.feedback_path``.

A record holds the question, the answer text, its citations, the vote, an optional comment and
the time: nothing about the person (no IP address, no user agent, no session id). Lines are
written whole, in append mode, under a process lock and an ``flock`` so that several app
threads or processes sharing one log never interleave.

Left out: rotation and retention of the log (use logrotate with ``copytruncate``).
"""

from __future__ import annotations

import fcntl
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from policyqa.models import Answer

VOTES = ("up", "down")
MAX_COMMENT_CHARS = 1000
_LOCK = threading.Lock()


def feedback_record(
    answer: Answer, vote: str, comment: str = "", now: datetime | None = None
) -> dict[str, Any]:
    """The JSON object stored for one vote. ``vote`` is "up" or "down"."""
    if vote not in VOTES:
        raise ValueError(f"vote must be one of {VOTES}, not {vote!r}")
    return {
        "time": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "vote": vote,
        "comment": (comment or "").strip()[:MAX_COMMENT_CHARS],
        "question": answer.question,
        "answer": answer.answer,
        "citations": [c.to_dict() for c in answer.citations],
        "mode": answer.mode,
        "answerable": answer.answerable,
    }


def append_feedback(path: Path, record: dict[str, Any]) -> None:
    """Append one record as a JSON line. Raises OSError when the log cannot be written."""
    line = json.dumps(record, ensure_ascii=False) + "\n"
    path = Path(path)
    with _LOCK:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.write(line)
                f.flush()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def read_feedback(path: Path, limit: int = 200) -> list[dict[str, Any]]:
    """The last ``limit`` records, newest first; unreadable lines are skipped. [] if no log."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in reversed(lines):
        if len(out) >= limit:
            break
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out
