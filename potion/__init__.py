"""Potion: a local AI assistant for Elixir developers (shared runtime)."""

__version__ = "0.1.0"
