"""The Hex.pm client against a local fake server that misbehaves: 429, 5xx, truncated and slow answers,
ETags, pagination, retired releases, bad checksums."""

from __future__ import annotations

import hashlib

import pytest
from fakes_http import FakeHttpServer, Reply
from hex_tarballs import hex_tarball

from corpus.config import SourceConfig
from corpus.errors import FetchError
from corpus.sources import hex as hexpm
from corpus.sources.http import USER_AGENT, Http


def _http(sleeps: list[float], **kw) -> Http:
    return Http(sleep=sleeps.append, backoff=0.01, timeout=kw.pop("timeout", 2.0), **kw)


def _package(name: str, versions: list[str], retired: tuple[str, ...] = ()) -> dict:
    return {
        "name": name,
        "releases": [{"version": v, "url": f"/api/packages/{name}/releases/{v}"} for v in versions],
        "retirements": {v: {"reason": "security"} for v in retired},
        "meta": {"licenses": ["Apache-2.0"]},
    }


def _serve_package(
    server: FakeHttpServer, name: str, version: str, *, tar: bytes | None = None, checksum: str | None = None
) -> bytes:
    tar = tar if tar is not None else hex_tarball(name, version)
    server.script(
        "GET",
        f"/api/packages/{name}/releases/{version}",
        Reply(json={"version": version, "checksum": checksum or hashlib.sha256(tar).hexdigest().upper()}),
    )
    server.script("GET", f"/repo/tarballs/{name}-{version}.tar", Reply(body=tar))
    return tar


def test_latest_release_skips_retired_and_prereleases():
    assert (
        hexpm.latest_release(_package("a", ["2.0.0-rc.1", "1.5.0", "1.4.0"], retired=("1.5.0",))) == "1.4.0"
    )
    assert hexpm.latest_release(_package("a", ["2.0.0-rc.1"])) == "2.0.0-rc.1"
    assert hexpm.latest_release(_package("a", ["1.0.0"], retired=("1.0.0",))) is None


def test_top_packages_paginates_with_backoff_and_user_agent(tmp_path):
    sleeps: list[float] = []
    with FakeHttpServer() as server:
        page1 = [_package(f"p{i}", ["1.0.0"]) for i in range(3)]
        page2 = [_package(f"q{i}", ["1.0.0"]) for i in range(3)]
        server.script(
            "GET",
            "/api/packages?sort=recent_downloads&page=1",
            Reply(429, headers={"Retry-After": "2"}),
            Reply(503),
            Reply(json=page1),
        )
        server.script(
            "GET",
            "/api/packages?sort=recent_downloads&page=2",
            Reply(json=page2, mode="truncate"),
            Reply(json=page2),
        )
        server.script("GET", "/api/packages?sort=recent_downloads&page=3", Reply(json=[]))
        client = hexpm.HexClient(f"{server.url}/api", f"{server.url}/repo", http=_http(sleeps))
        names = [p["name"] for p in client.top_packages(5)]
        assert names == ["p0", "p1", "p2", "q0", "q1"]
        assert sleeps[0] == 2.0  # Retry-After honoured
        assert len(sleeps) == 3  # 429, 503, truncated body
        assert all(h.get("User-Agent") == USER_AGENT for _, _, h, _ in server.requests)


def test_rate_limit_headers_delay_the_next_request():
    sleeps: list[float] = []
    now = [1000.0]
    with FakeHttpServer() as server:
        server.script(
            "GET",
            "/api/packages/a",
            Reply(
                json=_package("a", ["1.0.0"]),
                headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1030"},
            ),
        )
        client = hexpm.HexClient(f"{server.url}/api", http=_http(sleeps, clock=lambda: now[0]))
        client.package("a")
        client.package("a")
        assert sleeps == [30.0]


def test_etag_revalidation_uses_the_cache(tmp_path):
    with FakeHttpServer() as server:
        server.script(
            "GET", "/api/packages/a", Reply(json=_package("a", ["1.0.0"]), mode="etag", etag='"v1"')
        )
        http = Http(cache=tmp_path / "http", sleep=lambda s: None)
        client = hexpm.HexClient(f"{server.url}/api", http=http)
        first = client.package("a")
        second = client.package("a")
        assert first == second
        assert server.requests[1][2].get("If-None-Match") == '"v1"'
        assert server.requests[0][2].get("If-None-Match") is None


