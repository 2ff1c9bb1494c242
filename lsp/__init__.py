"""The Potion language server (pygls): inline Elixir completions, hover docs, OTP scaffolds."""
