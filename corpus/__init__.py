"""Elixir corpus building: sources, extraction, filters, dedup, sample generation."""
