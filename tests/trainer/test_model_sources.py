"""Model sources: a local HF directory, a hub id (fake hub on 127.0.0.1), a GGUF (the default model, e2e)."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from trainer.errors import ModelSourceError
from trainer.model import BASE_SIDECAR, architecture_of, resolve_base, weights_sha256

COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


class FakeModelHub:
    """What `huggingface_hub.snapshot_download` asks: repo info, the file tree, then each file."""

    def __init__(self, repos: dict[str, Path]) -> None:
        self.repos = repos
        self.paths: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                hub.serve(self, body=False)

            def do_GET(self) -> None:
                hub.serve(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def files(self, repo: str) -> dict[str, bytes]:
        root = self.repos[repo]
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    def reply(self, h: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict, body: bool) -> None:
        h.send_response(status)
        for k, v in {"X-Repo-Commit": COMMIT, "Content-Length": str(len(data)), **headers}.items():
            h.send_header(k, v)
        h.end_headers()
        if body:
            h.wfile.write(data)

    def serve(self, h: BaseHTTPRequestHandler, *, body: bool) -> None:
        path = unquote(urlparse(h.path).path)
        self.paths.append(path)
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"]:
            repo = "/".join(parts[2:4])
            if repo not in self.repos:
                return self.reply(h, 404, b"", {"X-Error-Code": "RepoNotFound"}, body)
            files = self.files(repo)
            if parts[4] == "revision":
                info = {"id": repo, "sha": COMMIT, "siblings": [{"rfilename": f} for f in files]}
            else:  # tree
                info = [
                    {"type": "file", "path": f, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                    for f, d in files.items()
                ]
            return self.reply(h, 200, json.dumps(info).encode(), {"Content-Type": "application/json"}, body)
        repo, filename = "/".join(parts[:2]), "/".join(parts[4:])
        data = self.files(repo).get(filename) if repo in self.repos else None
        if data is None:
            return self.reply(h, 404, b"", {"X-Error-Code": "EntryNotFound"}, body)
        etag = f'"{hashlib.sha256(data).hexdigest()}"'
        self.reply(h, 200, data, {"ETag": etag, "Accept-Ranges": "bytes"}, body)


@pytest.fixture
def hub_env(tmp_path, monkeypatch):
    def start(repos: dict[str, Path]) -> FakeModelHub:
        hub = FakeModelHub(repos)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        monkeypatch.delenv("HF_HUB_CACHE", raising=False)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        return hub

    yield start


def test_local_hf_directory(tiny_models):
    base = resolve_base(str(tiny_models("mistral")))
    assert base.hf_dir == str(tiny_models("mistral"))
    assert base.architecture == "MistralForCausalLM" == architecture_of(Path(base.hf_dir))
    assert len(base.sha256) == 64 and base.sha256 == weights_sha256(Path(base.hf_dir))


def test_hub_id_through_a_fake_hub(tiny_models, hub_env, tmp_path):
    hub = hub_env({"potion-test/tiny-mistral": tiny_models("mistral")})
    base = resolve_base("potion-test/tiny-mistral")
    assert Path(base.hf_dir).is_relative_to(tmp_path / "hf-home")
    assert (Path(base.hf_dir) / "tokenizer.json").is_file()
    assert base.sha256 == weights_sha256(tiny_models("mistral"))  # the same weights, the same hash
    assert any(p.startswith("/api/models/potion-test/tiny-mistral") for p in hub.paths)
    with pytest.raises(ModelSourceError, match="no hub repository nobody/none"):
        resolve_base("nobody/none")


def test_unreachable_hub_and_unknown_specs(monkeypatch, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with pytest.raises(ModelSourceError, match="cannot download potion-test/x"):
        resolve_base("potion-test/x")
    with pytest.raises(ModelSourceError, match="cannot tell what model"):
        resolve_base("not a model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelSourceError, match="not a Hugging Face model directory"):
        resolve_base(str(tmp_path / "empty"))


@pytest.mark.e2e
@pytest.mark.slow
def test_gguf_is_rebuilt_once_as_an_hf_checkpoint(potion_home, monkeypatch):
    """The default model's GGUF -> a cached HF copy with a sha256 sidecar, that loads in NF4."""
    import torch
    from transformers import AutoModelForCausalLM

    from potion import registry
    from trainer.config import TrainConfig
    from trainer.translate import bnb_config

    real = Path(registry.resolve(registry.DEFAULT_MODEL))
    monkeypatch.setattr(registry, "resolve", lambda spec, **kw: real)
    base = resolve_base("qwen2.5-coder-0.5b", progress=False)
    hf = Path(base.hf_dir)
    assert hf.parent.name == "hf-base" and hf.is_relative_to(potion_home)
    sidecar = json.loads((hf / BASE_SIDECAR).read_text())
    assert sidecar["weights_sha256"] == base.sha256 and len(sidecar["source_sha256"]) == 64
    assert base.architecture == "Qwen2ForCausalLM"
    assert resolve_base("qwen2.5-coder-0.5b", progress=False) == base  # cached: not rebuilt
    cfg = TrainConfig(model="qwen2.5-coder-0.5b", data="d")
    model = AutoModelForCausalLM.from_pretrained(hf, quantization_config=bnb_config(cfg), dtype=torch.float32)
    assert type(model.model.layers[0].mlp.up_proj).__name__ == "Linear4bit"
