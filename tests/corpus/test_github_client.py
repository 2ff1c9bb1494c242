"""The GitHub GraphQL client against a local fake: slicing past 1,000 results, rate limits, tarballs."""

from __future__ import annotations

import json
from datetime import date

import pytest
from fakes_http import FakeHttpServer, Reply
from hex_tarballs import tar_bytes

from corpus.config import SourceConfig
from corpus.errors import FetchError, SourceError
from corpus.sources import github
from corpus.sources.http import Http


class GraphQLFake(FakeHttpServer):
    """Answers search queries from a table: created date -> repositories; counts what each slice holds."""

    def __init__(self, repos: list[dict]) -> None:
        super().__init__()
        self.repos = repos
        self.queries: list[str] = []
        self.script("POST", "/graphql", Reply())  # placeholder, answered by `answer`

    def _next(self, method, path):  # noqa: ANN001, ANN202
        if (method, path) != ("POST", "/graphql"):
            return super()._next(method, path)
        body = json.loads(self.requests[-1][3])
        q = body["variables"]["q"]
        self.queries.append(q)
        created = q.split("created:")[1].split()[0]
        start, end = (date.fromisoformat(d) for d in created.split(".."))
        stars = q.split("stars:")[1].split()[0]
        lo, hi = (int(stars[2:]), None) if stars.startswith(">=") else map(int, stars.split(".."))
        hits = [
            r
            for r in self.repos
            if start <= date.fromisoformat(r["createdAt"]) <= end
            and r["stargazerCount"] >= lo
            and (hi is None or r["stargazerCount"] <= hi)
        ]
        first, after = body["variables"]["first"], body["variables"]["after"]
        offset = int(after or 0)
        page = hits[offset : offset + first]
        return Reply(
            json={
                "data": {
                    "rateLimit": {"cost": 1, "remaining": 4000, "resetAt": "2030-01-01T00:00:00Z"},
                    "search": {
                        "repositoryCount": len(hits),
                        "pageInfo": {
                            "hasNextPage": offset + first < min(len(hits), 1000),
                            "endCursor": str(offset + first),
                        },
                        "nodes": page,
                    },
                }
            }
        )


def _repo(i: int, day: str, stars: int = 50) -> dict:
    return {
        "nameWithOwner": f"o/r{i}",
        "stargazerCount": stars,
        "createdAt": day,
        "isFork": False,
        "licenseInfo": {"spdxId": "MIT"},
        "defaultBranchRef": {"name": "main"},
    }


def test_search_slices_by_date_past_the_cap(monkeypatch):
    repos = [_repo(i, f"2020-01-0{1 + i % 4}") for i in range(1800)]  # 450 a day over 4 days
    with GraphQLFake(repos) as server:
        client = github.GitHubClient(server.url, token="t", http=Http(sleep=lambda s: None))
        found = client.search("language:Elixir", github.Slice(date(2020, 1, 1), date(2020, 1, 4), 10), 5000)
        assert len(found) == 1800 and len({r["nameWithOwner"] for r in found}) == 1800
        assert any("created:2020-01-01..2020-01-02" in q for q in server.queries)
        assert all(h.get("Authorization") == "bearer t" for _, _, h, _ in server.requests)


def test_search_slices_by_stars_within_one_day():
    repos = [_repo(i, "2020-01-01", stars=10 + i % 200) for i in range(1500)]
    with GraphQLFake(repos) as server:
        client = github.GitHubClient(server.url, token="t", http=Http(sleep=lambda s: None))
        found = client.search("language:Elixir", github.Slice(date(2020, 1, 1), date(2020, 1, 1), 10), 5000)
        assert len(found) == 1500
        assert any("stars:10.." in q for q in server.queries)


def test_token_required(monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    with pytest.raises(SourceError, match="GITHUB_TOKEN"):
        github.GitHubClient("http://127.0.0.1:9", http=Http())


def test_rate_limits_primary_and_secondary():
    sleeps: list[float] = []
    limited = {"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded"}]}
    spent = {
        "data": {
            "rateLimit": {"cost": 1, "remaining": 0, "resetAt": "1970-01-01T00:16:40Z"},
            "search": {
                "repositoryCount": 7,
                "pageInfo": {"hasNextPage": False, "endCursor": None},
                "nodes": [],
            },
        }
    }
    with FakeHttpServer() as server:
        server.script(
            "POST",
            "/graphql",
            Reply(403, headers={"retry-after": "5"}),
            Reply(json=limited),
            Reply(json=spent),
        )
        client = github.GitHubClient(
            server.url, token="t", http=Http(sleep=sleeps.append, backoff=0.5, clock=lambda: 900.0)
        )
        assert client.count("x") == 7
        assert sleeps == [5.0, 0.5, 100.0]  # secondary (retry-after), RATE_LIMITED, primary until resetAt


def test_graphql_errors_are_clear():
    with FakeHttpServer() as server:
        server.script("POST", "/graphql", Reply(json={"errors": [{"message": "bad query syntax"}]}))
        client = github.GitHubClient(server.url, token="t", http=Http(sleep=lambda s: None))
        with pytest.raises(FetchError, match="bad query syntax"):
            client.count("x")


def test_fetch_source_downloads_default_branch_tarballs(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    repos = [
        _repo(1, "2021-05-05"),
        {**_repo(2, "2021-05-06"), "licenseInfo": {"spdxId": "NOASSERTION"}},
        {**_repo(3, "2021-05-07"), "isFork": True},
    ]
    with GraphQLFake(repos) as server:
        server.script(
            "GET",
            "/repos/o/r1/tarball/main",
            Reply(
                body=tar_bytes(
                    [("o-r1-abc/lib/r1.ex", b"defmodule R1 do end"), ("o-r1-abc/l", "sym", "lib")], gz=True
                )
            ),
        )
        server.script("GET", "/repos/o/r2/tarball/main", Reply(body=b"not a tarball"))
        src = SourceConfig(kind="github", url=server.url, created=["2021-01-01", "2021-12-31"], min_stars=1)
        units, skipped = github.fetch_source(src, tmp_path)
        assert [u.label for u in units] == ["github:o/r1"]
        assert units[0].license == "MIT" and (units[0].root / "lib/r1.ex").is_file()
        assert units[0].info["skipped_links"] == 1
        assert skipped[0]["label"] == "github:o/r2" and "not a valid tar" in skipped[0]["reason"]
