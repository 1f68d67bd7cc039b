"""Answers with citations: ``ask(index, question, history) → Answer`` (see ``pipeline``).

Modules, each one capability: ``followup`` (history → standalone question), ``guard``
(refusals as types), ``intent`` (what kind of answer), ``evidence`` (sentence-level relevance
and the answered / partly covered / not covered decision), ``compose/`` (one module per kind of
answer), ``pipeline`` (the steps).
"""

from policyqa.answer.followup import clean_history, history_pairs
from policyqa.answer.pipeline import CONTRACT_VIOLATIONS, ask, check_input


def resolve_followup(question: str, history, index=None) -> str:  # noqa: ANN001 - thin wrapper
    """The standalone form of a follow-up (needs the index for its analysis)."""
    from policyqa.answer.followup import standalone
    from policyqa.lexicon import lexicon_for

    if index is None:
        raise TypeError("resolve_followup needs the index")
    return standalone(question, history, index, lexicon_for(index.settings.kb_dir))


__all__ = ["ask", "check_input", "clean_history", "history_pairs", "resolve_followup", "CONTRACT_VIOLATIONS"]
