"""Compatibility entry point: ``parse_document`` lives in ``ingest.tree``.

The structure reader is split by capability: ``ingest.lines`` (lines, page furniture),
``ingest.blocks`` (headings, paragraphs joined across wraps), ``ingest.table`` (cells, indicator
rows, header years), ``ingest.meta`` (title, 文号, office, date, region, period, kind) and
``ingest.tree`` (blocks → ``Document``).
"""

from ingest.tree import parse_document

__all__ = ["parse_document"]
