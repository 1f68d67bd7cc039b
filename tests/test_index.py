"""Ingest and index: manifest, idempotence, per-unit embedding cache, refusal on mismatch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from policyqa.embed import embedder_from_name
from policyqa.errors import BackendError, IndexMismatchError, IndexMissingError
from policyqa.index import build_index, open_index
from tests.indexes import ROOT, settings_for


@pytest.fixture()
def kb(tmp_path: Path) -> Path:
    d = tmp_path / "kb"
    shutil.copytree(ROOT / "kb", d)
    return d


def test_build_writes_manifest_and_units(tmp_path: Path, kb: Path) -> None:
    s = settings_for(tmp_path / "home", "hash", kb)
    r = build_index(s)
    assert not r.skipped and r.embedded > 100
    live = s.index_dir
    assert live.is_symlink() and live.resolve() == r.path
    m = json.loads((live / "manifest.json").read_text(encoding="utf-8"))
    assert m["schema"] == 2 and m["embedder"] == {"name": "hash", "dimension": m["embedder"]["dimension"]}
    assert m["documents"][0]["id"] == "gx-eco-14th" and len(m["documents"][0]["sha256"]) == 64
    assert m["tokenizer"]["fingerprint"] and m["chroma"]["mode"] == "local"
    lines = (live / "units.jsonl").read_text(encoding="utf-8").splitlines()
    units = [json.loads(x) for x in lines]
    assert any(u["id"] == "gx-eco-14th:ind17" and u["indicator"]["target"]["value"] == "62.6" for u in units)
    assert m["counts"]["units"] == len(units)


def test_rebuild_is_idempotent_and_reembeds_one_unit(tmp_path: Path, kb: Path) -> None:
    s = settings_for(tmp_path / "home", "hash", kb)
    first = build_index(s)
    again = build_index(s)
    assert again.skipped and again.build_id == first.build_id and again.embedded == 0
    plan = kb / "plans" / "gx-eco-14th.txt"
    text = plan.read_text(encoding="utf-8")
    old = "森林覆盖率达到62.5%，稳居全国第3位。"
    assert old in text
    plan.write_text(text.replace(old, "森林覆盖率达到62.5%，稳居全国前列。"), encoding="utf-8")
    third = build_index(s)
    assert not third.skipped and third.embedded == 1
    assert s.index_dir.resolve() == third.path
    index = open_index(s)
    assert "稳居全国前列" in index.units["gx-eco-14th:ch01.s01.p05"].text


def test_open_refuses_other_embedder(tmp_path: Path, kb: Path) -> None:
    s = settings_for(tmp_path / "home", "hash", kb)
    build_index(s)
    with pytest.raises(IndexMismatchError, match="policyqa ingest"):
        open_index(s.with_(embedder="e5-small"))


def test_open_without_index_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError, match="policyqa ingest"):
        open_index(settings_for(tmp_path / "nothing", "hash"))


def test_truncated_index_is_reported_and_rebuilt(tmp_path: Path, kb: Path) -> None:
    s = settings_for(tmp_path / "home", "hash", kb)
    build_index(s)
    (s.index_dir / "units.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(IndexMissingError, match="ingest"):
        open_index(s)
    r = build_index(s)  # not skipped: the live build is broken
    assert not r.skipped
    assert open_index(s).units


def test_unknown_embedder_lists_known_names() -> None:
    with pytest.raises(BackendError) as e:
        embedder_from_name("no-such-model")
    assert "e5-small" in str(e.value) and "st:" in str(e.value)


def test_unreadable_file_is_skipped_and_named(tmp_path: Path, kb: Path) -> None:
    s = settings_for(tmp_path / "home", "hash", kb)
    first = build_index(s)
    (kb / "plans" / "broken.txt").write_bytes(b"\x00\x01binary")
    (kb / "plans" / "scan.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    msgs: list[str] = []
    r = build_index(s, progress=msgs.append)
    assert not r.skipped and r.embedded == 0  # the plan's vectors all come from the cache
    assert [f for f, _ in r.unreadable] == ["broken.txt", "scan.pdf"]
    assert any("broken.txt" in m and "二进制" in m for m in msgs)
    assert any("scan.pdf" in m for m in msgs)
    m = json.loads((s.index_dir / "manifest.json").read_text(encoding="utf-8"))
    assert [d["id"] for d in m["documents"]] == ["gx-eco-14th"]
    assert [u["file"] for u in m["unreadable"]] == ["broken.txt", "scan.pdf"]
    assert r.path != first.path and open_index(s).units


def test_no_readable_file_leaves_index_untouched(tmp_path: Path, kb: Path) -> None:
    from policyqa.errors import DocumentError

    s = settings_for(tmp_path / "home", "hash", kb)
    first = build_index(s)
    (kb / "plans" / "gx-eco-14th.txt").unlink()
    (kb / "plans" / "broken.txt").write_bytes(b"\x00\x01binary")
    with pytest.raises(DocumentError, match="broken.txt"):
        build_index(s)
    assert s.index_dir.resolve() == first.path
    assert open_index(s).units


def test_adding_and_removing_a_document_embeds_only_that_document(tmp_path: Path, kb: Path) -> None:
    from ingest.load import load_document
    from policyqa.index import index_text
    from policyqa.models import RETRIEVABLE

    s = settings_for(tmp_path / "home", "hash", kb)
    first = build_index(s)
    plan_units = first.manifest["documents"][0]["units"]
    toy = ROOT / "tests" / "data" / "toy-plan.txt"
    shutil.copy(toy, kb / "plans" / "toy-plan.txt")
    msgs: list[str] = []
    second = build_index(s, progress=msgs.append)
    toy_texts = {index_text(u) for u in load_document(toy).units if u.kind in RETRIEVABLE}
    assert second.embedded == len(toy_texts) > 0  # nothing of the plan is embedded again
    docs = {d["id"]: d for d in second.manifest["documents"]}
    assert docs["gx-eco-14th"]["embedded"] == 0 and docs["toy-plan"]["embedded"] == len(toy_texts)
    assert docs["gx-eco-14th"]["units"] == plan_units
    assert len(docs["toy-plan"]["file_sha256"]) == 64
    assert any(m.startswith("[2/2] toy-plan") for m in msgs)  # progress per document
    assert any(m.startswith("[2/2] 解析 toy-plan.txt") for m in msgs)
    index = open_index(s)
    assert set(index.docs) == {"gx-eco-14th", "toy-plan"}
    (kb / "plans" / "toy-plan.txt").unlink()
    third = build_index(s)
    assert third.embedded == 0 and [d["id"] for d in third.manifest["documents"]] == ["gx-eco-14th"]


def test_sources_are_stored_and_used_for_quotes(tmp_path: Path, kb: Path) -> None:
    s = settings_for(tmp_path / "home", "hash", kb)
    build_index(s)
    stored = (s.index_dir / "sources" / "gx-eco-14th.txt").read_text(encoding="utf-8")
    assert stored == (kb / "plans" / "gx-eco-14th.txt").read_text(encoding="utf-8")
    from policyqa.text import canon

    index = open_index(s)
    assert index.source_canon["gx-eco-14th"] == canon(stored)
    assert index.docs["gx-eco-14th"].text == stored
