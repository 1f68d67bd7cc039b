"""Formats: the same document as .txt, .pdf (printed by chromium) and .docx gives the same tree.

The PDF is made here by printing an HTML rendering of the text with Debian's chromium (its page
header and footer left on, so running heads and page numbers must be removed); the DOCX with
python-docx. Both are written to a temporary folder. Tests that need chromium are skipped without
it. Also: a scanned PDF and a broken Word file are refused naming the file, a library skips them,
``policyqa add`` copies and ingests, and quotes of a PDF-only library verify against its source.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest.formats import extract_text
from ingest.load import load_document, load_library
from policyqa.errors import DocumentError
from policyqa.models import Document
from policyqa.text import canon
from tests.docmake import CHROMIUM, text_to_docx, text_to_pdf

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
PLAN = ROOT / "kb" / "plans" / "gx-eco-14th.txt"
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def tree(doc: Document) -> dict:
    """What must not change with the format: ids, kinds, texts (canonical), indicators, title."""
    return {
        "title": doc.title,
        "units": [(u.id, u.kind, canon(u.text)) for u in doc.units],
        "indicators": [i.to_dict() for i in doc.indicators],
        "counts": (
            len(doc.chapters),
            sum(len(c.sections) for c in doc.chapters),
            len(doc.columns),
            len(doc.indicators),
        ),
    }


def as_format(src: Path, folder: Path, ext: str) -> Path:
    """``src`` (a .txt) written as ``folder/<same id>.<ext>``."""
    text = src.read_text(encoding="utf-8")
    out = folder / f"{src.stem}.{ext}"
    if ext == "pdf":
        first = next(x for x in text.splitlines() if x.strip())
        return text_to_pdf(text, out, title=first[:20])
    return text_to_docx(text, out)


@pytest.fixture(scope="module")
def plan_txt() -> Document:
    return load_document(PLAN)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("formats")


@pytest.fixture(scope="module")
def plan_pdf(made: Path) -> Path:
    """The plan printed to PDF once for the module (chromium takes seconds)."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    return as_format(PLAN, made, "pdf")


# ----------------------------------------------------------------------------- the plan


@needs_chromium
def test_plan_as_pdf_gives_the_same_tree(plan_txt: Document, plan_pdf: Path) -> None:
    doc = load_document(plan_pdf)
    assert tree(doc)["counts"] == (13, 49, 9, 19)
    assert tree(doc) == tree(plan_txt)
    assert doc.meta == plan_txt.meta  # read from the PDF's text alone (no meta.json beside it)
    i6 = next(i for i in doc.indicators if i.no == 6)
    assert [(r.scope, r.baseline.value, r.target.value) for r in i6.rows] == [
        ("设区城市", "97.3", "以国家下达指标为准"),
        ("县级", "90.6", "90"),
    ]
    # the stored source has no page furniture and every unit is found in it verbatim
    assert "file://" not in doc.text and "/26" not in doc.text
    src = canon(doc.text)
    assert all(canon(u.text) in src for u in doc.units)


def test_plan_as_docx_gives_the_same_tree(plan_txt: Document, made: Path) -> None:
    doc = load_document(as_format(PLAN, made, "docx"))
    assert tree(doc)["counts"] == (13, 49, 9, 19)
    assert tree(doc) == tree(plan_txt)
    assert doc.meta == plan_txt.meta


# ----------------------------------------------------------------------------- toys round trip


@pytest.mark.parametrize("ext", ["pdf", "docx"])
@pytest.mark.parametrize(
    "name", ["toy-plan-2030.txt", "toy-regulation.txt", "toy-notice.txt", "toy-plan.txt"]
)
def test_toy_round_trip(name: str, ext: str, made: Path) -> None:
    if ext == "pdf" and CHROMIUM is None:
        pytest.skip("chromium is not installed")
    folder = made / ext
    folder.mkdir(exist_ok=True)
    txt = load_document(DATA / name)
    other = load_document(as_format(DATA / name, folder, ext))
    assert tree(other) == tree(txt)
    assert other.meta == txt.meta


# ----------------------------------------------------------------------------- bad files


def test_scanned_pdf_is_refused_naming_the_file(tmp_path: Path) -> None:
    import pypdf

    w = pypdf.PdfWriter()
    w.add_blank_page(width=595, height=842)  # a page with no text layer, as a scan has
    path = tmp_path / "scan-2021.pdf"
    with open(path, "wb") as f:
        w.write(f)
    with pytest.raises(DocumentError, match=r"scan-2021\.pdf.*文字层"):
        extract_text(path)


