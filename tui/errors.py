"""Errors of the terminal chat, shown to the user as one-line notifications."""

from __future__ import annotations

from potion.errors import PotionError


class ChatError(PotionError):
    """Base of the chat app's errors."""


class HistoryError(ChatError):
    """The history database could not be opened or written (locked, corrupt, too new)."""


class CommandError(ChatError):
    """A slash command was unknown or got bad arguments."""


class AttachError(ChatError):
    """A file given to /file, /explain or /doc cannot be used: missing, binary or too large."""


class InputTooLarge(ChatError):
    """A pasted or typed message does not fit the model's context."""
