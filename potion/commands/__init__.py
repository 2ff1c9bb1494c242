"""Built-in `potion` commands: each module here has `register(subparsers)` and is found by potion.cli."""
