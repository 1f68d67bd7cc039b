"""Build and open the search index: units, BM25 over jieba tokens, vectors in Chroma.

Layout under ``Settings.home``::

    index -> builds/<build id>     symlink, switched atomically when a build is complete
    builds/<build id>/manifest.json  schema, source hashes, embedder, tokenizer, build time
    builds/<build id>/units.jsonl    every unit, one JSON object a line (readable)
    builds/<build id>/docs.json      per document: title, meta, chapters, columns, indicators
    builds/<build id>/bm25/          one bm25s index of every document's retrievable units, rows
                                     in docs.json order (a document's units are one row range)
    builds/<build id>/sentences.jsonl  per BM25 row: its unit's sentences' tokens (read by warm-up)
    builds/<build id>/sentences.npy    the same sentences' unit vectors (float16; a build without
                                       it answers on paragraph similarity alone)
    builds/<build id>/sources/<doc>.txt  the text each document's units point into (for PDF, DOCX
                                     and HTML the extracted, repaired text): quotes are checked here
    builds/<build id>/chroma/        chromadb PersistentClient (absent with a Chroma server): one
                                     collection ``pq-<build>-units`` for all documents, ``doc_id``
                                     in each unit's metadata (a document filter is a ``where``)
    cache/                           passage embeddings keyed by text hash
    cache/extract/<file sha256>.txt  text extracted from PDF/DOCX/HTML files, keyed by file hash
    cache/docs/<key>.json            parsed documents keyed by file + meta hash (and parser, cues)
    cache/tokens/<key>.json          a document's BM25 and sentence tokens keyed by its texts and
                                     the dictionary
    ingest.lock                      one ingest at a time

Adding or removing one document parses, tokenises and embeds only that document; the others
come from the caches (the build's BM25 and collection are still written whole: both are
linear in the number of units and take seconds at 100 documents).

A failed or interrupted build leaves the previous ``index`` serving. With
``Settings.chroma_url`` the vectors go to a Chroma server (``chroma run``) in a collection named
after the build, and the finished build is published there (``policyqa.store.publish``): its
files, a registry entry, then the ``current`` pointer. ``open_index`` then opens the server's
current build, whichever home published it; ``builds/`` in this home is only a cache of it.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from policyqa.errors import BackendError, IndexMismatchError, IndexMissingError, PolicyQAError
from policyqa.models import (
    KIND_INDICATOR,
    KIND_ITEM,
    RETRIEVABLE,
    Chapter,
    Column,
    ColumnItem,
    Document,
    Indicator,
    Section,
    Unit,
)
from policyqa.settings import Settings
from policyqa.tokenize import Tokenizer, tokenizer_for

SCHEMA_VERSION = 2  # 2: one Chroma collection and one BM25 index per build
SENTENCE_VECTORS = "sentences.npy"  # float16, one row per sentence of sentences.jsonl (optional)
PARSER_VERSION = "3"  # bump when the parser's output changes
KEEP_BUILDS = 2
CHROMA_PROBE_TIMEOUT_S = 5.0

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# ----------------------------------------------------------------------------- documents ↔ JSON


def document_to_dict(doc: Document) -> dict[str, Any]:
    """A document's structure without its units (those go to units.jsonl)."""
    return {
        "id": doc.id,
        "title": doc.title,
        "meta": doc.meta,
        "source": doc.source,
        "sha256": doc.sha256,
        "warnings": list(doc.warnings),
        "chapters": [
            {
                "no": c.no,
                "title": c.title,
                "id": c.id,
                "intro_ids": list(c.intro_ids),
                "sections": [
                    {"no": s.no, "title": s.title, "id": s.id, "unit_ids": list(s.unit_ids)}
                    for s in c.sections
                ],
            }
            for c in doc.chapters
        ],
        "columns": [
            {
                "no": c.no,
                "title": c.title,
                "id": c.id,
                "chapter_no": c.chapter_no,
                "section_no": c.section_no,
                "items": [{"id": i.id, "title": i.title, "text": i.text} for i in c.items],
            }
            for c in doc.columns
        ],
        "indicators": [i.to_dict() for i in doc.indicators],
    }


def document_from_dict(d: dict[str, Any], units: tuple[Unit, ...]) -> Document:
    return Document(
        id=d["id"],
        title=d["title"],
        meta=d.get("meta", {}),
        source=d.get("source", ""),
        sha256=d.get("sha256", ""),
        units=units,
        chapters=tuple(
            Chapter(
                no=c["no"],
                title=c["title"],
                id=c["id"],
                intro_ids=tuple(c.get("intro_ids", [])),
                sections=tuple(
                    Section(s["no"], s["title"], s["id"], tuple(s["unit_ids"])) for s in c["sections"]
                ),
            )
            for c in d["chapters"]
        ),
        columns=tuple(
            Column(
                no=c["no"],
                title=c["title"],
                id=c["id"],
                chapter_no=c["chapter_no"],
                section_no=c["section_no"],
                items=tuple(ColumnItem(i["id"], i["title"], i["text"]) for i in c["items"]),
            )
            for c in d["columns"]
        ),
        indicators=tuple(Indicator.from_dict(i) for i in d["indicators"]),
        warnings=tuple(d.get("warnings", [])),
    )


