"""Errors of the language server. They reach the user as one `window/showMessage` line."""

from __future__ import annotations

from potion.errors import PotionError


class LspError(PotionError):
    """Base of the language server's errors."""


class ConfigError(LspError):
    """A setting from `initializationOptions` or `workspace/didChangeConfiguration` is invalid."""


class TelemetryError(LspError):
    """The telemetry database cannot be opened or read."""
