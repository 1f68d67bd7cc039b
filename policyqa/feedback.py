"""Feedback on answers: one JSON line per 👍/👎, appended to ``Settings.feedback_path``.

A record holds the question, the answer text, its citations, the vote, an optional comment and
the time: nothing about the person (no IP address, no user agent, no session id). Lines are
written whole, in append mode, under a process lock and an ``flock`` so that several app
threads or processes sharing one log never interleave.

One vote per answer: the page gives each answer a random ``answer_id`` (per browser session
and turn, nothing about the person); a changed vote replaces that answer's line
(``replace_feedback``) instead of adding one, and ``read_feedback`` keeps only the newest line
of an ``answer_id`` should two ever be present.

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
    answer: Answer,
    vote: str,
    comment: str = "",
    now: datetime | None = None,
    answer_id: str | None = None,
) -> dict[str, Any]:
    """The JSON object stored for one vote. ``vote`` is "up" or "down"; ``answer_id`` names
    the answer voted on (the page's random id), so a changed vote can replace it."""
    if vote not in VOTES:
        raise ValueError(f"vote must be one of {VOTES}, not {vote!r}")
    return {
        **({"answer_id": answer_id} if answer_id else {}),
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


def replace_feedback(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` in place of the lines with the same ``answer_id`` (appended when there
    is none). The log is rewritten under the same locks as ``append_feedback``; this runs only
    when someone changes a vote, so rewriting the file is cheap enough. Raises OSError."""
    key = record.get("answer_id")
    if not key:
        append_feedback(path, record)
        return
    path = Path(path)
    with _LOCK:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.seek(0)
                kept = [line for line in f.read().splitlines(keepends=True) if _answer_id(line) != key]
                kept.append(json.dumps(record, ensure_ascii=False) + "\n")
                f.seek(0)
                f.truncate()
                f.write("".join(kept))
                f.flush()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def _answer_id(line: str) -> str | None:
    if '"answer_id"' not in line:  # most lines: skip the JSON parse
        return None
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec.get("answer_id") if isinstance(rec, dict) else None


def read_feedback(path: Path, limit: int = 200) -> list[dict[str, Any]]:
    """The last ``limit`` records, newest first, one per ``answer_id`` (the newest); unreadable
    lines are skipped. [] if no log."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    seen: set[str] = set()
    for line in reversed(lines):
        if len(out) >= limit:
            break
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not isinstance(rec, dict):
            continue
        key = rec.get("answer_id")
        if key:
            if key in seen:
                continue
            seen.add(key)
        out.append(rec)
    return out