def index_text(unit: Unit) -> str:
    """What is embedded and BM25-indexed for a unit: its label's last part, then its text.

    The label carries the section or 专栏 title, which the unit's own text often lacks
    (「专栏2 … › 锅炉和炉窑整治」), and questions often name it.
    """
    ctx = unit.label.split(" › ")[-1]
    if unit.indicator is not None:
        i = unit.indicator
        ctx = f"{i.category or ''} 指标 {i.display_name}"
    return f"{ctx}\n{unit.text}"


# ----------------------------------------------------------------------------- chroma


_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()


def chroma_client(settings: Settings, build_dir: Path | None) -> Any:
    """One chromadb client per path (or server URL) per process, as chromadb requires."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    key = settings.chroma_url or str(Path(build_dir or "").resolve() / "chroma")
    with _CLIENTS_LOCK:
        if key in _CLIENTS:
            return _CLIENTS[key]
        cs = ChromaSettings(anonymized_telemetry=False)
        if settings.chroma_url:
            u = urlparse(settings.chroma_url)
            if not u.hostname:
                raise BackendError(
                    f"POLICYQA_CHROMA_URL 无效：{settings.chroma_url}（应形如 http://127.0.0.1:8000）"
                )
            try:
                # chromadb's HTTP client has no timeout: a server that accepts and never answers
                # (or a route that drops packets) would hang it, so probe with one first.
                probe = f"{u.scheme}://{u.hostname}:{u.port or 8000}/api/v2/heartbeat"
                with urllib.request.urlopen(probe, timeout=CHROMA_PROBE_TIMEOUT_S):
                    pass
                client = chromadb.HttpClient(
                    host=u.hostname, port=u.port or 8000, ssl=u.scheme == "https", settings=cs
                )
                _bound_http_timeout(client)
                client.heartbeat()
            except Exception as e:  # connection refused, timeout, bad response
                raise BackendError(
                    f"无法连接 Chroma 服务 {settings.chroma_url}：{type(e).__name__}。请确认 `chroma run` 正在运行。"
                ) from e
        else:
            client = chromadb.PersistentClient(path=key, settings=cs)
        _CLIENTS[key] = client
        return client


CHROMA_REQUEST_TIMEOUT_S = 120.0


def _bound_http_timeout(client: Any) -> None:
    """Give chromadb's HTTP session a timeout (it is built with none): a replica whose server
    stops answering mid-request (a dropped route, a hung host) gets an error and a 503 instead
    of a worker held forever. Private attributes of chromadb 1.5; skipped if they change."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(CHROMA_REQUEST_TIMEOUT_S, connect=CHROMA_PROBE_TIMEOUT_S)


# build ids this process has used (see build_index)
_BUILD_IDS_USED: set[str] = set()


def forget_client(settings: Settings, build_dir: Path | None) -> None:
    key = settings.chroma_url or str(Path(build_dir or "").resolve() / "chroma")
    with _CLIENTS_LOCK:
        _CLIENTS.pop(key, None)


def collection_name(build_id: str) -> str:
    """The build's one vector collection (all documents; ``doc_id`` in the metadata)."""
    return f"pq-{build_id}-units"[:500]


_UNUSED_SETTINGS: list[Any] = []


def vector_store(client: Any, name: str, embedder: Any) -> Any:
    from chromadb.config import Settings as ChromaSettings
    from langchain_chroma import Chroma

    if not _UNUSED_SETTINGS:
        _UNUSED_SETTINGS.append(ChromaSettings(anonymized_telemetry=False))
    return Chroma(
        collection_name=name,
        embedding_function=embedder,
        client=client,
        # unused when a client is given, but built anew (≈ 15 ms of pydantic) unless passed:
        # 1.5 s of a 100-document open
        client_settings=_UNUSED_SETTINGS[0],
        collection_metadata={"hnsw:space": "cosine"},
        # opening never creates a collection: a missing one (pruned, server wiped) is an error,
        # not an empty index that silently answers from BM25 alone
        create_collection_if_not_exists=False,
    )


# ----------------------------------------------------------------------------- locking


