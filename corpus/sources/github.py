"""GitHub: repositories found by GraphQL search, sliced by creation date and stars past the search API's
1,000-result cap, each fetched as its default branch's tarball.

Needs GITHUB_TOKEN. Primary rate limits come from the query's `rateLimit { remaining resetAt }` (and the
`x-ratelimit-*` headers); secondary ones from 403/429 with `retry-after`. Licences from `licenseInfo`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from corpus import archive, licenses
from corpus.config import SourceConfig
from corpus.errors import CorpusError, FetchError, SourceError
from corpus.sources.fetch import Fetched, fetch_each
from corpus.sources.http import Http

API = "https://api.github.com"
CAP = 1000
PAGE = 100
QUERY = """
query($q: String!, $first: Int!, $after: String) {
  rateLimit { cost remaining resetAt }
  search(query: $q, type: REPOSITORY, first: $first, after: $after) {
    repositoryCount
    pageInfo { hasNextPage endCursor }
    nodes { ... on Repository {
      nameWithOwner stargazerCount createdAt isFork isArchived
      licenseInfo { spdxId }
      defaultBranchRef { name }
    } }
  }
}
"""


@dataclass(frozen=True)
class Slice:
    start: date
    end: date
    stars_min: int
    stars_max: int | None = None

    def query(self, base: str) -> str:
        stars = f"{self.stars_min}..{self.stars_max}" if self.stars_max is not None else f">={self.stars_min}"
        return f"{base} stars:{stars} created:{self.start.isoformat()}..{self.end.isoformat()}"

    def split(self) -> list[Slice] | None:
        """Two halves by date, else by stars; None when it cannot be cut further."""
        if self.end > self.start:
            mid = self.start + (self.end - self.start) / 2
            return [
                Slice(self.start, mid, self.stars_min, self.stars_max),
                Slice(mid + timedelta(days=1), self.end, self.stars_min, self.stars_max),
            ]
        top = self.stars_max if self.stars_max is not None else max(self.stars_min * 4, self.stars_min + 100)
        if top <= self.stars_min:
            return None
        mid = (self.stars_min + top) // 2
        upper = Slice(self.start, self.end, mid + 1, self.stars_max)
        return [Slice(self.start, self.end, self.stars_min, mid), upper]


class GitHubClient:
    def __init__(
        self, api: str = API, *, token: str | None = None, http: Http | None = None, low_water: int = 5
    ) -> None:
        token = token if token is not None else os.environ.get("GITHUB_TOKEN")
        if not token:
            raise SourceError(
                "GitHub search needs GITHUB_TOKEN", hint="export GITHUB_TOKEN=... (a read-only token)"
            )
        self.api = api.rstrip("/")
        self.http = http or Http()
        self.http.client.headers["Authorization"] = f"bearer {token}"
        self.low_water = low_water

    def graphql(self, variables: dict) -> dict:
        url = f"{self.api}/graphql"
        for _ in range(self.http.retries + 1):
            body = self.http.request("POST", url, json_body={"query": QUERY, "variables": variables})
            try:
                data = json.loads(body)
            except json.JSONDecodeError as exc:
                raise FetchError(f"{url}: not JSON ({exc.msg})", hint="the server answered garbage") from exc
            errors = data.get("errors") or []
            if any(e.get("type") == "RATE_LIMITED" for e in errors):
                self.http.wait(self.http.backoff, url, "GraphQL rate limited")
                continue
            if errors:
                raise FetchError(
                    f"{url}: {errors[0].get('message', errors[0])}", hint="check the search query"
                )
            rate = (data.get("data") or {}).get("rateLimit") or {}
            if rate and rate.get("remaining", CAP) < self.low_water and rate.get("resetAt"):
                reset = datetime.fromisoformat(rate["resetAt"].replace("Z", "+00:00")).timestamp()
                self.http.wait(max(0.0, reset - self.http.clock()), url, "GraphQL points spent")
            return data["data"]
        raise FetchError(f"{url}: still rate limited", hint="rerun later; the build resumes")

    def count(self, q: str) -> int:
        return self.graphql({"q": q, "first": 1, "after": None})["search"]["repositoryCount"]

    def repositories(self, q: str, limit: int) -> list[dict]:
        out, after = [], None
        while len(out) < limit:
            search = self.graphql({"q": q, "first": min(PAGE, limit - len(out)), "after": after})["search"]
            out.extend(n for n in search["nodes"] if n)
            if not search["pageInfo"]["hasNextPage"]:
                break
            after = search["pageInfo"]["endCursor"]
        return out[:limit]

    def search(self, base: str, first: Slice, limit: int) -> list[dict]:
        """Repositories for `base` over `first`, cutting slices until each has at most 1,000 results."""
        todo, found, seen = [first], [], set()
        while todo and len(found) < limit:
            piece = todo.pop(0)
            n = self.count(piece.query(base))
            if n > CAP:
                halves = piece.split()
                if halves:
                    todo = halves + todo
                    continue
            for repo in self.repositories(piece.query(base), min(n, CAP, limit - len(found))):
                if repo["nameWithOwner"] not in seen:
                    seen.add(repo["nameWithOwner"])
                    found.append(repo)
        return found[:limit]

    def tarball(self, name_with_owner: str, ref: str) -> bytes:
        return self.http.request("GET", f"{self.api}/repos/{name_with_owner}/tarball/{ref}")


def fetch_repo(client: GitHubClient, repo: dict, cache: Path) -> Fetched:
    name = repo["nameWithOwner"]
    ref = (repo.get("defaultBranchRef") or {}).get("name")
    if not ref:
        raise CorpusError(f"github:{name} has no default branch", hint="an empty repository")
    dest = cache / "github" / name.replace("/", "__")
    marker = dest / ".potion-github.json"
    if not marker.is_file():
        data = client.tarball(name, ref)
        files, links = archive.members(data, skip_links=True)
        tops = {k.split("/", 1)[0] for k in files}
        strip = len(tops) == 1 and all("/" in k for k in files)  # GitHub's `owner-repo-sha/` folder
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".gh-"))
        try:
            archive.write_members(
                {(k.split("/", 1)[1] if strip else k): v for k, v in files.items()}, tmp / "src"
            )
            spdx = (repo.get("licenseInfo") or {}).get("spdxId")
            (tmp / ".potion-github.json").write_text(
                json.dumps(
                    {
                        "name": name,
                        "ref": ref,
                        "license": spdx,
                        "stars": repo.get("stargazerCount"),
                        "skipped_links": links,
                    }
                )
            )
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    info = json.loads(marker.read_text())
    spdx = info.get("license")
    lic = licenses.normalize(spdx) if spdx and spdx != "NOASSERTION" else None
    return Fetched(
        f"github:{name}",
        dest / "src",
        version=ref,
        license=lic,
        info={"stars": info.get("stars"), "skipped_links": info.get("skipped_links", 0)},
    )


def fetch_source(src: SourceConfig, cache: Path) -> tuple[list[Fetched], list[dict]]:
    start, end = (date.fromisoformat(str(d)) for d in src.created)
    http = Http(cache=cache / "http")
    try:
        client = GitHubClient(src.url or API, http=http)
        repos = client.search(src.query, Slice(start, end, src.min_stars), src.max_repos)
        return fetch_each(
            [r for r in repos if not r.get("isFork")],
            lambda repo: fetch_repo(client, repo, cache),
            lambda repo: f"github:{repo['nameWithOwner']}",
        )
    finally:
        http.close()
