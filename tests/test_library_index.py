"""A library is one index: one Chroma collection and one BM25 index for all documents, a document
filter is a ``where`` on ``doc_id`` / a row range of the BM25 index, and ingest is incremental
(adding or removing a document parses, tokenises and embeds only that document).

Three toy documents of tests/data, hash embedder: each build takes a second or two.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import ingest.load
from policyqa.index import ALL, Index, build_index, chroma_client, open_index
from policyqa.retrieve import analyze, bm25_ranking, dense_ranking, search
from tests.indexes import settings_for

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
TOYS = ("toy-plan", "toy-regulation", "toy-notice")
QUESTION = "改善空气质量和生态环境"  # 改善 is in each toy document


def make_kb(where: Path, docs: tuple[str, ...]) -> Path:
    kb = where / "kb"
    shutil.copytree(ROOT / "kb", kb)
    shutil.rmtree(kb / "plans")
    (kb / "plans").mkdir()
    for d in docs:
        shutil.copy2(DATA / f"{d}.txt", kb / "plans" / f"{d}.txt")
    return kb


@pytest.fixture(scope="module")
def toy_index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    tmp = tmp_path_factory.mktemp("toys")
    s = settings_for(tmp / "home", "hash", make_kb(tmp, TOYS))
    build_index(s)
    return open_index(s)


def test_one_collection_and_one_bm25_for_the_library(toy_index: Index) -> None:
    index = toy_index
    assert set(index.docs) == set(TOYS)
    assert list(index.bm25) == [ALL] and list(index.stores) == [ALL]
    n = sum(len(v) for v in index.retrievable.values())
    assert index.bm25[ALL].scores["num_docs"] == n == len(index.rows)
    assert index.stores[ALL]._collection.count() == n
    client = chroma_client(index.settings, index.path)
    names = [c if isinstance(c, str) else c.name for c in client.list_collections()]
    assert names == [f"pq-{index.build_id}-units"]
    # a document's rows are one range, in docs.json order
    for d, units in index.retrievable.items():
        a, b = index.doc_rows[d]
        assert [u.id for u in index.rows[a:b]] == [u.id for u in units] and units


@pytest.mark.parametrize("doc", TOYS)
def test_document_filter_returns_only_that_documents_units(toy_index: Index, doc: str) -> None:
    index = toy_index
    q = analyze(QUESTION, index)
    everywhere = dict(bm25_ranking(index, q, list(index.docs)))
    bm25 = bm25_ranking(index, q, [doc])
    dense = dense_ranking(index, q, [doc])
    assert bm25 and dense
    assert {index.units[u].doc for u, _ in bm25} == {doc}
    assert {index.units[u].doc for u, _ in dense} == {doc}
    # the same index scores them: a unit's BM25 score does not depend on the filter
    for u, s in bm25:
        if u in everywhere:
            assert s == pytest.approx(everywhere[u])
    hits = search(index, QUESTION, k=10, doc=doc)
    assert hits and {h.unit.doc for h in hits} == {doc}


def test_filter_of_several_documents_and_of_none(toy_index: Index) -> None:
    index = toy_index
    q = analyze(QUESTION, index)
    two = ["toy-plan", "toy-notice"]
    for ranking in (bm25_ranking(index, q, two), dense_ranking(index, q, two)):
        assert {index.units[u].doc for u, _ in ranking} == set(two)
    every = {index.units[u].doc for u, _ in dense_ranking(index, q, list(index.docs))}
    assert every == set(TOYS)  # no filter: the whole library (15 units < 40 candidates)
    # a document filter and a chapter filter together ($and)
    hits = search(index, QUESTION, k=20, doc="toy-regulation", chapter=1)
    assert hits and all(h.unit.doc == "toy-regulation" and h.unit.location.chapter_no == 1 for h in hits)


def test_adding_or_removing_a_document_parses_and_embeds_only_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb = make_kb(tmp_path, TOYS[:2])
    s = settings_for(tmp_path / "home", "hash", kb)
    parsed: list[str] = []
    real = ingest.load.parse_document

    def counting(text: str, doc_id: str, *args, **kwargs):  # noqa: ANN202
        parsed.append(doc_id)
        return real(text, doc_id, *args, **kwargs)

    monkeypatch.setattr(ingest.load, "parse_document", counting)
    first = build_index(s)
    assert sorted(parsed) == sorted(TOYS[:2]) and first.embedded > 0
    before = open_index(s)

    parsed.clear()
    shutil.copy2(DATA / "toy-notice.txt", kb / "plans" / "toy-notice.txt")
    said: list[str] = []
    added = build_index(s, progress=said.append)
    assert parsed == ["toy-notice"]  # the other two come from the parse cache
    per_doc = {d["id"]: d["embedded"] for d in added.manifest["documents"]}
    assert per_doc["toy-plan"] == per_doc["toy-regulation"] == 0 and per_doc["toy-notice"] > 0
    assert added.embedded == per_doc["toy-notice"]
    # progress per document: parsing (or reusing) and indexing each one
    assert sum("] 解析 toy-notice.txt" in m for m in said) == 1
    assert sum("未变，沿用上次的解析" in m for m in said) == 2
    assert sum(m.startswith(("[1/3] toy-", "[2/3] toy-", "[3/3] toy-")) for m in said) == 3
    after = open_index(s)
    assert set(after.docs) == set(TOYS)
    for d in TOYS[:2]:  # a cached document is the document parsed before, unit for unit
        assert [u.to_dict() for u in after.docs[d].units] == [u.to_dict() for u in before.docs[d].units]
        assert (
            after.docs[d].text == before.docs[d].text and after.docs[d].outline() == before.docs[d].outline()
        )
    hits = search(after, QUESTION, k=5, doc="toy-notice")
    assert hits and {h.unit.doc for h in hits} == {"toy-notice"}

    parsed.clear()
    (kb / "plans" / "toy-plan.txt").unlink()
    removed = build_index(s)
    assert parsed == [] and removed.embedded == 0 and not removed.skipped
    assert set(open_index(s).docs) == {"toy-regulation", "toy-notice"}

    parsed.clear()  # a changed meta.json parses that document again (its title is read from it)
    (kb / "plans" / "toy-notice.meta.json").write_text('{"short_title": "扬尘通知"}', encoding="utf-8")
    build_index(s)
    assert parsed == ["toy-notice"]
    assert open_index(s).docs["toy-notice"].meta.get("short_title") == "扬尘通知"
