"""Errors of the export pipeline, each with its one-line fix."""

from __future__ import annotations

from potion.errors import PotionError


class ExportError(PotionError):
    """Base of every export error."""


class ConverterDownloadError(ExportError):
    """llama.cpp's converters could not be fetched (the index or the network failed)."""


class ConverterVerifyError(ExportError):
    """The fetched llama-cpp-python source distribution is not the pinned one (sha256 differs)."""


class ConversionFailed(ExportError):
    """convert_hf_to_gguf.py / convert_lora_to_gguf.py or llama.cpp's quantizer failed."""


class UnsupportedArchitecture(ExportError):
    """The base model's architecture is not one the export is tested on."""


class AdapterMismatch(ExportError):
    """The adapter was trained on another base than the one found (hash or architecture)."""


class AdapterNotFound(ExportError):
    """RUN_OR_ADAPTER names no run directory, adapter directory or adapter id."""


class NotEnoughDisk(ExportError):
    """The export would not fit in the free space of the models folder (checked before writing)."""
