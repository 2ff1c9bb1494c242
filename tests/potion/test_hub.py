"""`hf:` models against a fake Hugging Face hub served on 127.0.0.1 by the test itself."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

from potion import hub, registry
from potion.errors import ModelCorrupt, ModelDownloadError, ModelNotFound

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "potion-test/Tiny-GGUF"
SPEC = f"hf:{REPO}/tiny-q4.gguf"


class FakeHub:
    """The two endpoints hf_hub_download uses: HEAD and (range) GET on /{repo}/resolve/{rev}/{file}.

    `drop_after`: send only that many body bytes per GET, then close the connection (a flaky network).
    `dead_after_drop`: after the first drop, close every connection without answering (the network is gone).
    """

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], bytes] = {}
        self.drop_after: int | None = None
        self.dead_after_drop = False
        self.dropped = False
        self.not_a_hub = False  # answer 200 without the hub's headers, like a captive portal
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        hub_ = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_HEAD(self) -> None:
                hub_.serve(self, body=False)

            def do_GET(self) -> None:
                hub_.serve(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def serve(self, h: BaseHTTPRequestHandler, *, body: bool) -> None:
        rng = h.headers.get("Range")
        self.requests.append((h.command, h.path, rng))
        if body and self.dropped and self.dead_after_drop:
            h.close_connection = True  # no status line at all: "server disconnected"
            return
        if self.not_a_hub:
            h.send_response(200)
            h.send_header("Content-Length", "0")
            return h.end_headers()
        parts = unquote(h.path.split("?")[0]).strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self.error(h, 404, "RepoNotFound")
        repo, filename = "/".join(parts[:2]), "/".join(parts[4:])
        if not any(r == repo for r, _ in self.files):
            return self.error(h, 404, "RepoNotFound")
        data = self.files.get((repo, filename))
        if data is None:
            return self.error(h, 404, "EntryNotFound")
        start = int(rng.removeprefix("bytes=").split("-")[0]) if rng and body else 0
        h.send_response(206 if start else 200)
        h.send_header("X-Repo-Commit", COMMIT)
        h.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Length", str(len(data) - start))
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.end_headers()
        if not body:
            return
        payload = data[start:]
        if self.drop_after is not None and len(payload) > self.drop_after:
            h.wfile.write(payload[: self.drop_after])
            h.wfile.flush()
            h.close_connection = True
            self.dropped = True
            return
        h.wfile.write(payload)

    @staticmethod
    def error(h: BaseHTTPRequestHandler, status: int, code: str) -> None:
        h.send_response(status)
        h.send_header("X-Error-Code", code)
        h.send_header("X-Repo-Commit", COMMIT)
        h.send_header("Content-Length", "0")
        h.end_headers()


@pytest.fixture
def fake_hub(tmp_path, potion_home, monkeypatch) -> Iterator[FakeHub]:
    server = FakeHub()
    server.thread.start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    # huggingface_hub waits 1 s before each resume; the drops here are instant, the wait only slows tests.
    import huggingface_hub.file_download as fd

    monkeypatch.setattr(fd.time, "sleep", lambda _s: None)
    # Real downloads are written in 10 MB pieces; tiny ones here, so a drop mid-file keeps what came before.
    monkeypatch.setattr(fd.constants, "DOWNLOAD_CHUNK_SIZE", 256)
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def tiny_model(make_gguf) -> bytes:
    tensors = [("token_embd.weight", [64, 16], 0), ("output.weight", [256, 4], 12)]
    return make_gguf(
        "hub-model.gguf", metadata={"general.architecture": "qwen2"}, tensors=tensors
    ).read_bytes()


def test_parse_hf_spec():
    assert hub.parse_hf_spec("hf:Qwen/Repo-GGUF/model.gguf") == hub.HfSpec("Qwen/Repo-GGUF", "model.gguf")
    spec = hub.parse_hf_spec("hf:o/r/sub/dir/m.Q4_K_M.gguf")
    assert (spec.repo_id, spec.filename, spec.revision) == ("o/r", "sub/dir/m.Q4_K_M.gguf", None)
    assert hub.parse_hf_spec("hf:o/r@v1.0/m.gguf").revision == "v1.0"
    assert str(hub.parse_hf_spec("hf:o/r@v1.0/a/m.gguf")) == "hf:o/r@v1.0/a/m.gguf"
    for bad, why in [
        ("hf:owner/repo", "does not name a file"),
        ("hf:owner/repo/model.safetensors", "not a .gguf file"),
        ("hf:own er/repo/m.gguf", "not a valid hub model spec"),
        ("hf:o/r/../m.gguf", "not a valid hub model spec"),
    ]:
        with pytest.raises(ModelNotFound, match=why) as info:
            hub.parse_hf_spec(bad)
        assert "hf:OWNER/REPO/FILE.gguf" in info.value.user_message() or "GGUF" in info.value.user_message()


def test_download_then_offline_from_cache(fake_hub, tiny_model, tmp_path):
    fake_hub.files[(REPO, "tiny-q4.gguf")] = tiny_model
    path = registry.resolve(SPEC)
    assert path.read_bytes() == tiny_model
    assert path.is_relative_to(tmp_path / "hf-home" / "hub")
    assert ("HEAD", f"/{REPO}/resolve/main/tiny-q4.gguf", None) in fake_hub.requests
    # The cached file serves without the hub, with or without pull.
    fake_hub.server.shutdown()
    fake_hub.server.server_close()
    assert registry.resolve(SPEC) == path
    assert registry.resolve(SPEC, pull=False) == path


def test_subfolder_and_revision(fake_hub, tiny_model):
    fake_hub.files[(REPO, "q4/deep/model.gguf")] = tiny_model
    path = registry.resolve(f"hf:{REPO}@v2/q4/deep/model.gguf")
    assert path.read_bytes() == tiny_model
    assert any(p == f"/{REPO}/resolve/v2/q4/deep/model.gguf" for _, p, _ in fake_hub.requests)


def test_unreachable_hub(potion_home, tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with pytest.raises(ModelDownloadError) as info:
        registry.resolve(SPEC)
    msg = info.value.user_message()
    assert f"cannot reach the Hugging Face hub at http://127.0.0.1:{port}" in msg
    assert "download the file and pass its path, or set HF_ENDPOINT" in msg
    assert "\n" not in msg
    with pytest.raises(ModelNotFound, match="not downloaded yet"):
        registry.resolve(SPEC, pull=False)


def test_missing_repo_and_file(fake_hub, tiny_model):
    fake_hub.files[(REPO, "tiny-q4.gguf")] = tiny_model
    with pytest.raises(ModelNotFound, match="no hub repository nobody/none"):
        registry.resolve("hf:nobody/none/x.gguf")
    with pytest.raises(ModelNotFound, match=f"{REPO} has no file other.gguf"):
        registry.resolve(f"hf:{REPO}/other.gguf")


def test_server_that_is_not_a_hub(fake_hub):
    fake_hub.not_a_hub = True
    with pytest.raises(ModelDownloadError, match="does not answer like a Hugging Face hub") as info:
        registry.resolve(SPEC)
    assert "check HF_ENDPOINT" in info.value.user_message()


def test_hub_file_that_is_not_gguf(fake_hub):
    fake_hub.files[(REPO, "fake.gguf")] = b"<html>Sign in to continue</html>" * 4
    with pytest.raises(ModelCorrupt, match="not a GGUF model"):
        registry.resolve(f"hf:{REPO}/fake.gguf")


def test_flaky_connection_resumes_within_one_call(fake_hub, tiny_model):
    fake_hub.files[(REPO, "tiny-q4.gguf")] = tiny_model
    fake_hub.drop_after = len(tiny_model) // 3 + 1
    path = registry.resolve(SPEC)
    assert path.read_bytes() == tiny_model
    ranges = [r for m, _, r in fake_hub.requests if m == "GET" and r]
    assert ranges and all(r.startswith("bytes=") for r in ranges)


def test_dropped_download_fails_cleanly(fake_hub, tiny_model, tmp_path):
    fake_hub.files[(REPO, "tiny-q4.gguf")] = tiny_model
    fake_hub.drop_after = 300  # more than one 256-byte write, so there is something to resume from
    fake_hub.dead_after_drop = True
    with pytest.raises(ModelDownloadError) as info:
        registry.resolve(SPEC)
    msg = info.value.user_message()
    assert "\n" not in msg and f"downloading {SPEC}" in msg and "run the command again" in msg
    # huggingface_hub tried to resume from the last byte it wrote before giving up...
    assert any(m == "GET" and r == "bytes=256-" for m, _, r in fake_hub.requests)
    # ...and left nothing that could pass for the model: no snapshot entry, no partial blob.
    cache = tmp_path / "hf-home" / "hub"
    assert [p for p in cache.rglob("*") if p.is_file() and "blobs" in p.parts] == []
    assert not [p for p in cache.rglob("*.gguf")]
    with pytest.raises(ModelNotFound, match="not downloaded yet"):
        registry.resolve(SPEC, pull=False)
    # The network comes back: the next call downloads it whole.
    fake_hub.drop_after, fake_hub.dead_after_drop = None, False
    assert registry.resolve(SPEC).read_bytes() == tiny_model


def test_hf_hub_offline_env(fake_hub, tiny_model, monkeypatch):
    fake_hub.files[(REPO, "tiny-q4.gguf")] = tiny_model
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelDownloadError, match="HF_HUB_OFFLINE is set"):
        registry.resolve(SPEC)
    assert fake_hub.requests == []
    monkeypatch.delenv("HF_HUB_OFFLINE")
    path = registry.resolve(SPEC)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fake_hub.requests.clear()
    assert registry.resolve(SPEC) == path
    assert fake_hub.requests == []


def test_verify_checks_the_hub_sha256(fake_hub, tiny_model):
    fake_hub.files[(REPO, "tiny-q4.gguf")] = tiny_model
    path = registry.pull(SPEC, progress=False)
    assert registry.verify(SPEC) == path
    blob = path.resolve()
    blob.write_bytes(tiny_model[:-1] + b"\x01")
    with pytest.raises(ModelCorrupt, match="does not match the hub's sha256"):
        registry.verify(SPEC)


def test_pull_shows_a_progress_bar(fake_hub, tiny_model, capsys):
    fake_hub.files[(REPO, "tiny-q4.gguf")] = tiny_model
    registry.pull(SPEC, progress=True)
    assert "downloading" in capsys.readouterr().err


def test_hub_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "h"))
    assert hub.hub_cache_dir() == tmp_path / "h" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "c"))
    assert hub.hub_cache_dir() == Path(tmp_path / "c")
