"""Fit the evidence thresholds (``policyqa.answer.evidence.THRESHOLDS``) on the dev split.

``python -m eval.fit_evidence`` asks every dev question (eval/questions.jsonl and
eval/dev-new.jsonl, split "dev") under a grid of (answer, partial) coverage thresholds and
prints, per setting, the share of answerable questions answered with their key facts, the share
of out-of-scope questions refused, and the false-refusal rate. The chosen values are written by
hand into ``THRESHOLDS`` (one place); the held-out file is never read here.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEV_FILES = (HERE / "questions.jsonl", HERE / "dev-new.jsonl")


def dev_questions() -> list[dict]:
    out = []
    for f in DEV_FILES:
        out += [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
    return [q for q in out if q["split"] == "dev"]


def main() -> None:
    from eval.metrics import key_fact_hit
    from policyqa.answer import ask, evidence
    from policyqa.index import open_index
    from policyqa.settings import Settings

    index = open_index(Settings.from_env())
    qs = dev_questions()
    base = evidence.THRESHOLDS
    print("answer partial  correct  refused  false_refusal")
    for a, p in itertools.product((0.4, 0.5, 0.6), (0.25, 0.33, 0.4)):
        if p >= a:
            continue
        evidence.THRESHOLDS = replace(base, answer=a, partial=p)
        ok = refused = false_ref = n_ans = n_oos = 0
        for q in qs:
            r = ask(index, q["question"], q.get("history") or []).to_dict()
            if q["answerable"]:
                n_ans += 1
                ok += bool(r["answerable"] and key_fact_hit(r["answer"], q["key_facts"]))
                false_ref += not r["answerable"]
            else:
                n_oos += 1
                refused += not r["answerable"]
        print(f"{a:6} {p:7}  {ok / n_ans:.3f}    {refused / max(1, n_oos):.3f}    {false_ref / n_ans:.3f}")
    evidence.THRESHOLDS = base


if __name__ == "__main__":
    main()
