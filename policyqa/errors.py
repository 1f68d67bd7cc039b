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
