"""Hex.pm: the top packages by recent downloads, each one's latest non-retired release, its tarball
from the repository checked against the registry's checksum, unpacked safely into the cache.

    GET {api}/packages?sort=recent_downloads&page=N        package list (paginated, 100 a page)
    GET {api}/packages/NAME                                releases (newest first), retirements, meta
    GET {api}/packages/NAME/releases/VERSION               the release's checksum
    GET {repo}/tarballs/NAME-VERSION.tar                   the tarball
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from corpus import archive, licenses
from corpus.config import SourceConfig
from corpus.errors import CorpusError, FetchError
from corpus.sources.fetch import Fetched, fetch_each
from corpus.sources.hex_tarball import unpack
from corpus.sources.http import Http

API = "https://hex.pm/api"
REPO = "https://repo.hex.pm"


class HexClient:
    def __init__(self, api: str = API, repo: str = REPO, *, http: Http | None = None) -> None:
        self.api = api.rstrip("/")
        self.repo = repo.rstrip("/")
        self.http = http or Http(headers={"Accept": "application/json"})

    def _json(self, url: str):  # noqa: ANN202
        body = self.http.request("GET", url)
        try:
            return json.loads(body)
        except json.JSONDecodeError as exc:
            raise FetchError(f"{url}: not JSON ({exc.msg})", hint="the server answered garbage") from exc

    def top_packages(self, n: int) -> list[dict]:
        """The first `n` packages by recent downloads (following pages until enough or an empty page)."""
        out: list[dict] = []
        page = 1
        while len(out) < n:
            items = self._json(f"{self.api}/packages?sort=recent_downloads&page={page}")
            if not isinstance(items, list) or not items:
                break
            out.extend(items)
            page += 1
        return out[:n]

    def package(self, name: str) -> dict:
        return self._json(f"{self.api}/packages/{name}")

    def release(self, name: str, version: str) -> dict:
        return self._json(f"{self.api}/packages/{name}/releases/{version}")

    def tarball(self, name: str, version: str) -> bytes:
        return self.http.request("GET", f"{self.repo}/tarballs/{name}-{version}.tar")


def latest_release(pkg: dict) -> str | None:
    """The newest release that is not retired, preferring stable versions to pre-releases."""
    retired = set((pkg.get("retirements") or {}).keys())
    versions = [r["version"] for r in pkg.get("releases") or [] if r.get("version") not in retired]
    stable = [v for v in versions if "-" not in v]
    return (stable or versions or [None])[0]


def fetch_package(client: HexClient, name: str, cache: Path, pkg: dict | None = None) -> Fetched:
    """One package's latest release, unpacked under `cache/hex/NAME-VERSION` (reused when present)."""
    pkg = pkg if pkg and pkg.get("releases") else client.package(name)
    version = latest_release(pkg)
    if version is None:
        raise CorpusError(f"hex:{name} has no usable release", hint="every release is retired")
    dest = cache / "hex" / f"{name}-{version}"
    meta_file = dest / ".potion-hex.json"
    if not meta_file.is_file():
        release = client.release(name, version)
        checksum = release.get("outer_checksum") or release.get("checksum")
        if not checksum:
            raise CorpusError(f"hex:{name} {version}: the registry gives no checksum", hint="package skipped")
        data = client.tarball(name, version)
        hexpkg = unpack(data, outer_checksum=checksum)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{name}-"))
        try:
            archive.write_members(hexpkg.files, tmp / "src")
            info = {
                "name": name,
                "version": version,
                "licenses": hexpkg.licenses,
                "requirements": hexpkg.requirements,
                "checksum": checksum.lower(),
            }
            (tmp / ".potion-hex.json").write_text(json.dumps(info))
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)  # the folder appears complete or not at all
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    info = json.loads(meta_file.read_text())
    names = info["licenses"] or ((pkg.get("meta") or {}).get("licenses") or [])
    lic = " OR ".join(licenses.normalize(n) for n in names) if names else None
    return Fetched(
        f"hex:{name}", dest / "src", version=version, license=lic, info={"checksum": info["checksum"]}
    )


def fetch_source(src: SourceConfig, cache: Path) -> tuple[list[Fetched], list[dict]]:
    """Every package the source names (or the top N); a package whose tarball is bad is skipped and
    reported, a server that keeps failing stops the build (FetchError)."""
    http = Http(headers={"Accept": "application/json"}, cache=cache / "http")
    client = HexClient(src.url or API, src.repo_url or REPO, http=http)
    try:
        listed = [{"name": n} for n in src.packages] if src.packages else client.top_packages(src.top)
        return fetch_each(
            listed,
            lambda pkg: fetch_package(client, pkg["name"], cache, pkg),
            lambda pkg: f"hex:{pkg['name']}",
        )
    finally:
        http.close()
