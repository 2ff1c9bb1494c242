"""Errors of the evaluations, each with a one-line fix (turned into a message at the CLI's edge)."""

from __future__ import annotations

from potion.errors import PotionError


class EvalError(PotionError):
    """Base of the evaluation errors."""


class TaskFileError(EvalError):
    """A task suite file is malformed: the message names the file and line."""


class SandboxError(EvalError):
    """Generated code cannot be run: no `elixir`, or the sandbox cannot start."""


class ModelLoadError(EvalError):
    """A model under evaluation cannot be opened or loaded: the message says which and why."""


class ResultsError(EvalError):
    """Stored results are missing or unreadable."""
