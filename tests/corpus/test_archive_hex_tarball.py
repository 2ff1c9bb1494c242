"""Safe extraction edge cases and Hex tarball rules (hex_core format 3)."""

from __future__ import annotations

import gzip
import hashlib

import pytest
from hex_tarballs import METADATA, hex_tarball, tar_bytes

from corpus import archive
from corpus.erlang_terms import Atom, consult
from corpus.errors import HexTarballError, UnsafeArchive
from corpus.sources.hex_tarball import requirements, unpack

SMALL = archive.Limits(compressed=512 << 10, uncompressed=256 << 10, member=128 << 10, members=50)


def test_extracts_regular_files(tmp_path):
    data = tar_bytes(
        [("pkg/lib/a.ex", b"defmodule A do end"), ("pkg/lib", "dir", None), ("./pkg/b.ex", b"b")], gz=True
    )
    out = archive.extract(data, tmp_path / "out")
    assert out.files == ["pkg/b.ex", "pkg/lib/a.ex"]
    assert (tmp_path / "out/pkg/lib/a.ex").read_bytes() == b"defmodule A do end"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("../evil.ex", b"x")], "climbs out"),
        ([("a/../../evil.ex", b"x")], "climbs out"),
        ([("/etc/passwd", b"x")], "absolute"),
        ([("link", "sym", "/etc/passwd")], "link member"),
        ([("a.ex", b"x"), ("hard", "hard", "a.ex")], "link member"),
        ([("dev", "chr", None)], "device"),
        ([("pipe", "fifo", None)], "device"),
        ([("a.ex", b"1"), ("./a.ex", b"2")], "duplicate"),
        ([("caf\udce9.ex", b"x")], "not UTF-8"),
        ([("big.ex", b"x" * (200 << 10))], "over the"),
        ([(f"f{i}.ex", b"x" * (100 << 10)) for i in range(3)], "add up"),
        ([(f"f{i}", b"") for i in range(60)], "more than 50"),
    ],
)
def test_unsafe_archives_are_refused_and_nothing_written(tmp_path, members, message):
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchive, match=message):
        archive.extract(tar_bytes(members), dest, SMALL)
    assert not dest.exists()
    assert not (tmp_path / "evil.ex").exists()


def test_links_can_be_skipped_and_counted(tmp_path):
    out = archive.extract(tar_bytes([("a.ex", b"x"), ("l", "sym", "a.ex")]), tmp_path / "o", skip_links=True)
    assert out.files == ["a.ex"] and out.skipped_links == 1


def test_gzip_bomb_stops_at_the_cap():
    bomb = gzip.compress(b"\0" * (4 << 20))  # 4 MiB of zeros in ~4 KiB
    assert len(bomb) < 64 << 10  # small enough to pass the compressed cap
    with pytest.raises(UnsafeArchive, match="gzip bomb"):
        archive.members(bomb, SMALL)


def test_compressed_cap_and_corrupt_gzip():
    with pytest.raises(UnsafeArchive, match="archive is 600 KiB, over the 512 KiB cap"):
        archive.members(b"x" * (600 << 10), SMALL)
    good = tar_bytes([("a", b"x" * 1000)], gz=True)
    with pytest.raises(UnsafeArchive, match="corrupt gzip|not a valid tar"):
        archive.members(good[: len(good) // 2], SMALL)


def test_hex_tarball_reads_metadata_and_files():
    data = hex_tarball("jason", "1.4.1")
    pkg = unpack(data, outer_checksum=hashlib.sha256(data).hexdigest().upper())
    assert (pkg.name, pkg.version) == ("jason", "1.4.1")
    assert pkg.licenses == ["Apache 2.0"]
    assert pkg.requirements == [
        {
            "name": "decimal",
            "app": "decimal",
            "requirement": "~> 2.0",
            "optional": True,
            "repository": "hexpm",
        }
    ]
    assert set(pkg.files) == {"lib/jason.ex", "mix.exs"}


def test_checksum_case_and_length():
    data = hex_tarball()
    digest = hashlib.sha256(data).hexdigest()
    unpack(data, outer_checksum=digest.lower())
    unpack(data, outer_checksum=digest.upper())
    with pytest.raises(HexTarballError, match="64 hex digits"):
        unpack(data, outer_checksum=digest[:40])
    with pytest.raises(HexTarballError, match="outer checksum mismatch"):
        unpack(data, outer_checksum="0" * 64)
    with pytest.raises(HexTarballError, match="inner CHECKSUM .* 64 hex"):
        unpack(hex_tarball(checksum="ABC"))
    with pytest.raises(HexTarballError, match="inner CHECKSUM mismatch"):
        unpack(hex_tarball(checksum="A" * 64))
    unpack(hex_tarball(lower=True))  # an inner CHECKSUM in lower case is the same checksum


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"version_file": b"2"}, "VERSION is b'2'"),
        ({"version_file": b"three"}, "not 3"),
        ({"drop": ("metadata.config",)}, "missing metadata.config"),
        ({"drop": ("CHECKSUM", "VERSION")}, "missing VERSION, CHECKSUM"),
        ({"extra": (("evil.sh", b"rm -rf"),)}, "extra evil.sh"),
        ({"contents": b"\x1f\x8b\x08garbage"}, "contents.tar.gz"),
        ({"contents": tar_bytes([("../../x.ex", b"x")], gz=True)}, "climbs out"),
        ({"contents": tar_bytes([("l", "sym", "/etc")], gz=True)}, "link member"),
        ({"contents": gzip.compress(b"\0" * (1 << 20)) * 200}, "gzip bomb"),  # 200 gzip members of 1 MiB
        ({"metadata": b'{<<"name">>, os:cmd("rm -rf /")}.'}, "unexpected"),
        ({"metadata": b'{<<"name">>,<<"x">>}.'}, "lacks name or version"),
    ],
)
def test_bad_hex_tarballs(kwargs, message):
    with pytest.raises((HexTarballError, UnsafeArchive), match=message):
        unpack(hex_tarball(**kwargs))


def test_latin1_metadata_and_old_requirements_shape():
    meta = (
        METADATA.replace("{name}", "old")
        .replace("{version}", "0.1.0")
        .replace("A test package", "Caf\xe9 helpers")
        .split('{<<"requirements">>')[0]
        + '{<<"requirements">>,[[{<<"name">>,<<"poison">>},{<<"app">>,<<"poison">>},'
        '{<<"optional">>,false},{<<"requirement">>,<<"~> 3.0">>}]]}.\n{<<"version">>,<<"0.1.0">>}.\n'
    ).encode("latin-1")
    pkg = unpack(hex_tarball("old", "0.1.0", metadata=meta))
    assert pkg.metadata["description"] == "Café helpers"
    assert pkg.requirements[0]["name"] == "poison" and pkg.requirements[0]["optional"] is False


def test_erlang_terms_are_data_only():
    terms = consult('%% comment\n{a, \'Quoted\', [1, -2, 3.5, 16#ff], #{<<"k">> => "str\\n"}, <<>>}.\n')
    assert terms == [(Atom("a"), "Quoted", [1, -2, 3.5, 255], {"k": "str\n"}, "")]
    assert requirements({"plug": [("requirement", "~> 1.0")]})[0]["name"] == "plug"
    for bad in ("{fun() -> ok end}.", "{X}.", "{1 + 2}.", "{a"):
        with pytest.raises(HexTarballError):
            consult(bad)
