"""Hybrid retrieval: fusion checked against RRF by hand, routes, filters, other scripts."""

from __future__ import annotations

import pytest

from policyqa.index import Index
from policyqa.retrieve import analyze, fuse, search
from tests.indexes import shared_index


@pytest.fixture(scope="module")
def index() -> Index:
    return shared_index("hash")


@pytest.fixture(scope="module")
def e5() -> Index:
    return shared_index("e5-small")


def test_fuse_matches_rrf_by_hand() -> None:
    bm25 = [("a", 9.0), ("b", 5.0), ("c", 1.0)]
    dense = [("c", 0.9), ("a", 0.8)]
    got = fuse(bm25, dense, k=60)
    want = {"a": 1 / 61 + 1 / 62, "b": 1 / 62, "c": 1 / 63 + 1 / 61}
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert got[k] == pytest.approx(v)
    weighted = fuse(bm25, dense, k=60, weights=(2.0, 1.0))
    assert weighted["b"] == pytest.approx(2 / 62)


def test_indicator_name_routes_to_the_row(index: Index) -> None:
    hits = search(index, "2025年森林覆盖率目标是多少？")
    assert hits[0].unit.id == "gx-eco-14th:ind17"
    assert "route" in hits[0].sources
    assert search(index, "第18项指标")[0].unit.location.indicator_no == 18


def test_a_year_after_zhibiao_is_no_indicator_number(index: Index) -> None:
    """「…指标2020年…」: 20 is the start of a year, not 第20项指标."""
    q = analyze("森林覆盖率指标2020年是多少？", index)
    assert q.indicator_nos == (17,) and not q.explicit_indicator
    assert analyze("指标17是多少", index).indicator_nos == (17,)


def test_narrative_question_is_not_forced_onto_an_indicator(index: Index) -> None:
    q = analyze("化学需氧量、氨氮、二氧化硫和氮氧化物的排放总量较2015年各降低了多少？", index)
    assert q.indicator_nos == ()


def test_column_and_section_references(index: Index) -> None:
    hits = search(index, "专栏3", k=10)
    assert hits and all(h.unit.location.column_no == 3 for h in hits[:7])
    hits = search(index, "第五章第三节讲什么？", k=3)
    assert all((h.unit.location.chapter_no, h.unit.location.section_no) == (5, 3) for h in hits)
    q = analyze("规划定了哪几条基本原则？", index)
    assert (q.chapter_no, q.section_no) == (2, 2)


def test_filters(index: Index) -> None:
    hits = search(index, "污染防治", k=8, chapter=6)
    assert hits and all(h.unit.location.chapter_no == 6 for h in hits)
    assert search(index, "污染防治", doc="no-such-doc") == []
    assert search(index, "   ") == []


def test_traditional_is_normalised(index: Index) -> None:
    assert analyze("森林覆蓋率的目標", index).normalized.startswith("森林覆盖率的目标")
    assert search(index, "森林覆蓋率到2025年的目標定為多少？")[0].unit.id == "gx-eco-14th:ind17"


def test_english_question_finds_the_chinese_unit(e5: Index) -> None:
    hits = search(e5, "What forest coverage does the plan target by 2025?")
    assert hits[0].unit.id == "gx-eco-14th:ind17"
    hits = search(e5, "Which cities run zero-waste city pilots?", k=5)
    assert any("无废城市" in h.unit.text for h in hits)


def test_sentence_rerank_finds_the_figure(e5: Index) -> None:
    hits = search(e5, "每天能集中处置多少吨医疗废物？", k=1)
    assert "141.52" in hits[0].unit.text


def test_hit_json_shape(index: Index) -> None:
    d = search(index, "森林覆盖率")[0].to_dict()
    assert set(d) == {"id", "score", "label", "location", "text"}
    assert set(d["location"]) == {
        "doc",
        "chapter_no",
        "chapter",
        "section_no",
        "section",
        "column_no",
        "column",
        "indicator_no",
        "indicator",
        "article_no",
        "article",
        "doc_title",
    }
    assert d["location"]["indicator_no"] == 17 and isinstance(d["location"]["column_no"], int)


def test_repeated_question_vector_comes_from_the_cache(index: Index, monkeypatch) -> None:
    from dataclasses import replace

    from policyqa.index import LRU

    calls: list[str] = []
    real = index.embedder.embed_query_np

    def counting(text: str):
        calls.append(text)
        return real(text)

    monkeypatch.setattr(index.embedder, "embed_query_np", counting)
    cached = replace(index, query_vectors=LRU(4), memo={})
    first = search(cached, "工地扬尘谁管？")
    again = search(cached, "工地扬尘谁管？")
    assert [h.unit.id for h in first] == [h.unit.id for h in again]
    assert len(calls) == 1 and cached.query_vectors.hits == 1
    uncached = replace(index, query_vectors=LRU(0), memo={})
    search(uncached, "工地扬尘谁管？")
    search(uncached, "工地扬尘谁管？")
    assert len(calls) == 3  # size 0: every question goes to the model


def test_one_ask_embeds_its_question_once_with_the_cache_off(index: Index, monkeypatch) -> None:
    """Retrieval and the sentence evidence share one vector: with no query cache a second
    embedding would double the cost of every question."""
    from dataclasses import replace

    from policyqa.answer import ask
    from policyqa.index import LRU

    calls: list[str] = []
    real = index.embedder.embed_query_np
    monkeypatch.setattr(index.embedder, "embed_query_np", lambda text: calls.append(text) or real(text))
    uncached = replace(index, query_vectors=LRU(0), memo={})
    a = ask(uncached, "工地扬尘谁来管？")
    assert a.citations and len(calls) == 1


def test_lru_evicts_the_least_recently_used() -> None:
    from policyqa.index import LRU

    c = LRU(2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1  # a is now the most recent
    c.put("c", 3)
    assert c.get("b") is None and c.get("a") == 1 and c.get("c") == 3
    assert (c.hits, c.misses) == (3, 1)


def test_settings_bounds_from_the_environment() -> None:
    from policyqa.errors import PolicyQAError
    from policyqa.settings import Settings

    s = Settings.from_env(
        {"POLICYQA_CONCURRENCY": "3", "POLICYQA_QUEUE_MAX": "9", "POLICYQA_QUERY_CACHE": "0"}
    )
    assert (s.concurrency, s.queue_max, s.query_cache) == (3, 9, 0)
    for name in ("POLICYQA_CONCURRENCY", "POLICYQA_QUEUE_MAX"):
        with pytest.raises(PolicyQAError, match=name):
            Settings.from_env({name: "0"})
    with pytest.raises(PolicyQAError, match="POLICYQA_QUERY_CACHE"):
        Settings.from_env({"POLICYQA_QUERY_CACHE": "-1"})


def test_kb_dir_does_not_depend_on_the_working_directory(tmp_path, monkeypatch) -> None:
    from policyqa.settings import PROJECT_KB, Settings, default_kb_dir

    assert default_kb_dir(tmp_path) == PROJECT_KB and (PROJECT_KB / "synonyms.tsv").exists()
    (tmp_path / "kb").mkdir()
    assert default_kb_dir(tmp_path) == __import__("pathlib").Path("kb")  # the project's own kb/ first
    monkeypatch.chdir(tmp_path / "kb")
    assert Settings.from_env({}).kb_dir == PROJECT_KB
    assert Settings.from_env({"POLICYQA_KB": "x"}).kb_dir.name == "x"
