"""The CI gate: the dev split of the gold set must stay above eval/thresholds.json."""

from __future__ import annotations

import json
import subprocess

from eval.metrics import aggregate
from eval.run import THRESHOLDS, gate, load_questions, run_system
from tests.indexes import ROOT, shared_index


def test_dev_split_meets_thresholds() -> None:
    cfg = json.loads(THRESHOLDS.read_text(encoding="utf-8"))
    rows = run_system(shared_index("e5-small"), load_questions(cfg["split"]))
    overall = aggregate(rows)["overall"]
    assert gate({"overall": overall}, cfg["metrics"]) == [], json.dumps(overall, ensure_ascii=False)


def test_gate_flags_a_drop() -> None:
    overall = {"hit@1": 0.80, "false_refusal_rate": 0.10, "quote_validity": 1.0}
    bad = gate({"overall": overall}, {"hit@1": 0.9, "false_refusal_rate": 0.05, "quote_validity": 1.0})
    assert len(bad) == 2


def test_thresholds_only_move_up() -> None:
    """Compared with the last commit's file: a lowered threshold must not land."""
    old = subprocess.run(
        ["git", "show", "HEAD:eval/thresholds.json"], cwd=ROOT, capture_output=True, text=True
    )
    if old.returncode != 0:  # first commit of the file, or not a git checkout
        return
    before = json.loads(old.stdout)["metrics"]
    now = json.loads(THRESHOLDS.read_text(encoding="utf-8"))["metrics"]
    for k, v in before.items():
        assert k in now, f"threshold {k} removed"
        if k.endswith("_rate"):
            assert now[k] <= v, f"{k} loosened from {v} to {now[k]}"
        else:
            assert now[k] >= v, f"{k} lowered from {v} to {now[k]}"
