"""Fetching llama.cpp's converters from a package index: a fake PEP 503 index on 127.0.0.1 serves a
small stand-in sdist (same layout as llama-cpp-python's), a broken one, or errors."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from quantize import converters
from quantize.errors import ConverterDownloadError, ConverterVerifyError

PREFIX = f"llama_cpp_python-{converters.VERSION}/vendor/llama.cpp/"


def fake_sdist(files: dict[str, bytes] | None = None) -> bytes:
    files = files or {
        "convert_hf_to_gguf.py": b"print('hf')\n",
        "convert_lora_to_gguf.py": b"print('lora')\n",
        "conversion/__init__.py": b"",
        "gguf-py/gguf/__init__.py": b"",
        "CMakeLists.txt": b"not extracted\n",
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(PREFIX + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class FakeIndex:
    """`/simple/llama-cpp-python/` links to `/files/<sdist>`; `status` forces an error answer."""

    def __init__(self, sdist: bytes, *, status: int = 200) -> None:
        self.sdist, self.status, self.requests = sdist, status, []
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                index.requests.append(self.path)
                if index.status != 200:
                    self.send_error(index.status)
                    return
                if self.path == f"/simple/{converters.PACKAGE}/":
                    body = (
                        f'<a href="../../files/{converters.SDIST}#sha256=00">{converters.SDIST}</a>'.encode()
                    )
                elif self.path == f"/files/{converters.SDIST}":
                    body = index.sdist
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/simple"

    def __enter__(self) -> FakeIndex:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "converters"
    monkeypatch.setenv("POTION_CONVERTERS_DIR", str(root))
    yield root


def test_fetches_verifies_extracts_once(cache):
    sdist = fake_sdist()
    digest = hashlib.sha256(sdist).hexdigest()
    with FakeIndex(sdist) as index:
        conv = converters.fetch_converters(index=index.url, expected_sha256=digest, progress=False)
        assert conv.hf_to_gguf.read_bytes() == b"print('hf')\n"
        assert conv.lora_to_gguf.is_file() and (conv.gguf_py / "gguf" / "__init__.py").is_file()
        assert not (conv.root / "CMakeLists.txt").exists()  # only the converters are kept
        assert conv.sdist_sha256 == digest
        again = converters.fetch_converters(index=index.url, expected_sha256=digest, progress=False)
        assert again == conv
        assert index.requests.count(f"/files/{converters.SDIST}") == 1  # cached: fetched once
    assert [p.name for p in cache.iterdir() if p.name.endswith(".partial")] == []


def test_a_converter_edited_in_the_cache_is_fetched_again(cache):
    sdist = fake_sdist()
    digest = hashlib.sha256(sdist).hexdigest()
    with FakeIndex(sdist) as index:
        conv = converters.fetch_converters(index=index.url, expected_sha256=digest, progress=False)
        conv.hf_to_gguf.write_text("print('tampered')\n")
        again = converters.fetch_converters(index=index.url, expected_sha256=digest, progress=False)
        assert again.hf_to_gguf.read_bytes() == b"print('hf')\n"
        assert index.requests.count(f"/files/{converters.SDIST}") == 2


def test_an_sdist_that_does_not_verify_is_refused_and_not_cached(cache):
    with FakeIndex(fake_sdist()) as index:
        with pytest.raises(ConverterVerifyError) as info:
            converters.fetch_converters(index=index.url, progress=False)  # the real pinned sha256
    assert f"expected {converters.SDIST_SHA256[:12]}" in info.value.user_message()
    assert "POTION_PACKAGE_INDEX" in info.value.user_message()
    assert list(cache.glob(f"{converters.VERSION}-*")) == []
    assert [p.name for p in cache.iterdir() if p.name.endswith(".partial")] == []


def test_an_sdist_without_the_converters_is_refused(cache):
    sdist = fake_sdist({"README.md": b"no converters here\n"})
    with FakeIndex(sdist) as index, pytest.raises(ConverterVerifyError, match="has no convert_hf_to_gguf.py"):
        converters.fetch_converters(index=index.url, expected_sha256=hashlib.sha256(sdist).hexdigest())


@pytest.mark.parametrize("status", [404, 500])
def test_an_index_that_fails_is_a_download_error(cache, status):
    with FakeIndex(b"", status=status) as index, pytest.raises(ConverterDownloadError) as info:
        converters.fetch_converters(index=index.url, progress=False)
    assert str(status) in info.value.message and "POTION_PACKAGE_INDEX" in info.value.user_message()


def test_an_index_that_does_not_answer(cache):
    with FakeIndex(b"") as index:
        url = index.url
    with pytest.raises(ConverterDownloadError, match="cannot fetch"):
        converters.fetch_converters(index=url, progress=False)  # the server is gone: connection refused
