"""Package data: the shipped Elixir standard-library docs index (elixir_stdlib.json.gz)."""
