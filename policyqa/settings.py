"""The one place that reads the environment.

``Settings.from_env()`` is called by entry points (CLI, app, eval); library code takes a
``Settings`` argument and never reads ``os.environ`` itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from policyqa.errors import PolicyQAError


def _number(env: Mapping[str, str], name: str, default: Any, kind: Any, *, zero: bool = False) -> Any:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise PolicyQAError(f"环境变量 {name}={raw!r} 不是有效的数字。") from None
    if value < 0 or (value == 0 and not zero):
        raise PolicyQAError(f"环境变量 {name} 必须大于{'等于' if zero else ''} 0（现在是 {raw}）。")
    return value


# The checkout's kb/ (beside this package): found even when the app is started elsewhere.
PROJECT_KB = Path(__file__).resolve().parents[1] / "kb"


def default_kb_dir(cwd: Path | None = None) -> Path:
    """``./kb`` when the working directory has one (the README runs from the project), else
    the checkout's ``kb/``. Without this, a process started in another directory would read
    no dictionary, synonyms or glossary and answer worse without saying so."""
    here = Path(cwd or Path.cwd()) / "kb"
    return Path("kb") if here.is_dir() or not PROJECT_KB.is_dir() else PROJECT_KB


@dataclass(frozen=True)
class Settings:
    home: Path = Path(".policyqa")  # index, embedding cache, feedback log
    kb_dir: Path = Path("kb")
    embedder: str = "e5-small"
    chroma_url: str | None = None  # http://host:port of a `chroma run` server
    llm_base_url: str | None = None  # OpenAI-compatible server; None = extractive only
    llm_model: str = "qwen2.5-7b-instruct"
    llm_api_key: str | None = None
    llm_timeout: float = 20.0
    feedback_log: Path | None = None  # default: <home>/feedback.jsonl
    admin_password: str | None = None
    max_question_chars: int = 500
    concurrency: int = 8  # answers computed at once, per API (gradio's queue, /v1)
    queue_max: int = 64  # requests waiting beyond those; one more is turned away ("busy")
    query_cache: int = 1024  # recent questions whose vectors are kept (0: none)
    # With a Chroma server: how often a replica looks for a newer published build (and reports
    # the build it serves), how many published builds a prune keeps, and for how long a
    # replica's report protects its build from pruning.
    poll_seconds: float = 10.0
    keep_builds: int = 3
    in_use_seconds: float = 300.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        d = cls()
        home = Path(e.get("POLICYQA_HOME") or d.home)
        fb = e.get("POLICYQA_FEEDBACK_LOG")
        return cls(
            home=home,
            kb_dir=Path(e.get("POLICYQA_KB") or default_kb_dir()),
            embedder=e.get("POLICYQA_EMBEDDER") or d.embedder,
            chroma_url=e.get("POLICYQA_CHROMA_URL") or None,
            llm_base_url=e.get("POLICYQA_LLM_BASE_URL") or None,
            llm_model=e.get("POLICYQA_LLM_MODEL") or d.llm_model,
            llm_api_key=e.get("POLICYQA_LLM_API_KEY") or None,
            llm_timeout=_number(e, "POLICYQA_LLM_TIMEOUT", d.llm_timeout, float),
            feedback_log=Path(fb) if fb else None,
            admin_password=e.get("POLICYQA_ADMIN_PASSWORD") or None,
            max_question_chars=_number(e, "POLICYQA_MAX_QUESTION_CHARS", d.max_question_chars, int),
            concurrency=_number(e, "POLICYQA_CONCURRENCY", d.concurrency, int),
            queue_max=_number(e, "POLICYQA_QUEUE_MAX", d.queue_max, int),
            query_cache=_number(e, "POLICYQA_QUERY_CACHE", d.query_cache, int, zero=True),
            poll_seconds=_number(e, "POLICYQA_POLL_SECONDS", d.poll_seconds, float),
            keep_builds=_number(e, "POLICYQA_KEEP_BUILDS", d.keep_builds, int),
            in_use_seconds=_number(e, "POLICYQA_IN_USE_SECONDS", d.in_use_seconds, float),
        )

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def index_dir(self) -> Path:
        """The live index: a symlink switched atomically by ingest."""
        return self.home / "index"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def feedback_path(self) -> Path:
        return self.feedback_log or (self.home / "feedback.jsonl")

    def __repr__(self) -> str:  # never print secrets
        hidden = {"llm_api_key", "admin_password"}
        parts = []
        for k in self.__dataclass_fields__:
            v = getattr(self, k)
            parts.append(f"{k}={'***' if k in hidden and v else v!r}")
        return f"Settings({', '.join(parts)})"