@contextlib.contextmanager
def ingest_lock(home: Path, wait_s: float = 600.0) -> Iterator[None]:
    """One ingest at a time per home: a second one waits up to ``wait_s``, then refuses."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "ingest.lock", "a+") as f:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PolicyQAError("另一个 ingest 正在进行，请稍后再试。") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ----------------------------------------------------------------------------- build


@dataclass(frozen=True)
class BuildResult:
    build_id: str
    path: Path
    skipped: bool  # inputs unchanged: nothing was done
    units: int
    embedded: int  # passages actually embedded (cache misses)
    seconds: float
    manifest: dict[str, Any] = field(default_factory=dict)
    unreadable: tuple[tuple[str, str], ...] = ()  # (file, why) for files left out of the build


def inputs_hash(kb_dir: Path, embedder_name: str, settings: Settings) -> str:
    """Everything a build depends on, from the input files' bytes (no parsing, no model).

    Plan files and their metadata, the tokenizer's dictionary and stopwords, the embedder's
    name, the schema and parser versions and where the vectors go.
    """
    from ingest.cues import cues
    from ingest.load import plan_files
    from policyqa.tokenize import tokenizer_fingerprint

    kb_dir = Path(kb_dir)
    h = hashlib.sha256()
    for part in (
        f"schema={SCHEMA_VERSION}",
        f"parser={PARSER_VERSION}",
        f"embedder={embedder_name}",
        f"tokenizer={tokenizer_fingerprint(kb_dir / 'dict.txt', kb_dir / 'stopwords.txt')}",
        f"chroma={settings.chroma_url or 'local'}",
        f"cues={cues().fingerprint}",
    ):
        h.update(part.encode() + b"\0")
    for f in plan_files(kb_dir):
        meta = f.with_name(f.stem + ".meta.json")
        h.update(f.name.encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
        if meta.exists():
            h.update(hashlib.sha256(meta.read_bytes()).digest())
    return h.hexdigest()


def read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def live_build(settings: Settings) -> Path | None:
    link = settings.index_dir
    if not link.exists():
        return None
    return link.resolve()


def _file_sizes(build: Path) -> dict[str, int]:
    """Sizes of the files ingest writes itself (units, docs, BM25, sources), for ``_intact``.

    Chroma's files are left out: chromadb may rewrite them when a build is opened.
    """
    files = [
        build / "units.jsonl",
        build / "docs.json",
        *sorted((build / "bm25").rglob("*")),
        *sorted((build / "sources").glob("*.txt")),
        build / "sentences.jsonl",
        build / SENTENCE_VECTORS,
    ]
    return {str(p.relative_to(build)): p.stat().st_size for p in files if p.is_file()}


def _intact(build: Path, manifest: dict[str, Any]) -> bool:
    if (build / ".building").exists():
        return False
    need = [build / "units.jsonl", build / "docs.json"]
    need.append(build / "bm25" / "params.index.json")
    if manifest.get("chroma", {}).get("mode") == "local":
        need.append(build / "chroma" / "chroma.sqlite3")
    if not all(p.exists() and p.stat().st_size > 0 for p in need):
        return False
    # a file truncated (or rewritten) since the build, even at a line boundary, is caught here
    return all(_size(build / rel) == size for rel, size in manifest.get("files", {}).items())


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def build_index(
    settings: Settings,
    *,
    force: bool = False,
    progress: Progress = _quiet,
    embedder: Any = None,
    lock_wait_s: float = 600.0,
) -> BuildResult:
    """Parse kb/, embed, index; switch ``home/index`` to the new build when it is complete.

    Unchanged inputs (source hashes, embedder, tokenizer) do no work unless ``force``.
    ``embedder`` overrides the one named in settings (tests pass a fake).
    """
    from ingest.load import load_library
    from policyqa.embed import CachedEmbeddings, embedder_from_name, embedder_identity

    t0 = time.perf_counter()
    home = Path(settings.home)
    with ingest_lock(home, lock_wait_s):
        name = getattr(embedder, "name", None) or settings.embedder
        ihash = inputs_hash(settings.kb_dir, name, settings)
        live = live_build(settings)
        if live is not None and not force:
            m = read_manifest(live)
            same = bool(m) and m.get("inputs_hash") == ihash and _intact(live, m)
            published = _published_state(settings, m) if same else "missing"
            if same and published != "missing":
                _prune(settings, keep=live)  # a killed ingest's half-built folder goes even so
                progress("输入未变化，索引已是最新。")
                if published == "published":  # another home published since: ours is current again
                    from policyqa.store.publish import set_current

                    set_current(settings, m["build_id"])
                    progress(f"已把构建 {m['build_id']} 重新设为 Chroma 服务上的当前版本。")
                unreadable = tuple((u["file"], u["error"]) for u in m.get("unreadable", []))
                for f, why in unreadable:
                    progress(f"未收录 {f}：{why}")
                return BuildResult(
                    m["build_id"],
                    live,
                    True,
                    m["counts"]["units"],
                    0,
                    time.perf_counter() - t0,
                    m,
                    unreadable,
                )
        progress("解析 kb/ …")
        library = load_library(
            settings.kb_dir,
            progress=progress,
            texts=_extraction_cache(Path(settings.cache_dir) / "extract"),
            parsed=ParsedDocuments(Path(settings.cache_dir) / "docs"),
        )
        docs = list(library.documents)
        tok = tokenizer_for(Path(settings.kb_dir))
        base = embedder if embedder is not None else embedder_from_name(settings.embedder)
        ident = embedder_identity(base)

        build_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + ihash[:8]
        builds = home / "builds"
        final = builds / build_id
        # Same second, same inputs (--force twice, or the folder deleted under a running app and
        # rebuilt at once): make it unique. The folder alone is not enough: after a deletion
        # chromadb still holds the old collections in memory under the same path and name.
        stem, n = build_id, 0
        while final.exists() or build_id in _BUILD_IDS_USED:
            n += 1
            build_id = f"{stem}-{os.getpid()}-{n}"  # chroma names allow [A-Za-z0-9._-] only
            final = builds / build_id
        if settings.chroma_url:
            # the server is shared: two homes building the same inputs in the same second must
            # not write into each other's collections
            build_id += "-" + secrets.token_hex(3)
            final = builds / build_id
        _BUILD_IDS_USED.add(build_id)
        # Built in place (chromadb keeps its path open, so the folder cannot be renamed after);
        # it only becomes live when the symlink switches to it, after the manifest is written.
        final.mkdir(parents=True)
        (final / ".building").write_text(str(os.getpid()))
        name = collection_name(build_id)
        collections: list[str] = []  # what a failure must delete on a server
        try:
            cached = CachedEmbeddings(
                base, settings.cache_dir, progress=lambda done, total: progress(f"  向量 {done}/{total}")
            )
            all_units = [u for d in docs for u in d.units]
            (final / "units.jsonl").write_text(
                "".join(json.dumps(u.to_dict(), ensure_ascii=False) + "\n" for u in all_units),
                encoding="utf-8",
            )
            (final / "docs.json").write_text(
                json.dumps([document_to_dict(d) for d in docs], ensure_ascii=False, indent=1),
                encoding="utf-8",
            )
            (final / "sources").mkdir()
            for d in docs:
                (final / "sources" / f"{d.id}.txt").write_text(d.text, encoding="utf-8")
            embedded = 0
            per_doc: dict[str, int] = {}
            client = chroma_client(settings, final)
            collections.append(name)
            adder = _Adder(_new_collection(client, name))
            token_cache = Path(settings.cache_dir) / "tokens"
            tok_fp = tok.fingerprint
            rows: list[list[str]] = []  # BM25 rows: every document's retrievable units, in order
            sentences = (final / "sentences.jsonl").open("w", encoding="utf-8")  # a line per row
            sentence_vectors: list[np.ndarray] = []  # every row's sentences, in order
            for n, d in enumerate(docs, 1):
                units = [u for u in d.units if u.kind in RETRIEVABLE]
                texts = [index_text(u) for u in units]
                doc_rows, doc_sentences = _tokens(tok, tok_fp, units, texts, token_cache)
                rows += doc_rows
                sentences.writelines(json.dumps(x, ensure_ascii=False) + "\n" for x in doc_sentences)
                # vectors are cached by text: a document that did not change embeds nothing
                vectors = cached.embed_documents_np(texts)
                embedded += cached.last_misses
                per_doc[d.id] = cached.last_misses
                adder.add(units, vectors)
                sentence_vectors.append(_sentence_vectors(cached, units))
                progress(
                    f"[{n}/{len(docs)}] {d.id}：{len(units)} 个可检索单元，新计算向量 {cached.last_misses} 个"
                )
            adder.flush()
            sentences.close()
            filled = [m for m in sentence_vectors if len(m)]
            if filled:
                np.save(final / SENTENCE_VECTORS, np.concatenate(filled).astype(np.float16))
            _build_bm25(rows, final / "bm25")
            manifest = {
                "schema": SCHEMA_VERSION,
                "build_id": build_id,
                "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "inputs_hash": ihash,
                "parser_version": PARSER_VERSION,
                "documents": [
                    {
                        "id": d.id,
                        "title": d.title,
                        "source": d.source,
                        "sha256": d.sha256,  # of the text the units point into
                        "file_sha256": _file_sha(Path(d.source)),  # of the file as given
                        "units": len(d.units),
                        "embedded": per_doc.get(d.id, 0),
                    }
                    for d in docs
                ],
                "unreadable": [{"file": f, "error": why} for f, why in library.skipped],
                "embedder": ident,
                "tokenizer": {"name": "jieba-0.42.1 search mode", "fingerprint": tok.fingerprint},
                "chroma": {
                    "mode": "server" if settings.chroma_url else "local",
                    "url": settings.chroma_url,
                    "collection": name,
                },
                "bm25": {"rows": len(rows)},
                "counts": {
                    "units": len(all_units),
                    "retrievable": sum(1 for u in all_units if u.kind in RETRIEVABLE),
                    "embedded": embedded,
                },
                "files": _file_sizes(final),
            }
            _write_atomic(final / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1))
            if settings.chroma_url:
                from policyqa.store.publish import publish

                publish(settings, final, manifest, progress)  # flips the server's pointer last
            (final / ".building").unlink()
            _switch(home, final)
        except BaseException:
            forget_client(settings, final)
            if settings.chroma_url:
                from policyqa.store.publish import discard

                discard(settings, build_id, collections)
            shutil.rmtree(final, ignore_errors=True)
            raise
        _prune(settings, keep=final)
        if settings.chroma_url:
            _prune_published(settings, progress)
        secs = time.perf_counter() - t0
        progress(
            f"完成：{len(docs)} 份文档，{manifest['counts']['retrievable']} 个可检索单元，"
            f"新计算向量 {embedded} 个，用时 {secs:.1f} 秒。"
        )
        for f, why in library.skipped:
            progress(f"未收录 {f}：{why}")
        return BuildResult(build_id, final, False, len(all_units), embedded, secs, manifest, library.skipped)


def _published_state(settings: Settings, manifest: dict[str, Any]) -> str:
    """Locally: always ``current``. With a server: whether this home's live build is still there
    (a server wiped or a build pruned means ingest must publish again, even with inputs unchanged)."""
    if not settings.chroma_url:
        return "current"
    from policyqa.store.publish import publish_state

    return publish_state(settings, manifest["build_id"])


def _prune_published(settings: Settings, progress: Progress) -> None:
    from policyqa.store.publish import prune

    try:
        prune(settings, progress=progress)
    except PolicyQAError as e:  # the build is published; pruning can wait for the next run
        progress(f"未能清理旧构建：{e}")


def _file_sha(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _extraction_cache(folder: Path) -> Callable[[Path], str | None]:
    """Extracted text of PDF/DOCX/HTML files kept by file hash: re-ingesting a library after one
    document changed does not run the (slow) PDF extractor over the others."""
    from ingest.formats import TEXT_SUFFIXES, extract_text

    def texts(path: Path) -> str | None:
        if path.suffix.lower() in TEXT_SUFFIXES:
            return None
        sha = _file_sha(path)
        hit = folder / f"p{PARSER_VERSION}-{sha}.txt"  # a new extractor does not reuse old text
        if sha and hit.exists():
            return hit.read_text(encoding="utf-8")
        text = extract_text(path)  # DocumentError (scanned, broken) propagates to the loader
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(hit, text)
        return text

    return texts


class ParsedDocuments:
    """Parsed documents kept by what parsing reads: the file's bytes, its ``.meta.json``, the
    parser version and ingest's cues. Adding or removing one document of a library parses only
    that one (``ingest.load.load_library(parsed=…)``); a changed file or meta parses again."""

    def __init__(self, folder: Path) -> None:
        from ingest.cues import cues

        self.folder = Path(folder)
        self.salt = f"p{PARSER_VERSION}\0s{SCHEMA_VERSION}\0{cues().fingerprint}\0"

    def key(self, path: Path) -> str:
        h = hashlib.sha256(self.salt.encode() + path.name.encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
        meta = path.with_name(path.stem + ".meta.json")
        h.update(hashlib.sha256(meta.read_bytes()).digest() if meta.exists() else b"-")
        return h.hexdigest()

    def get(self, path: Path) -> tuple[Document, int] | None:
        try:
            raw = json.loads((self.folder / f"{self.key(path)}.json").read_text(encoding="utf-8"))
            units = tuple(Unit.from_dict(u) for u in raw["units"])
            doc = document_from_dict(raw["doc"], units)
            return dataclasses.replace(doc, source=str(path), text=raw["text"]), int(raw["removed"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # not cached (or a damaged entry): parse it

    def put(self, path: Path, doc: Document, removed: int) -> None:
        entry = {
            "doc": document_to_dict(doc),
            "units": [u.to_dict() for u in doc.units],
            "text": doc.text,
            "removed": removed,
        }
        with contextlib.suppress(OSError):  # a cache must never stop ingest
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_atomic(self.folder / f"{self.key(path)}.json", json.dumps(entry, ensure_ascii=False))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _tokens(
    tok: Tokenizer, fingerprint: str, units: list[Unit], texts: list[str], folder: Path
) -> tuple[list[list[str]], list[list[list[str]]]]:
    """One document's BM25 rows (tokens of ``texts``) and its units' sentence tokens (what
    ``policyqa.stats.sentence_tokens`` computes at run time, stored in the build so a server's
    warm-up reads them instead of running jieba over the library). Cached by the texts and the
    dictionary: re-ingesting a library after one document changed does not run jieba over the
    others."""
    from policyqa.text import split_sentences

    h = hashlib.sha256(f"v2\0{fingerprint}\0".encode())
    for t, u in zip(texts, units, strict=True):
        h.update(t.encode("utf-8", "surrogatepass") + b"\0" + u.text.encode("utf-8", "surrogatepass") + b"\0")
    hit = folder / f"{h.hexdigest()}.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        got = json.loads(hit.read_text(encoding="utf-8"))
        if len(got["bm25"]) == len(texts) == len(got["sentences"]):
            return got["bm25"], got["sentences"]
    rows = [tok(t) or ["∅"] for t in texts]
    sentences = [[tok(x) for x in split_sentences(u.text)] for u in units]
    with contextlib.suppress(OSError):  # a cache must never stop ingest
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(hit, json.dumps({"bm25": rows, "sentences": sentences}, ensure_ascii=False))
    return rows, sentences


def _sentence_vectors(cached: Any, units: list[Unit]) -> np.ndarray:
    """Unit-length vectors of the units' sentences (``split_sentences``, the order of
    sentences.jsonl): the evidence step weighs each sentence by its own similarity to the
    question, not only its paragraph's. Cached by text like the units' vectors."""
    from policyqa.text import split_sentences

    texts = [x for u in units for x in split_sentences(u.text)]
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    m = np.asarray(cached.embed_documents_np(texts), dtype=np.float32)
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-9)


def _build_bm25(rows: list[list[str]], out: Path) -> None:
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(rows or [["∅"]], show_progress=False)
    out.mkdir(parents=True, exist_ok=True)
    retriever.save(str(out), show_progress=False)


def _new_collection(client: Any, name: str) -> Any:
    with contextlib.suppress(Exception):
        client.delete_collection(name)
    return client.create_collection(name, metadata={"hnsw:space": "cosine"}, embedding_function=None)


class _Adder:
    """Adds units to the build's collection with their precomputed vectors (never let chromadb
    embed: it would download), in batches of ``ADD_BATCH`` across documents. No ``documents``:
    Chroma full-text-indexes them, which was most of an ingest's time (search reads ids and
    distances only; the units' text is in units.jsonl)."""

    def __init__(self, col: Any) -> None:
        self.col = col
        self.ids: list[str] = []
        self.vectors: list[Any] = []
        self.metadatas: list[dict[str, Any]] = []

    def add(self, units: list[Unit], vectors: Any) -> None:
        if not units:
            return
        self.ids += [u.id for u in units]
        self.vectors.append(np.asarray(vectors, dtype=np.float32).reshape(len(units), -1))
        self.metadatas += [unit_metadata(u) for u in units]
        if len(self.ids) >= ADD_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.ids:
            self.col.add(ids=self.ids, embeddings=np.concatenate(self.vectors), metadatas=self.metadatas)
        self.ids, self.vectors, self.metadatas = [], [], []


