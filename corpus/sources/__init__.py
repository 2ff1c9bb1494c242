"""Where files come from: local folders and Mix projects, Debian source packages, Hex.pm, GitHub.

Each source is fetched into a local folder (cached), then `local.collect` lists its files with their
project (the train/validation split unit) and licence.
"""
