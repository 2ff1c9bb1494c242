"""Domain errors of the trainer: each says what went wrong and the one-line fix."""

from __future__ import annotations

from potion.errors import PotionError


class TrainerError(PotionError):
    """Base of the trainer's errors."""


class ConfigError(TrainerError):
    """A training config with an unknown key or a bad value (the message names the key)."""


class DataError(TrainerError):
    """A dataset the trainer cannot use: missing, wrong columns, sequences over the limit."""


class ModelSourceError(TrainerError):
    """The base model cannot be found or loaded (hub id, HF directory or GGUF file)."""


class MemoryPlanError(TrainerError):
    """The memory planner says the config does not fit the memory given."""


class CheckpointError(TrainerError):
    """No usable checkpoint to resume from, or one could not be written (full disk)."""


class DivergedError(TrainerError):
    """The loss became NaN or infinite."""


class AdapterError(TrainerError):
    """An unknown adapter, an empty registry, or an adapter used on a base model it was not trained on."""