ADD_BATCH = 1000  # records per add request: below chromadb's limit; ≈ 8 MB of JSON to a server


def unit_metadata(u: Unit) -> dict[str, Any]:
    """Chroma metadata: scalar values only (None is not allowed, so absent keys are skipped)."""
    loc = u.location.to_dict()
    md: dict[str, Any] = {"id": u.id, "doc_id": u.doc, "kind": u.kind, "label": u.label}
    md.update({k: v for k, v in loc.items() if v is not None})
    return md


def _switch(home: Path, target: Path) -> None:
    """Point ``home/index`` at ``target`` atomically (rename of a fresh symlink)."""
    tmp_link = home / f".index-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp_link.unlink()
    tmp_link.symlink_to(Path("builds") / target.name)
    index = home / "index"
    if index.exists() and not index.is_symlink():  # never delete a folder we did not make
        tmp_link.unlink()
        raise PolicyQAError(
            f"{index} 是一个普通目录，不是 policyqa 建立的链接：请移走它后再运行 `policyqa ingest`。"
        )
    os.replace(tmp_link, index)


def _prune(settings: Settings, keep: Path) -> None:
    """Keep the newest builds (the previous one may still be open in a running app).

    With a Chroma server the folders are a cache and only they go: the server's builds are
    pruned by ``policyqa.store.publish.prune``, which knows which ones replicas still serve."""
    builds = Path(settings.home) / "builds"
    old = sorted(
        (
            p
            for p in builds.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / "manifest.json").exists()
        ),
        reverse=True,
    )
    for p in old[KEEP_BUILDS:]:
        if p == keep:
            continue
        forget_client(settings, p)  # drop this process's handle on the folder before deleting it
        shutil.rmtree(p, ignore_errors=True)
    for marker in builds.glob("*/.building"):  # left by a killed ingest
        try:
            os.kill(int(marker.read_text() or 0), 0)
        except (ValueError, ProcessLookupError, OSError):
            shutil.rmtree(marker.parent, ignore_errors=True)


