"""Messages the chat's workers and widgets post (Textual messages, as dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from potion.backends.base import Backend


@dataclass
class ModelLoaded(Message):
    """The load worker finished: `backend` is ready, named `name`."""

    backend: Backend
    name: str
    seconds: float


@dataclass
class ModelFailed(Message):
    """The model could not be opened or loaded; the app keeps working for history."""

    name: str
    error: str


@dataclass
class GenerationFinished(Message):
    """The generation worker stopped: completed, interrupted (Esc) or failed (`error`)."""

    generation: int  # which generation this was, so a stale worker's result is ignored
    text: str
    status: str  # "complete" | "interrupted" | "error"
    error: str | None
    completion_tokens: int
    prompt_tokens: int
    tokens_per_s: float
    dropped: int  # older messages left out to fit the context


@dataclass
class PromptSubmitted(Message):
    """Enter in the prompt box."""

    text: str


@dataclass
class SessionSelected(Message):
    """A chat was picked in the sidebar."""

    session_id: int
