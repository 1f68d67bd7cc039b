"""The cue words of ``ingest/cues.yaml``, loaded once.

Words (furniture lines of web pages, table attribute words, title endings that give a document's
kind, region names) are data; the patterns that use them live in the modules that read them.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

CUES_PATH = Path(__file__).with_name("cues.yaml")


@dataclass(frozen=True)
class Cues:
    furniture_lines: frozenset[str]
    furniture_prefixes: tuple[str, ...]
    attributes: tuple[str, ...]
    name_headers: tuple[str, ...]
    notice_words: tuple[str, ...]
    forwarding_words: tuple[str, ...]
    kinds: tuple[tuple[str, tuple[str, ...]], ...]  # (kind, title endings), in order
    national: tuple[str, ...]
    national_offices: tuple[str, ...]
    national_region: str
    regions: tuple[str, ...]
    fingerprint: str


@functools.lru_cache(maxsize=1)
def cues() -> Cues:
    raw = CUES_PATH.read_bytes()
    d = yaml.safe_load(raw)
    return Cues(
        furniture_lines=frozenset(str(x) for x in d["furniture_lines"]),
        furniture_prefixes=tuple(str(x) for x in d["furniture_prefixes"]),
        attributes=tuple(d["attributes"]),
        name_headers=tuple(d["name_headers"]),
        notice_words=tuple(d["notice_words"]),
        forwarding_words=tuple(d["forwarding_words"]),
        kinds=tuple((k, tuple(v)) for k, v in d["kinds"].items()),
        national=tuple(d["national"]),
        national_offices=tuple(d["national_offices"]),
        national_region=str(d["national_region"]),
        regions=tuple(d["regions"]),
        fingerprint=hashlib.sha256(raw).hexdigest()[:16],
    )