# ----------------------------------------------------------------------------- open


class LRU:
    """A small thread-safe least-recently-used map (query text → vector). ``size`` 0 keeps
    nothing. ``hits`` / ``misses`` are for benchmarks and the health route."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: collections.OrderedDict[Any, Any] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Any) -> Any:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
            self.misses += 1
            return None

    def put(self, key: Any, value: Any) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


ALL = "*"  # the key of the build's one BM25 index and one vector store


@dataclass
class Index:
    """An opened build: documents, units, one BM25 index and one vector store, the embedder.

    ``bm25`` and ``stores`` hold one entry each (``ALL``): every document's retrievable units
    are rows of one BM25 index (``rows``; a document's rows are the range ``doc_rows[doc]``) and
    records of one Chroma collection (``doc_id`` in their metadata). ``retrievable`` lists each
    document's units in row order. ``by_indicator`` / ``by_column`` / ``by_chapter`` index the
    units and chapters by (doc, number), so a question naming one does not scan every document.

    Read-only after opening except ``memo`` (derived data filled lazily, bounded by the index's
    vocabulary and units); safe to share between threads (BM25 and Chroma queries are
    read-only; jieba is guarded by a lock in ``policyqa.tokenize``).
    """

    settings: Settings
    path: Path
    manifest: dict[str, Any]
    docs: dict[str, Document]
    units: dict[str, Unit]
    retrievable: dict[str, list[Unit]]  # per doc, in BM25 row order
    bm25: dict[str, Any]  # {ALL: bm25s.BM25} over every document's retrievable units
    stores: dict[str, Any]  # {ALL: langchain Chroma}, the build's one collection
    embedder: Any
    tokenizer: Tokenizer
    source_canon: dict[str, str] = field(default_factory=dict)  # per doc, for quote checks
    memo: dict[Any, Any] = field(default_factory=dict)  # derived data filled lazily (token sets, IDF)
    query_vectors: LRU = field(default_factory=lambda: LRU(0))  # recent questions' vectors
    rows: list[Unit] = field(default_factory=list)  # BM25 row → unit
    row_of: dict[str, int] = field(default_factory=dict)  # unit id → BM25 row
    row_doc: Any = None  # numpy int32 array: BM25 row → document ordinal (docs.json order)
    doc_ord: dict[str, int] = field(default_factory=dict)
    doc_rows: dict[str, tuple[int, int]] = field(default_factory=dict)  # doc → [start, end) of rows
    by_indicator: dict[tuple[str, int], list[Unit]] = field(default_factory=dict)
    by_column: dict[tuple[str, int], list[Unit]] = field(default_factory=dict)  # items and indicator rows
    by_chapter: dict[tuple[str, int], Chapter] = field(default_factory=dict)

    @property
    def build_id(self) -> str:
        return self.manifest["build_id"]


def open_index(settings: Settings, embedder: Any = None, build_id: str | None = None) -> Index:
    """Open the live build. Raises IndexMissingError / IndexMismatchError with what to run.

    With a Chroma server: the server's current build (or ``build_id``), from this home's copy,
    downloaded first if missing (``policyqa.store.publish.local_copy``); BackendError when the
    server cannot be reached. Locally: the ``index`` link; ``build_id`` is not used.
    """
    import bm25s

    from policyqa.embed import embedder_from_name
    from policyqa.text import canon

    if settings.chroma_url:
        from policyqa.store.publish import local_copy

        path = local_copy(settings, build_id)
        _prune(settings, keep=path)  # older cached copies are not needed once this one is open
    else:
        path = live_build(settings)
    if path is None or not path.exists():
        raise IndexMissingError(f"还没有可用的索引（{settings.index_dir}）：请先运行 `policyqa ingest`。")
    m = read_manifest(path)
    if m is None or not _intact(path, m):
        raise IndexMissingError(f"索引文件不完整或已损坏（{path}）：请运行 `policyqa ingest --force` 重建。")
    if m.get("schema") != SCHEMA_VERSION:
        raise IndexMismatchError(
            f"索引格式版本为 {m.get('schema')}，当前程序需要 {SCHEMA_VERSION}：请运行 `policyqa ingest --force`。"
        )
    from policyqa.tokenize import tokenizer_fingerprint

    kb = Path(settings.kb_dir)
    want = (m.get("tokenizer") or {}).get("fingerprint")
    if want and tokenizer_fingerprint(kb / "dict.txt", kb / "stopwords.txt") != want:
        # questions would be cut with another dictionary than the index (and, with no kb/ at
        # all, without synonyms or glossary): answers silently worse, so refuse instead
        raise IndexMismatchError(
            f"知识库目录 {kb.resolve()} 的词典与索引构建时不同（或目录不存在）："
            "请在项目目录运行，或把 POLICYQA_KB 设为构建时的 kb/，或运行 `policyqa ingest` 重建。"
        )
    built_with = m["embedder"]["name"]
    if embedder is None:
        if built_with != settings.embedder:
            raise IndexMismatchError(
                f"索引是用向量模型 {built_with} 构建的，当前设置为 {settings.embedder}："
                f"请运行 `policyqa ingest` 用新模型重建索引，或把 POLICYQA_EMBEDDER 设回 {built_with}。"
            )
        embedder = embedder_from_name(settings.embedder)
    elif getattr(embedder, "name", built_with) != built_with:
        raise IndexMismatchError(
            f"索引是用 {built_with} 构建的，与查询所用的 {embedder.name} 不一致：请重新 ingest。"
        )
    try:
        units_list = [
            Unit.from_dict(json.loads(line))
            for line in (path / "units.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        docs_raw = json.loads((path / "docs.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError) as e:
        raise IndexMissingError(f"索引文件损坏（{e}）：请运行 `policyqa ingest --force` 重建。") from e
    units = {u.id: u for u in units_list}
    docs: dict[str, Document] = {}
    retrievable: dict[str, list[Unit]] = {}
    source_canon: dict[str, str] = {}
    if len(units_list) != m.get("counts", {}).get("units", len(units_list)):
        raise IndexMissingError(f"索引文件不完整（{path / 'units.jsonl'}）：请运行 `policyqa ingest` 重建。")
    try:
        client = chroma_client(settings, path if not settings.chroma_url else None)
        stores = {ALL: vector_store(client, m["chroma"]["collection"], embedder)}
    except PolicyQAError:
        raise
    except Exception as e:  # a damaged chroma.sqlite3, a server that went away
        forget_client(settings, path)
        if settings.chroma_url:
            raise BackendError(
                f"无法连接 Chroma 服务 {settings.chroma_url}：{type(e).__name__}。请确认 `chroma run` 正在运行。"
            ) from e
        raise IndexMissingError(
            f"向量库 {path / 'chroma'} 无法打开（{type(e).__name__}）：请运行 `policyqa ingest --force` 重建索引。"
        ) from e
    try:
        bm25 = {ALL: bm25s.BM25.load(str(path / "bm25"), show_progress=False)}
    except Exception as e:
        raise IndexMissingError("BM25 索引损坏：请运行 `policyqa ingest --force` 重建。") from e
    by_doc: dict[str, list[Unit]] = collections.defaultdict(list)
    for u in units_list:  # one pass: a scan per document is quadratic (1.2 s at 100 documents)
        by_doc[u.doc].append(u)
    rows: list[Unit] = []
    row_doc: list[int] = []
    doc_ord: dict[str, int] = {}
    doc_rows: dict[str, tuple[int, int]] = {}
    by_indicator: dict[tuple[str, int], list[Unit]] = collections.defaultdict(list)
    by_column: dict[tuple[str, int], list[Unit]] = collections.defaultdict(list)
    by_chapter: dict[tuple[str, int], Chapter] = {}
    for n, d in enumerate(docs_raw):
        doc_id = d["id"]
        doc_units = tuple(by_doc.get(doc_id, ()))
        docs[doc_id] = document_from_dict(d, doc_units)
        mine = [u for u in doc_units if u.kind in RETRIEVABLE]
        retrievable[doc_id] = mine
        doc_ord[doc_id] = n
        doc_rows[doc_id] = (len(rows), len(rows) + len(mine))
        rows += mine
        row_doc += [n] * len(mine)
        for u in mine:
            if u.kind == KIND_INDICATOR and u.location.indicator_no is not None:
                by_indicator[(doc_id, u.location.indicator_no)].append(u)
            if u.location.column_no is not None and u.kind in (KIND_ITEM, KIND_INDICATOR):
                by_column[(doc_id, u.location.column_no)].append(u)
        for c in docs[doc_id].chapters:
            by_chapter.setdefault((doc_id, c.no), c)
        # the stored source (extracted text for PDF/DOCX/HTML); older builds: the units' text
        src = path / "sources" / f"{doc_id}.txt"
        if src.exists():
            text = src.read_text(encoding="utf-8")
            docs[doc_id] = dataclasses.replace(docs[doc_id], text=text)
        else:  # a build from before sources were stored
            text = "".join(u.text for u in doc_units)
        source_canon[doc_id] = canon(text)
    n_rows = int(bm25[ALL].scores["num_docs"]) if rows else 0
    if rows and n_rows != len(rows):
        raise IndexMissingError(
            f"BM25 索引有 {n_rows} 行，单元有 {len(rows)} 个：请运行 `policyqa ingest --force` 重建。"
        )
    return Index(
        settings=settings,
        path=path,
        manifest=m,
        docs=docs,
        units=units,
        retrievable=retrievable,
        bm25=bm25,
        stores=stores,
        embedder=embedder,
        tokenizer=tokenizer_for(Path(settings.kb_dir)),
        source_canon=source_canon,
        query_vectors=LRU(settings.query_cache),
        rows=rows,
        row_of={u.id: i for i, u in enumerate(rows)},
        row_doc=np.asarray(row_doc, dtype=np.int32),
        doc_ord=doc_ord,
        doc_rows=doc_rows,
        by_indicator=dict(by_indicator),
        by_column=dict(by_column),
        by_chapter=by_chapter,
    )
