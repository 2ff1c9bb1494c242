"""Inference backends: llama.cpp in-process, OpenAI-compatible HTTP servers, and a scripted fake."""

from potion.backends.base import Backend, CancelToken, GenerationStats, ModelInfo
from potion.backends.fake import FakeBackend

__all__ = ["Backend", "CancelToken", "FakeBackend", "GenerationStats", "ModelInfo"]