def test_slow_and_failing_servers_end_in_a_clear_error():
    sleeps: list[float] = []
    with FakeHttpServer() as server:
        server.script("GET", "/api/packages/slow", Reply(mode="slow"))
        server.script("GET", "/api/packages/down", Reply(502))
        server.script("GET", "/api/packages/limited", Reply(429, headers={"Retry-After": "3600"}))
        client = hexpm.HexClient(f"{server.url}/api", http=_http(sleeps, timeout=0.2, retries=1))
        with pytest.raises(FetchError, match="still failing after 2 attempts .*Timeout"):
            client.package("slow")
        with pytest.raises(FetchError, match="HTTP 502"):
            client.package("down")
        with pytest.raises(FetchError, match="wait 3600s"):
            client.package("limited")
        with pytest.raises(FetchError, match="HTTP 404"):
            client.package("missing")


def test_fetch_source_unpacks_good_packages_and_skips_bad_ones(tmp_path):
    with FakeHttpServer() as server:
        server.script(
            "GET",
            "/api/packages?sort=recent_downloads&page=1",
            Reply(
                json=[
                    _package("good", ["1.1.0", "1.0.0"], retired=("1.1.0",)),
                    _package("tampered", ["2.0.0"]),
                    _package("evil", ["0.1.0"]),
                ]
            ),
        )
        _serve_package(server, "good", "1.0.0")
        _serve_package(server, "tampered", "2.0.0", checksum="0" * 64)
        from hex_tarballs import tar_bytes

        _serve_package(
            server,
            "evil",
            "0.1.0",
            tar=hex_tarball("evil", "0.1.0", contents=tar_bytes([("../../outside.ex", b"x")], gz=True)),
        )
        src = SourceConfig(kind="hex", top=3, url=f"{server.url}/api", repo_url=f"{server.url}/repo")
        units, skipped = hexpm.fetch_source(src, tmp_path / "cache")
        assert [u.label for u in units] == ["hex:good"]
        assert units[0].version == "1.0.0" and units[0].license == "Apache-2.0"
        assert (units[0].root / "lib/good.ex").is_file()
        assert {s["label"]: s["reason"].split(":")[0] for s in skipped} == {
            "hex:tampered": "outer checksum mismatch",
            "hex:evil": "contents.tar.gz",
        }
        assert not (tmp_path / "outside.ex").exists()
        # cached: a second fetch downloads no tarball again
        before = server.count("GET", "/repo/tarballs/good-1.0.0.tar")
        hexpm.fetch_package(
            hexpm.HexClient(f"{server.url}/api", f"{server.url}/repo"),
            "good",
            tmp_path / "cache",
            _package("good", ["1.0.0"]),
        )
        assert server.count("GET", "/repo/tarballs/good-1.0.0.tar") == before


def _hex_config(tmp_path, url: str) -> str:
    import yaml

    tmp_path.mkdir(exist_ok=True)
    cfg = tmp_path / "hex.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "sources": [{"kind": "hex", "top": 2, "url": f"{url}/api", "repo_url": f"{url}/repo"}],
                "decontaminate": {"suites": False},
                "cache": str(tmp_path / "cache"),
                "workers": 1,
            }
        )
    )
    return str(cfg)


def test_build_from_hex_finishes_or_stops_cleanly(tmp_path, capsys, monkeypatch):
    from corpus.output import read_manifest
    from potion.cli import main

    monkeypatch.setattr(Http, "__post_init__", _fast_http_init(Http.__post_init__))
    with FakeHttpServer() as server:
        listing = [_package("good", ["1.0.0"]), _package("other_pkg", ["0.2.0"])]
        server.script("GET", "/api/packages?sort=recent_downloads&page=1", Reply(500), Reply(json=listing))
        _serve_package(server, "good", "1.0.0")
        _serve_package(server, "other_pkg", "0.2.0")
        out = tmp_path / "out"
        assert (
            main(["corpus", "build", "--config", _hex_config(tmp_path, server.url), "--out", str(out)]) == 0
        )
        m = read_manifest(out)
        assert [s["label"] for s in m["sources"]] == ["hex:good", "hex:other_pkg"]
        assert m["licenses"] == {"Apache-2.0": 2} and m["counts"]["dropped"] == {"tiny": 2}  # the mix.exs
        assert m["counts"]["stage1"]["train"] == 2 and m["counts"]["stage2"]["train"] > 0

    with FakeHttpServer() as down:
        down.script("GET", "/api/packages?sort=recent_downloads&page=1", Reply(503))
        capsys.readouterr()
        out2 = tmp_path / "out2"
        assert (
            main(["corpus", "build", "--config", _hex_config(tmp_path / "x", down.url), "--out", str(out2)])
            == 1
        )
        assert "still failing after" in capsys.readouterr().err
        assert not out2.exists() and not (tmp_path / ".out2.partial").exists()


def _fast_http_init(init):
    """Http as the build makes it, with no real waiting between retries."""

    def fast(self) -> None:
        self.backoff = 0.0
        self.sleep = lambda s: None
        init(self)

    return fast