@pytest.mark.parametrize(
    ("name", "data", "needle"),
    [
        ("broken.docx", b"PK\x03\x04 not a word file", "Word"),
        ("broken.pdf", b"%PDF-1.7 garbage", "PDF"),
        ("empty.html", b"", "空文件"),
        ("menu.html", b"<html><body><a>Home</a></body></html>", "正文"),
    ],
)
def test_broken_files_are_named(tmp_path: Path, name: str, data: bytes, needle: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DocumentError) as e:
        load_document(path)
    assert name in str(e.value) and needle in str(e.value)


def test_library_skips_unreadable_files(tmp_path: Path) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    shutil.copy(DATA / "toy-regulation.txt", plans)
    shutil.copy(DATA / "toy-page.html", plans)
    (plans / "broken.docx").write_bytes(b"PK\x03\x04 not a word file")
    (plans / "notes.xlsx").write_bytes(b"ignored: not a document format")
    text_to_docx((DATA / "toy-regulation.txt").read_text(encoding="utf-8"), plans / "toy-regulation.docx")
    messages: list[str] = []
    lib = load_library(tmp_path, progress=messages.append)
    assert [d.id for d in lib.documents] == ["toy-page", "toy-regulation"]
    assert [f for f, _ in lib.skipped] == ["broken.docx", "toy-regulation.txt"]  # one id, two files
    assert any("跳过 broken.docx" in m for m in messages)
    assert lib.documents[1].source.endswith("toy-regulation.docx")


# ----------------------------------------------------------------------------- add, and quotes from a PDF


@needs_chromium
def test_add_pdf_then_quotes_verify(
    tmp_path: Path, made: Path, plan_pdf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from policyqa.cli import main
    from policyqa.index import open_index
    from policyqa.settings import Settings

    kb = tmp_path / "kb"
    shutil.copytree(ROOT / "kb", kb, ignore=shutil.ignore_patterns("plans"))
    (kb / "plans").mkdir()
    pdf = plan_pdf
    meta = made / "gx-eco-14th.meta.json"
    shutil.copy(ROOT / "kb" / "plans" / "gx-eco-14th.meta.json", meta)
    for k, v in {"POLICYQA_HOME": tmp_path / "home", "POLICYQA_KB": kb, "POLICYQA_EMBEDDER": "hash"}.items():
        monkeypatch.setenv(k, str(v))
    assert main(["add", str(pdf)]) == 0
    assert sorted(p.name for p in (kb / "plans").iterdir()) == ["gx-eco-14th.meta.json", "gx-eco-14th.pdf"]
    index = open_index(Settings.from_env())
    stored = (index.path / "sources" / "gx-eco-14th.txt").read_text(encoding="utf-8")
    assert "file://" not in stored
    src = index.source_canon["gx-eco-14th"]
    assert src == canon(stored)
    units = index.retrievable["gx-eco-14th"]
    assert len(units) > 200 and all(canon(u.text) in src for u in units)
    assert index.units["gx-eco-14th:ind17"].indicator.target.value == "62.6"  # type: ignore[union-attr]
    assert index.docs["gx-eco-14th"].meta["doc_number"] == "桂政办发〔2021〕145号"


def test_add_refuses_unknown_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from policyqa.cli import main

    bad = tmp_path / "plan.xlsx"
    bad.write_bytes(b"x")
    monkeypatch.setenv("POLICYQA_KB", str(tmp_path / "kb"))
    monkeypatch.setenv("POLICYQA_HOME", str(tmp_path / "home"))
    assert main(["add", str(bad)]) == 2
    assert "plan.xlsx" in capsys.readouterr().err
    assert not (tmp_path / "kb" / "plans" / "plan.xlsx").exists()


def test_html_table_rows_become_indicators(tmp_path: Path) -> None:
    from tests.test_structure import HEAD, ROWS, TOY_2030, ind

    cells = "".join(f"<th>{c}</th>" for c in HEAD.split("|"))
    rows = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in ROWS)
    page = (
        "<html><body><ul><li>首页</li><li>网站地图</li></ul><h1>示例规划</h1><h2>第一章 目标</h2>"
        f"<p>专栏1 主要指标</p><table><tr>{cells}</tr>{rows}</table><p>注：①按国家考核断面计。</p>"
        "<h2>第二章 保障</h2><p>做好工作。</p><p>版权所有：示例市人民政府</p></body></html>"
    )
    path = tmp_path / "web-plan.html"
    path.write_text(page, encoding="utf-8")
    d = load_document(path)
    assert ind(d) == TOY_2030
    assert [c.title for c in d.chapters] == ["目标", "保障"]
    assert "版权所有" not in d.text and "首页" not in d.text
