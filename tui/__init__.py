"""The Potion terminal chat (Textual)."""
