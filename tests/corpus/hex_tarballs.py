"""Hand-made tar, tar.gz and Hex package tarballs for the archive and Hex tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile


def tar_bytes(members: list[tuple], *, gz: bool = False) -> bytes:
    """members: (name, bytes) files, or (name, kind, link target) for links, devices and folders:
    ("x", "sym", "target"), ("x", "hard", "target"), ("x", "chr", None), ("x", "fifo", None),
    ("x", "dir", None)."""
    buf = io.BytesIO()
    with tarfile.open(
        fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape"
    ) as tar:
        for m in members:
            if len(m) == 2:
                name, data = m
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            name, kind, extra = m
            info = tarfile.TarInfo(name)
            info.type = {
                "sym": tarfile.SYMTYPE,
                "hard": tarfile.LNKTYPE,
                "chr": tarfile.CHRTYPE,
                "fifo": tarfile.FIFOTYPE,
                "dir": tarfile.DIRTYPE,
            }[kind]
            if extra:
                info.linkname = extra
            tar.addfile(info)
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if gz else raw


METADATA = """{<<"app">>,<<"{name}">>}.
{<<"build_tools">>,[<<"mix">>]}.
{<<"description">>,<<"A test package">>}.
{<<"files">>,[<<"lib">>,<<"lib/{name}.ex">>,<<"mix.exs">>]}.
{<<"licenses">>,[<<"Apache 2.0">>]}.
{<<"links">>,[{<<"GitHub">>,<<"https://example.com/{name}">>}]}.
{<<"name">>,<<"{name}">>}.
{<<"requirements">>,[{<<"decimal">>,[{<<"app">>,<<"decimal">>},{<<"optional">>,true},
  {<<"repository">>,<<"hexpm">>},{<<"requirement">>,<<"~> 2.0">>}]}]}.
{<<"version">>,<<"{version}">>}.
"""

LIB = """defmodule {mod} do
  @moduledoc \"\"\"
  The {name} package, as shipped in its Hex tarball.
  \"\"\"

  @doc \"\"\"
  Encodes a term for the {name} tests and returns it tagged.
  \"\"\"
  def encode(term), do: {{:ok, term}}
end
"""


def hex_tarball(
    name: str = "jason",
    version: str = "1.4.1",
    *,
    metadata: bytes | None = None,
    contents: bytes | None = None,
    version_file: bytes = b"3",
    checksum: str | None = None,
    lower: bool = False,
    drop: tuple[str, ...] = (),
    extra: tuple[tuple[str, bytes], ...] = (),
) -> bytes:
    meta = (
        metadata
        if metadata is not None
        else METADATA.replace("{name}", name).replace("{version}", version).encode()
    )
    mod = "".join(p.capitalize() for p in name.split("_"))
    if contents is None:
        contents = tar_bytes(
            [
                (f"lib/{name}.ex", LIB.format(mod=mod, name=name).encode()),
                ("mix.exs", f"defmodule {mod}.MixProject do\n  use Mix.Project\nend\n".encode()),
            ],
            gz=True,
        )
    inner = hashlib.sha256(version_file + meta + contents).hexdigest()
    inner = inner if lower else inner.upper()
    members = {
        "VERSION": version_file,
        "CHECKSUM": (checksum if checksum is not None else inner).encode(),
        "metadata.config": meta,
        "contents.tar.gz": contents,
    }
    items = [(k, v) for k, v in members.items() if k not in drop] + list(extra)
    return tar_bytes(items)
