"""Shared fixtures for the app tests: an index built with the hash embedder, and the app server.

The index is built once per session with ``POLICYQA_EMBEDDER=hash`` (deterministic, no model,
≈ 10 s); the server is ``python app.py`` started as a subprocess on a free port and stopped by
its PID.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment for `policyqa` / `app.py` on a hash-embedder home (no POLICYQA_* leaks in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYQA_")}
    env.update(
        POLICYQA_HOME=str(home),
        POLICYQA_EMBEDDER="hash",
        POLICYQA_KB=str(ROOT / "kb"),
        HF_HUB_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def stop(proc: subprocess.Popen) -> None:
    """Terminate by PID, then kill if it does not exit."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def hash_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("pqhome")
    r = subprocess.run(
        [sys.executable, "-m", "policyqa.cli", "ingest"],
        cwd=ROOT,
        env=app_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return home


@pytest.fixture(scope="session")
def app_server(hash_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A running public app: {"url", "home", "feedback", "pid"}."""
    port = free_port()
    feedback = tmp_path_factory.mktemp("feedback") / "feedback.jsonl"
    log = tmp_path_factory.mktemp("applog") / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port)],
            cwd=ROOT,
            env=app_env(hash_home, POLICYQA_FEEDBACK_LOG=str(feedback)),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"app not ready after 90 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield {"url": url, "home": hash_home, "feedback": feedback, "pid": proc.pid, "log": log}
    finally:
        stop(proc)
