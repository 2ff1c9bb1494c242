"""Elixir evaluation: sandboxed runner, task suites, pass@k, FIM infilling, perplexity."""
