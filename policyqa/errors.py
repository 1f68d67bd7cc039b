"""Errors meant for the person using the program (CLI or app), in Chinese.

Anything raised as ``PolicyQAError`` is shown as its message, without a traceback. The message
says what went wrong and what to do next.
"""


class PolicyQAError(Exception):
    """An error whose message is shown to the user as is."""


class DocumentError(PolicyQAError):
    """A kb/ file that cannot be read as a plan (empty, binary, undecodable)."""


class IndexMissingError(PolicyQAError):
    """No usable index: the user must run ``policyqa ingest``."""


class IndexMismatchError(PolicyQAError):
    """The index was built with another embedder or schema; re-ingest."""


class BackendError(PolicyQAError):
    """An unknown or unavailable backend (embedder, Chroma server, LLM)."""


class InputError(PolicyQAError):
    """A question that cannot be answered as given (empty, too long)."""


class UnknownDocumentError(InputError):
    """A document filter (``--doc``, ``"doc"``, ``?doc=``) naming no document of the index."""


def check_document(doc: str | None, known: dict[str, object] | list[str]) -> None:
    """Raise UnknownDocumentError unless ``doc`` is empty or one of the ``known`` document ids.

    The message lists the known ids (in the index's order) so that the person can retry; it does
    not guess a near id (a filter that silently meant another document would be worse).
    """
    if doc and doc not in known:
        ids = "、".join(known) or "（无）"
        raise UnknownDocumentError(f"没有编号为「{doc}」的文档。索引中的文档编号：{ids}。")
