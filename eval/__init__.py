"""Evaluation of policyqa: the gold question set (``questions.jsonl``) and pure metric functions."""
