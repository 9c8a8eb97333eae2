"""The few errors the product raises on purpose; each message says what to do next.

They are converted only at the edges: one line and an exit code in the CLI,
``gr.Error`` in the chat, an HTTP status in the API.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class: an expected failure with a message meant for the user."""

    exit_code = 1
    http_status = 500


class BadInput(RagError):
    """The request itself is unusable (empty question, unsupported file, bad name)."""

    exit_code = 2
    http_status = 400


class NotFound(RagError):
    """A named article (or other resource) does not exist."""

    exit_code = 3
    http_status = 404


class EmptyStore(RagError):
    """Nothing is indexed yet."""

    exit_code = 4
    http_status = 409

    def __init__(self, message: str = "") -> None:
        super().__init__(message or "No articles are indexed yet. Run `rag index` (or `rag index PATH`) first.")


class StoreUnavailable(RagError):
    """The Chroma store (usually a server) cannot be reached or opened."""

    exit_code = 5
    http_status = 503


class ModelUnavailable(RagError):
    """A model or model backend is missing, corrupt or unreachable."""

    exit_code = 6
    http_status = 503
