"""Reading a user's source file as text: one place for the checks every command needs."""

from __future__ import annotations

from pathlib import Path

from potion.errors import InvalidSource

# A NUL byte in the first 8 KiB: the usual test for a binary file (git and grep use the same).
_SNIFF_BYTES = 8192


def read_text_source(path: Path) -> str:
    """The UTF-8 text of a source file, or `InvalidSource` (one line, with a fix) for a missing,
    non-regular, unreadable, binary or non-UTF-8 file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidSource(f"no such file: {path}", hint="check the path") from None
    except IsADirectoryError:
        raise InvalidSource(f"{path} is a directory, not a file", hint="give a source file") from None
    except OSError as exc:
        raise InvalidSource(f"cannot read {path}: {exc.strerror}", hint="check its permissions") from None
    if b"\0" in data[:_SNIFF_BYTES]:
        raise InvalidSource(f"{path} is a binary file", hint="give a text source file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidSource(
            f"{path} is not UTF-8 text (bad byte at offset {exc.start})", hint="convert it to UTF-8"
        ) from None
