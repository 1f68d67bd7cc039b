"""Indexes for tests, built once per test session and shared between modules.

``hash`` builds in seconds (structure and contract tests); ``e5-small`` is the real default
embedder (quality tests, the eval gate) and takes about a minute to build cold.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from policyqa.index import Index, build_index, open_index
from policyqa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
_BUILT: dict[str, Index] = {}


def settings_for(home: Path, embedder: str, kb: Path | None = None) -> Settings:
    return Settings(home=home, kb_dir=kb or ROOT / "kb", embedder=embedder)


def shared_index(embedder: str) -> Index:
    if embedder not in _BUILT:
        home = Path(tempfile.mkdtemp(prefix=f"pq-test-{embedder}-"))
        atexit.register(shutil.rmtree, home, True)
        s = settings_for(home, embedder)
        build_index(s)
        _BUILT[embedder] = open_index(s)
    return _BUILT[embedder]
