"""Builds published to a Chroma server, so app replicas with empty homes can open them.

A build on the server is three things, all in Chroma (the one shared store):

- its vectors: one collection for all its documents, ``pq-<build>-units`` (written by
  ``build_index``; each record's metadata carries ``doc_id``);
- its files: collection ``pqf-<build>`` holds every file ``build_index`` wrote under
  ``builds/<build>/`` (manifest, ``units.jsonl`` with the units' locations, ``docs.json`` with
  the outline and metadata, ``sources/<doc>.txt``, the BM25 arrays) as records whose metadata
  carry the file zlib-compressed and base64-encoded, in parts of at most ``PART`` characters;
- its entry in the registry collection ``policyqa-builds``: a record ``build:<id>`` (counts,
  embedder, manifest), written only after everything above is complete.

The registry also holds the pointer ``current`` (the build replicas open) and one record
``replica:<id>`` per running replica (the build it serves and when it last said so).
Publishing writes everything first and flips ``current`` last, so of two concurrent publishes
the one that flips later wins and the other stays whole and listed.

Why metadata and not documents: Chroma full-text-indexes documents; 8 MB as documents took
24–27 s to write, as metadata 0.8–1.2 s (read 0.2–0.3 s either way; chroma 1.5.9, loopback).
Why compressed: ``units.jsonl`` shrinks 5.5× (286 KB → 52 KB for the plan), and base64 is ASCII,
which JSON carries without ``\\uXXXX`` escapes.

A replica's copy under ``builds/<build>/`` is a cache: the same files, checked against the
manifest's sizes and the records' SHA-256, so ``open_index`` opens it as it opens a local build.
BM25 is stored, not rebuilt from the units at open: see ``eval/bench.py`` (replicas) for the
measured open times.

Left out: a compare-and-swap on ``current`` (Chroma has none; the last flip wins), access
control (whoever reaches the server can publish), and copying builds between servers.
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policyqa.errors import BackendError, IndexMissingError, PolicyQAError
from policyqa.settings import Settings

REGISTRY = "policyqa-builds"
PART = 512 * 1024  # characters of base64 per record: requests stay at a few MB
BATCH = 4  # records per add/get request
ORPHAN_AGE_S = 3600.0  # collections of an unregistered build older than this are a dead publish
_BUILD_TIME = re.compile(r"^pqf?-(\d{8}T\d{6})-")
_DUMMY = [0.0]  # Chroma wants an embedding per record; these records are never queried

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def vector_collections(manifest: dict[str, Any]) -> list[str]:
    """The vector collections of a build: one (schema 2), or one per document (older builds)."""
    chroma = manifest.get("chroma", {})
    return (
        [chroma["collection"]] if chroma.get("collection") else list(chroma.get("collections", {}).values())
    )


def files_collection(build_id: str) -> str:
    # "pqf-" cannot clash with the build's vectors ("pq-<build>-units")
    return f"pqf-{build_id}"


def server(settings: Settings) -> Any:
    from policyqa.index import chroma_client

    return chroma_client(settings, None)


def _unreachable(settings: Settings, e: Exception) -> BackendError:
    from policyqa.index import forget_client

    forget_client(settings, None)  # the next call probes again (and reconnects)
    return BackendError(
        f"无法连接 Chroma 服务 {settings.chroma_url}（{type(e).__name__}）：请确认 `chroma run` 正在运行。"
    )


def _registry(client: Any, *, create: bool) -> Any | None:
    """The registry collection; ``None`` when it does not exist and ``create`` is false (a
    replica never creates collections)."""
    if create:
        return client.get_or_create_collection(REGISTRY, embedding_function=None)
    try:
        return client.get_collection(REGISTRY, embedding_function=None)
    except Exception as e:  # chromadb raises NotFoundError (1.x) or ValueError (older)
        if "does not exist" in str(e) or type(e).__name__ in ("NotFoundError", "InvalidCollectionException"):
            return None
        raise


def publisher_name(settings: Settings) -> str:
    return f"{socket.gethostname()}:{Path(settings.home).resolve()}"


# ----------------------------------------------------------------------------- publish


def _file_records(build_dir: Path, build_id: str) -> list[tuple[str, dict[str, Any]]]:
    records = []
    for p in sorted(build_dir.rglob("*")):
        rel = p.relative_to(build_dir).as_posix()
        if not p.is_file() or rel.startswith("chroma/") or rel.startswith("."):
            continue
        raw = p.read_bytes()
        data = base64.b64encode(zlib.compress(raw, 6)).decode("ascii")
        parts = [data[i : i + PART] for i in range(0, len(data), PART)] or [""]
        sha = hashlib.sha256(raw).hexdigest()
        for n, chunk in enumerate(parts):
            records.append(
                (
                    f"{rel}#{n}",
                    {
                        "path": rel,
                        "part": n,
                        "parts": len(parts),
                        "size": len(raw),
                        "sha256": sha,
                        "data": chunk,
                    },
                )
            )
    return records


def publish(
    settings: Settings, build_dir: Path, manifest: dict[str, Any], progress: Progress = _quiet
) -> None:
    """Upload a complete local build's files, register it, then make it ``current``.

    The build's vector collections must already be on the server (``build_index`` writes them
    there). Raises BackendError when the server goes away; the caller deletes what was written.
    """
    build_id = manifest["build_id"]
    t0 = time.perf_counter()
    try:
        client = server(settings)
        name = files_collection(build_id)
        with contextlib.suppress(Exception):  # only a failed earlier attempt of this very build
            client.delete_collection(name)
        col = client.create_collection(name, embedding_function=None)
        records = _file_records(build_dir, build_id)
        for i in range(0, len(records), BATCH):
            batch = records[i : i + BATCH]
            col.add(
                ids=[r[0] for r in batch], embeddings=[_DUMMY] * len(batch), metadatas=[r[1] for r in batch]
            )
        if col.count() != len(records):  # never register a build the server did not take whole
            raise BackendError(
                f"发布不完整：Chroma 服务只收到 {col.count()}/{len(records)} 条文件记录，请重试。"
            )
        registry = _registry(client, create=True)
        now = time.time()
        by = publisher_name(settings)
        registry.upsert(
            ids=[f"build:{build_id}"],
            embeddings=[_DUMMY],
            metadatas=[
                {
                    "kind": "build",
                    "build_id": build_id,
                    "built_at": manifest.get("built_at", ""),
                    "published_at": now,
                    "by": by,
                    "documents": len(manifest.get("documents", [])),
                    "units": manifest.get("counts", {}).get("units", 0),
                    "embedder": manifest.get("embedder", {}).get("name", ""),
                    "records": len(records),
                    "manifest": json.dumps(manifest, ensure_ascii=False),
                }
            ],
        )
        set_current(settings, build_id)  # the last step: replicas see it only now
    except PolicyQAError:
        raise
    except Exception as e:
        raise _unreachable(settings, e) from e
    progress(
        f"已发布到 Chroma 服务 {settings.chroma_url}：构建 {build_id}（{len(records)} 条文件记录，"
        f"{time.perf_counter() - t0:.1f} 秒），副本将在 {settings.poll_seconds:g} 秒内切换。"
    )


def set_current(settings: Settings, build_id: str) -> None:
    registry = _registry(server(settings), create=True)
    registry.upsert(
        ids=["current"],
        embeddings=[_DUMMY],
        metadatas=[
            {"kind": "current", "build_id": build_id, "at": time.time(), "by": publisher_name(settings)}
        ],
    )


def discard(settings: Settings, build_id: str, collections: list[str]) -> None:
    """Remove what a failed publish wrote (best effort: the server may be the reason it failed)."""
    with contextlib.suppress(Exception):
        client = server(settings)
        registry = _registry(client, create=False)
        if registry is not None:  # registered but the pointer flip failed: not a build to list
            registry.delete(ids=[f"build:{build_id}"])
        for name in [*collections, files_collection(build_id)]:
            with contextlib.suppress(Exception):
                client.delete_collection(name)


# ----------------------------------------------------------------------------- read


def current_build(settings: Settings) -> str | None:
    """The build replicas should serve, or None when nothing was published yet."""
    try:
        registry = _registry(server(settings), create=False)
        if registry is None:
            return None
        got = registry.get(ids=["current"], include=["metadatas"])
    except PolicyQAError:
        raise
    except Exception as e:
        raise _unreachable(settings, e) from e
    return got["metadatas"][0]["build_id"] if got["ids"] else None


def publish_state(settings: Settings, build_id: str) -> str:
    """``current``, ``published`` (registered, not current) or ``missing`` (never published, or
    pruned, or the server lost it) — for ``policyqa ingest`` with unchanged inputs."""
    try:
        client = server(settings)
        registry = _registry(client, create=False)
        if registry is None or not registry.get(ids=[f"build:{build_id}"], include=[])["ids"]:
            return "missing"
        names = {c if isinstance(c, str) else c.name for c in client.list_collections()}
    except PolicyQAError:
        raise
    except Exception as e:
        raise _unreachable(settings, e) from e
    if files_collection(build_id) not in names:
        return "missing"
    return "current" if current_build(settings) == build_id else "published"


@dataclass(frozen=True)
class PublishedBuild:
    build_id: str
    built_at: str
    published_at: float
    by: str
    documents: int
    units: int
    embedder: str
    current: bool
    replicas: tuple[str, ...]  # replicas that reported serving it within ``in_use_seconds``
    manifest: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "manifest"}
        d["replicas"] = list(self.replicas)
        d["published_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.published_at))
        return d


def _registry_records(settings: Settings) -> tuple[list[dict], str | None, list[dict]]:
    """(build records, current build id, replica records), oldest build first."""
    try:
        registry = _registry(server(settings), create=False)
        if registry is None:
            return [], None, []
        got = registry.get(include=["metadatas"])
    except PolicyQAError:
        raise
    except Exception as e:
        raise _unreachable(settings, e) from e
    metas = got["metadatas"]
    builds = sorted((m for m in metas if m.get("kind") == "build"), key=lambda m: m["published_at"])
    current = next((m["build_id"] for m in metas if m.get("kind") == "current"), None)
    replicas = [m for m in metas if m.get("kind") == "replica"]
    return builds, current, replicas


def list_builds(settings: Settings) -> list[PublishedBuild]:
    """Published builds, oldest first, with the current one and the replicas serving each."""
    builds, current, replicas = _registry_records(settings)
    fresh = time.time() - settings.in_use_seconds
    out = []
    for m in builds:
        users = tuple(
            sorted(r["replica"] for r in replicas if r["build_id"] == m["build_id"] and r["at"] >= fresh)
        )
        out.append(
            PublishedBuild(
                build_id=m["build_id"],
                built_at=m.get("built_at", ""),
                published_at=m["published_at"],
                by=m.get("by", ""),
                documents=m.get("documents", 0),
                units=m.get("units", 0),
                embedder=m.get("embedder", ""),
                current=m["build_id"] == current,
                replicas=users,
                manifest=json.loads(m.get("manifest") or "{}"),
            )
        )
    return out


# ----------------------------------------------------------------------------- fetch


def local_copy(settings: Settings, build_id: str | None = None) -> Path:
    """``builds/<id>`` in this home for the published build ``build_id`` (default: current),
    downloaded first when it is not there whole. Never embeds, never creates a collection."""
    from policyqa.index import _intact, read_manifest

    bid = build_id or current_build(settings)
    if bid is None:
        raise IndexMissingError(
            f"Chroma 服务 {settings.chroma_url} 上还没有发布的索引：请在构建主机上设置同一个 "
            "POLICYQA_CHROMA_URL 后运行 `policyqa ingest`。"
        )
    builds = Path(settings.home) / "builds"
    path = builds / bid
    m = read_manifest(path)
    if m is not None and _intact(path, m):
        return path
    fetch(settings, bid, path)
    return path


def fetch(settings: Settings, build_id: str, dest: Path) -> None:
    """Download ``pqf-<build>`` into ``dest`` (a temporary folder renamed into place when every
    file's SHA-256 matches, so a half-fetched build is never opened)."""
    builds = dest.parent
    builds.mkdir(parents=True, exist_ok=True)
    _clean_dead_fetches(builds)
    tmp = builds / f".fetch-{os.getpid()}-{build_id}"
    shutil.rmtree(tmp, ignore_errors=True)
    parts: dict[str, dict[int, dict[str, Any]]] = {}
    try:
        try:
            col = server(settings).get_collection(files_collection(build_id), embedding_function=None)
            total = col.count()
            offset = 0
            while offset < total:
                got = col.get(include=["metadatas"], limit=BATCH * 4, offset=offset)
                if not got["ids"]:
                    break
                for md in got["metadatas"]:
                    parts.setdefault(md["path"], {})[md["part"]] = md
                offset += len(got["ids"])
        except PolicyQAError:
            raise
        except Exception as e:
            if "does not exist" in str(e) or type(e).__name__ == "NotFoundError":
                raise IndexMissingError(
                    f"Chroma 服务上找不到构建 {build_id} 的文件（可能已被清理）：请在构建主机运行 `policyqa ingest`。"
                ) from e
            raise _unreachable(settings, e) from e
        for rel, got_parts in parts.items():
            first = got_parts[0] if 0 in got_parts else next(iter(got_parts.values()))
            if sorted(got_parts) != list(range(first["parts"])):
                raise IndexMissingError(f"Chroma 服务上构建 {build_id} 的文件 {rel} 不完整：请重新发布。")
            raw = zlib.decompress(
                base64.b64decode("".join(got_parts[n]["data"] for n in range(first["parts"])))
            )
            if hashlib.sha256(raw).hexdigest() != first["sha256"]:
                raise IndexMissingError(f"Chroma 服务上构建 {build_id} 的文件 {rel} 校验失败：请重新发布。")
            out = tmp / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(raw)
        if not (tmp / "manifest.json").exists():
            raise IndexMissingError(f"Chroma 服务上构建 {build_id} 没有清单：请重新发布。")
        try:
            os.rename(tmp, dest)
        except OSError:  # another process of this home fetched it meanwhile: keep theirs
            if not (dest / "manifest.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _clean_dead_fetches(builds: Path) -> None:
    for d in builds.glob(".fetch-*"):
        try:
            os.kill(int(d.name.split("-")[1]), 0)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            shutil.rmtree(d, ignore_errors=True)


# ----------------------------------------------------------------------------- replicas


def heartbeat(settings: Settings, replica: str, build_id: str) -> None:
    """Record that ``replica`` serves ``build_id`` now (keeps the build from being pruned).

    Written into the registry only when it exists: a replica creates no collection."""
    try:
        registry = _registry(server(settings), create=False)
        if registry is None:
            return
        registry.upsert(
            ids=[f"replica:{replica}"],
            embeddings=[_DUMMY],
            metadatas=[
                {
                    "kind": "replica",
                    "replica": replica,
                    "build_id": build_id,
                    "at": time.time(),
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                }
            ],
        )
    except PolicyQAError:
        raise
    except Exception as e:
        raise _unreachable(settings, e) from e


# ----------------------------------------------------------------------------- prune


def prune(settings: Settings, keep: int | None = None, progress: Progress = _quiet) -> list[str]:
    """Delete published builds beyond the newest ``keep`` (default ``settings.keep_builds``).

    Never deletes the current build or one a replica reported serving within
    ``settings.in_use_seconds``. Also removes what dead publishes left (collections of a build
    that was never registered, older than ``ORPHAN_AGE_S``) and replica records older than a
    day. Returns the ids of the builds deleted.
    """
    keep = settings.keep_builds if keep is None else keep
    builds, current, replicas = _registry_records(settings)
    now = time.time()
    in_use = {r["build_id"] for r in replicas if r["at"] >= now - settings.in_use_seconds}
    newest = {m["build_id"] for m in builds[-keep:]} if keep > 0 else set()
    removed = []
    try:
        client = server(settings)
        registry = _registry(client, create=False)
        names = [c if isinstance(c, str) else c.name for c in client.list_collections()]
        for m in builds:
            bid = m["build_id"]
            if bid in newest or bid == current or bid in in_use:
                continue
            # unregister first: a listing never shows a build whose collections are going
            registry.delete(ids=[f"build:{bid}"])
            manifest = json.loads(m.get("manifest") or "{}")
            doomed = [*vector_collections(manifest), files_collection(bid)]
            for name in doomed:
                with contextlib.suppress(Exception):
                    client.delete_collection(name)
            removed.append(bid)
            progress(f"已清理构建 {bid}（{len(doomed)} 个集合）")
        registered = [m["build_id"] for m in builds]
        for name in names:
            t = _BUILD_TIME.match(name)
            if not t or any(name.startswith((f"pq-{b}-", f"pqf-{b}")) for b in registered):
                continue
            if any(name.startswith((f"pq-{b}-", f"pqf-{b}")) for b in in_use):
                continue
            age = now - calendar.timegm(time.strptime(t.group(1), "%Y%m%dT%H%M%S"))  # ids are UTC
            if age > ORPHAN_AGE_S:
                with contextlib.suppress(Exception):
                    client.delete_collection(name)
                progress(f"已清理未完成发布留下的集合 {name}")
        stale = [f"replica:{r['replica']}" for r in replicas if r["at"] < now - 86400]
        if stale and registry is not None:
            registry.delete(ids=stale)
    except PolicyQAError:
        raise
    except Exception as e:
        raise _unreachable(settings, e) from e
    return removed
