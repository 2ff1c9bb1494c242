"""One module per `potion corpus` action."""
