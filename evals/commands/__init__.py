"""The `potion eval` subcommands, one module each."""

from __future__ import annotations


def check_generation(samples: int, temperature: float, max_tokens: int) -> None:
    """The generation flags `run` and `compare` share; raises ValueError naming the bad flag."""
    if samples < 1:
        raise ValueError(f"--samples must be 1 or more, got {samples}")
    if temperature < 0:
        raise ValueError(f"--temperature must be 0 or more, got {temperature}")
    if max_tokens < 1:
        raise ValueError(f"--max-tokens must be 1 or more, got {max_tokens}")
    if samples > 1 and temperature == 0:
        raise ValueError("--samples above 1 needs --temperature above 0 (greedy samples are all equal)")
