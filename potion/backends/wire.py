"""Framing of the messages between `SupervisedLlamaCpp` and its worker process: a 4-byte big-endian length,
then a pickled dict. Both ends are this package, run by the same user, over a pipe only they hold."""

from __future__ import annotations

import pickle
import struct
from typing import IO, Any

_LENGTH = struct.Struct(">I")


def write_frame(out: IO[bytes], message: dict[str, Any]) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_LENGTH.pack(len(data)) + data)
    out.flush()


def read_frame(inp: IO[bytes]) -> dict[str, Any] | None:
    """The next message, or None at the end of the stream (a frame cut short counts as the end)."""
    head = inp.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (n,) = _LENGTH.unpack(head)
    data = inp.read(n)
    if len(data) < n:
        return None
    return pickle.loads(data)
