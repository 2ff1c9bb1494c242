"""Errors of the corpus builder, each with a one-line fix (turned into a message by `potion.cli`)."""

from __future__ import annotations

from potion.errors import PotionError


class CorpusError(PotionError):
    """Base of every corpus error."""


class ConfigError(CorpusError):
    """The corpus YAML is missing, malformed or names an unknown option."""


class SourceError(CorpusError):
    """A source (local directory, Debian package, Hex package, GitHub repository) cannot be fetched."""


class FetchError(SourceError):
    """An HTTP source kept failing (5xx, truncated body, rate limit past the wait budget)."""


class UnsafeArchive(CorpusError):
    """An archive breaks the extraction rules: traversal, links, devices, size caps, bombs."""


class HexTarballError(CorpusError):
    """A Hex package tarball is malformed: VERSION, members, checksum or metadata.config."""


class OutputExists(CorpusError):
    """The output folder already holds a finished corpus."""


class NotACorpus(CorpusError):
    """A folder given to `potion corpus stats/tokens` is not a built corpus."""


class TokenizerError(CorpusError):
    """The tokenizer named by --model cannot be loaded."""
