"""A library of two documents (the plan and a regulation, hash embedder): the document filter of
``policyqa ask --doc`` / ``policyqa search --doc`` and of ``ask(..., doc=)``, unknown ids as a
clear error (exit status 2), and the library the size benchmark (eval/bench_library.py) builds.

Not here: the JSON API's filter (tests/test_api.py, through the app), answer quality on the
regulations (the library check in the benchmark report, with the real embedder).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from policyqa.cli import main
from policyqa.errors import UnknownDocumentError, check_document

ROOT = Path(__file__).resolve().parents[1]
PLAN, REG = "gx-eco-14th", "plan-eia-regulation"


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """kb/ copied, with one regulation of eval/library beside the plan, and its hash index."""
    from policyqa.index import build_index
    from tests.indexes import settings_for

    tmp = tmp_path_factory.mktemp("library")
    kb = tmp / "kb"
    shutil.copytree(ROOT / "kb", kb)
    for name in (f"{REG}.md", f"{REG}.meta.json"):
        shutil.copy2(ROOT / "eval" / "library" / name, kb / "plans" / name)
    home = tmp / "home"
    build_index(settings_for(home, "hash", kb))
    return {"kb": kb, "home": home}


@pytest.fixture
def cli(library: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """``policyqa …`` in process on the library: (exit status, stdout, stderr)."""
    for k in ("POLICYQA_CHROMA_URL", "POLICYQA_LLM_BASE_URL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("POLICYQA_HOME", str(library["home"]))
    monkeypatch.setenv("POLICYQA_KB", str(library["kb"]))
    monkeypatch.setenv("POLICYQA_EMBEDDER", "hash")

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def docs_cited(answer: dict) -> set[str]:
    return {c["location"]["doc"] for c in answer["citations"]}


# a topic both documents write about: unfiltered, the answer cites both (so a filter that is
# ignored shows); if the answer layer ever picks one document here, the filter test still holds
SHARED_TOPIC = "规划环境影响评价有哪些要求？"


def test_ask_doc_limits_the_answer_to_that_document(cli) -> None:
    code, out, _ = cli("ask", "--json", SHARED_TOPIC)
    assert code == 0 and docs_cited(json.loads(out)) <= {PLAN, REG}
    for doc in (PLAN, REG):
        code, out, err = cli("ask", "--json", "--doc", doc, SHARED_TOPIC)
        assert code == 0, err
        a = json.loads(out)
        assert a["answerable"], a["answer"]
        assert docs_cited(a) == {doc}, (doc, a["answer"])


def test_ask_doc_applies_to_every_line_of_a_batch(cli, tmp_path: Path) -> None:
    batch = tmp_path / "q.txt"
    batch.write_text("跟踪评价由谁组织？\n森林覆盖率目标是多少？\n", encoding="utf-8")
    code, out, err = cli("ask", "--batch", str(batch), "--doc", REG)
    assert code == 0, err
    answers = [json.loads(line) for line in out.splitlines()]
    assert len(answers) == 2
    for a in answers:  # the plan's indicator is not in the regulation: refused or cited from it
        assert docs_cited(a) <= {REG}, a["answer"]
    assert docs_cited(answers[0]) == {REG}


def test_search_doc_limits_the_hits(cli) -> None:
    for doc in (PLAN, REG):
        code, out, err = cli("search", "--json", "-k", "6", "--doc", doc, "环境影响评价")
        assert code == 0, err
        hits = json.loads(out)["hits"]
        assert len(hits) == 6 and {h["location"]["doc"] for h in hits} == {doc}


@pytest.mark.parametrize("command", ["ask", "search"])
@pytest.mark.parametrize("doc", ["no-such-doc", "gx-eco-14th.txt", "Plan-EIA-Regulation"])
def test_unknown_document_is_exit_2_listing_the_known_ids(cli, command: str, doc: str) -> None:
    code, out, err = cli(command, "--json", "--doc", doc, "跟踪评价由谁组织？")
    assert code == 2
    assert out == ""  # never an empty success
    assert f"「{doc}」" in err and PLAN in err and REG in err
    assert "Traceback" not in err


def test_check_document() -> None:
    check_document(None, {"a": 1})
    check_document("", ["a"])
    check_document("a", ["a", "b"])
    with pytest.raises(UnknownDocumentError, match="「c」.*a、b"):
        check_document("c", ["a", "b"])
    with pytest.raises(UnknownDocumentError, match="（无）"):
        check_document("c", [])


# ----------------------------------------------------------------------------- the benchmark's library


def test_benchmark_questions_are_our_own() -> None:
    from eval.bench_library import QUESTIONS

    held = set()
    for path in (ROOT / "eval").glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                held.add(json.loads(line).get("question", "").strip().rstrip("？?"))
    assert len(QUESTIONS) == 20 and len(set(QUESTIONS)) == 20
    assert not [q for q in QUESTIONS if q.strip().rstrip("？?") in held]


def test_benchmark_library_has_distinct_ids_and_names(tmp_path: Path) -> None:
    from eval.bench_library import make_kb
    from ingest.load import load_kb

    kb = make_kb(tmp_path, 5)
    docs = load_kb(kb)
    assert {d.id for d in docs} == {PLAN, REG, "pollutant-permit-regulation", f"{PLAN}-c003", f"{REG}-c004"}
    names = {}
    for d in docs:
        meta = d.meta or {}
        for key in ("title", "short_title", "doc_number"):
            if meta.get(key):
                assert names.get(meta[key], d.id) == d.id, (d.id, key, meta[key])
                names[meta[key]] = d.id
    copy = next(d for d in docs if d.id == f"{PLAN}-c003")
    original = next(d for d in docs if d.id == PLAN)
    assert copy.title.endswith("（副本3）") and len(copy.units) == len(original.units)
