"""The naive RAG baseline, for comparison in the same run.

Fixed 500-character chunks of the raw plan text (LangChain ``RecursiveCharacterTextSplitter``,
50 overlap), the same embedder as the system, top-k by cosine similarity. Its "answer" is the
top chunk with one citation; it never refuses. A chunk's location is that of the unit its
first character belongs to (which is generous: chunks straddle sections, so the rest of the
chunk may sit elsewhere).

Left out: any LLM, reranking or structure — that is the point of a baseline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from policyqa.models import Document, Location

CHUNK_SIZE = 500
CHUNK_OVERLAP = 50


@dataclass(frozen=True)
class Chunk:
    text: str
    start: int
    location: Location


@dataclass
class Baseline:
    chunks: list[Chunk]
    vectors: np.ndarray
    embedder: Any
    build_seconds: float

    def search(self, question: str, k: int = 5) -> list[tuple[Chunk, float]]:
        q = np.asarray(self.embedder.embed_query_np(question), dtype=np.float32)
        sims = self.vectors @ q
        order = np.argsort(-sims)[:k]
        return [(self.chunks[i], float(sims[i])) for i in order]

    def ask(self, question: str) -> dict[str, Any]:
        t0 = time.perf_counter()
        (top, _), *_ = self.search(question, k=1)
        quote = top.text.strip()
        return {
            "question": question,
            "answer": f"{quote}[1]",
            "answerable": True,
            "citations": [
                {
                    "n": 1,
                    "id": f"chunk@{top.start}",
                    "label": "片段",
                    "location": top.location.to_dict(),
                    "quote": quote,
                }
            ],
            "mode": "baseline",
            "timings_ms": {"total": (time.perf_counter() - t0) * 1000},
        }


def location_at(doc: Document, offset: int) -> Location:
    """The location of the unit whose spans contain ``offset`` (else the nearest before it)."""
    best = None
    for u in doc.units:
        for a, b in u.spans:
            if a <= offset < b:
                return u.location
            if a <= offset:
                best = u.location
    return best or Location(doc=doc.id)


def build_baseline(docs: list[Document], embedder: Any, cache_dir: Path) -> Baseline:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from ingest.load import source_text
    from policyqa.embed import CachedEmbeddings

    t0 = time.perf_counter()
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, add_start_index=True
    )
    chunks: list[Chunk] = []
    for doc in docs:
        text = source_text(doc)
        for d in splitter.create_documents([text]):
            start = int(d.metadata.get("start_index", 0))
            chunks.append(Chunk(d.page_content, start, location_at(doc, start)))
    cached = CachedEmbeddings(embedder, cache_dir)
    vectors = np.asarray(cached.embed_documents_np([c.text for c in chunks]), dtype=np.float32)
    return Baseline(chunks, vectors, embedder, time.perf_counter() - t0)
