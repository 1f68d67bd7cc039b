"""The CI gate: the dev split of the gold set must stay above eval/thresholds.json."""

from __future__ import annotations

import json

from eval.metrics import aggregate
from eval.run import PLAN_SPLITS, THRESHOLD_FLOOR, THRESHOLDS, gate, load_questions, run_system
from tests.indexes import shared_index


def test_dev_split_meets_thresholds() -> None:
    cfg = json.loads(THRESHOLDS.read_text(encoding="utf-8"))
    rows = run_system(shared_index("e5-small"), load_questions(cfg["split"]))
    overall = aggregate(rows)["overall"]
    assert gate({"overall": overall}, cfg["metrics"]) == [], json.dumps(overall, ensure_ascii=False)


def test_gate_flags_a_drop() -> None:
    overall = {"hit@1": 0.80, "false_refusal_rate": 0.10, "quote_validity": 1.0}
    bad = gate({"overall": overall}, {"hit@1": 0.9, "false_refusal_rate": 0.05, "quote_validity": 1.0})
    assert len(bad) == 2


def thresholds_below_floor(now: dict[str, float], floor: dict[str, float]) -> list[str]:
    """Thresholds that fell below the committed floor (rates: rose above it), or were removed."""
    bad = []
    for k, v in floor.items():
        if k not in now:
            bad.append(f"threshold {k} removed")
        elif k.endswith("_rate") and now[k] > v:
            bad.append(f"{k} loosened from {v} to {now[k]}")
        elif not k.endswith("_rate") and now[k] < v:
            bad.append(f"{k} lowered from {v} to {now[k]}")
    return bad


def test_thresholds_only_move_up() -> None:
    """Compared with the committed floor file (not with HEAD, which a clean CI checkout equals)."""
    now = json.loads(THRESHOLDS.read_text(encoding="utf-8"))["metrics"]
    floor = json.loads(THRESHOLD_FLOOR.read_text(encoding="utf-8"))["metrics"]
    assert thresholds_below_floor(now, floor) == []


def test_floor_check_can_fail() -> None:
    floor = {"hit@1": 0.9, "false_refusal_rate": 0.03}
    assert thresholds_below_floor({"hit@1": 0.85, "false_refusal_rate": 0.05}, floor) == [
        "hit@1 lowered from 0.9 to 0.85",
        "false_refusal_rate loosened from 0.03 to 0.05",
    ]
    assert thresholds_below_floor({"hit@1": 0.95}, floor) == ["threshold false_refusal_rate removed"]


def test_no_eval_question_produces_a_contract_violation() -> None:
    """Every question of every split through ``ask``: a composer bug is counted, never hidden."""
    from policyqa.answer import CONTRACT_VIOLATIONS, ask

    index = shared_index("e5-small")
    before = CONTRACT_VIOLATIONS["count"]
    for split in PLAN_SPLITS:
        for q in load_questions(split):
            ask(index, q["question"], q.get("history") or [])
    assert CONTRACT_VIOLATIONS["count"] == before
