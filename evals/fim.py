"""Fill-in-the-middle evaluation on held-out Elixir files, through the editor's own pipeline.

Items blank one line of a function body (the cursor after its indentation) or a whole function body (the
cursor where the body's first line starts). Files are split by a hash of their path into a tuning half and
a held-out half, so defaults chosen on one are confirmed on files never looked at. Each item is answered
by a `Variant`: the shared pipeline (`potion.completion`) with some `CompletionSettings`, or the plain-PSM
baseline (1,500 characters before the cursor, 500 after, indentation kept, greedy, first line). Scores:
exact match, edit similarity, and whether the file still compiles with the answer inserted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from evals.metrics import edit_similarity, exact_match
from evals.sandbox import Sandbox
from potion import completion
from potion.backends import Backend
from potion.completion import DEFAULT_SETTINGS, CompletionSettings, CompletionStream
from potion.elixir import analyze
from potion.prompts import TEMPLATES, CompletionPrompt

COMPILE_CHECK = Path(__file__).with_name("compile_check.exs")
PLAIN_PREFIX_CHARS, PLAIN_SUFFIX_CHARS = 1500, 500


@dataclass(frozen=True)
class FimItem:
    id: str
    path: str  # relative to the folder
    kind: str  # "line" | "body"
    prefix: str
    suffix: str
    middle: str  # what the developer wrote, as it would be inserted at the cursor
    split: str  # "tune" | "holdout"


@dataclass(frozen=True)
class Variant:
    """One way of answering: the pipeline with `settings` (and other files' chunks when `extra_files`),
    or the plain-PSM baseline when `settings` is None."""

    name: str
    settings: CompletionSettings | None
    extra_files: bool = False


PLAIN = Variant("plain-psm", None)


def split_of(path: str) -> str:
    return "tune" if hashlib.sha1(path.encode()).digest()[0] % 2 == 0 else "holdout"


def _heredoc_lines(lines: list[str]) -> set[int]:
    inside, rows = False, set()
    for i, line in enumerate(lines):
        if inside:
            rows.add(i)
        if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
            inside = not inside
            rows.add(i)
    return rows


def _file_items(text: str, rel: str) -> Iterator[FimItem]:
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    in_strings = _heredoc_lines(lines)
    split = split_of(rel)
    for module in analyze(text).modules:
        for function in module.functions:
            for clause in function.clauses:
                head = lines[clause.line] if clause.line < len(lines) else ""
                body = range(clause.line + 1, clause.end_line)
                if not head.rstrip().endswith(" do") or not 1 <= len(body) <= 12:
                    continue
                for row in body:
                    code = lines[row].strip()
                    if row in in_strings or len(code) < 10 or code.startswith(("#", "@", "end")):
                        continue
                    indent = lines[row][: len(lines[row]) - len(lines[row].lstrip())]
                    cut = offsets[row] + len(indent)
                    yield FimItem(
                        f"{rel}:{row + 1}:line", rel, "line", text[:cut], text[cut + len(code) :], code, split
                    )
                if 2 <= len(body) <= 8 and not any(r in in_strings for r in body):
                    first = lines[body[0]]
                    indent = first[: len(first) - len(first.lstrip())]
                    start = offsets[body[0]] + len(indent)
                    end = offsets[body[-1]] + len(lines[body[-1]])
                    middle = text[start:end]
                    yield FimItem(
                        f"{rel}:{clause.line + 1}:body", rel, "body", text[:start], text[end:], middle, split
                    )


def extract_items(
    folder: Path, *, split: str, count: int, seed: int = 0, body_share: float = 0.2
) -> list[FimItem]:
    """`count` items of one split of `folder`'s .ex files: a seeded sample, `body_share` of them bodies."""
    folder = Path(folder)
    by_kind: dict[str, list[FimItem]] = {"line": [], "body": []}
    for path in sorted(folder.rglob("*.ex")):
        rel = str(path.relative_to(folder))
        if split_of(rel) != split:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for item in _file_items(text, rel):
            by_kind[item.kind].append(item)
    rng = random.Random(f"{seed}:{split}")
    n_body = min(len(by_kind["body"]), round(count * body_share))
    chosen = rng.sample(by_kind["body"], n_body) + rng.sample(
        by_kind["line"], min(len(by_kind["line"]), count - n_body)
    )
    return sorted(chosen, key=lambda i: i.id)


def neighbour_chunks(
    folder: Path, item: FimItem, *, files: int = 2, lines: int = 32
) -> list[tuple[str, str]]:
    """Stand-ins for the editor's recently edited chunks: the heads of the item's sibling files."""
    here = Path(folder) / item.path
    siblings = sorted(p for p in here.parent.glob("*.ex") if p != here)[:files]
    return [
        (str(p), "\n".join(p.read_text(encoding="utf-8", errors="replace").split("\n")[:lines]))
        for p in siblings
    ]


class _Recorder:
    """Passes a backend through, keeping the pieces it streamed and whether it ran to its end."""

    def __init__(self, backend: Backend, replay: list[str] | None = None) -> None:
        self.backend = backend
        self.replay = replay
        self.pieces: list[str] = []
        self.exhausted = False

    @property
    def info(self):
        return self.backend.info

    @property
    def last_stats(self):
        return self.backend.last_stats

    def tokenize(self, text: str) -> list[int]:
        return self.backend.tokenize(text)

    def complete(self, prompt: str, **kwargs) -> Iterator[str]:
        source = iter(self.replay) if self.replay is not None else self.backend.complete(prompt, **kwargs)

        def pieces() -> Iterator[str]:
            try:
                for piece in source:
                    self.pieces.append(piece)
                    yield piece
                self.exhausted = True
            finally:
                close = getattr(source, "close", None)
                if close is not None:
                    close()

        return pieces()


class FimRunner:
    """Answers items with variants; generations are shared between variants whose prompts are equal."""

    def __init__(self, backend: Backend, folder: Path) -> None:
        self.backend = backend
        self.folder = Path(folder)
        self._cache: dict[tuple[str, int, str], tuple[list[str], bool, float]] = {}
        self.generations = 0

    def _prompt(self, item: FimItem, variant: Variant) -> CompletionPrompt:
        extra = neighbour_chunks(self.folder, item) if variant.extra_files else ()
        return completion.build_prompt(
            item.prefix,
            item.suffix,
            info=self.backend.info,
            tokenize=self.backend.tokenize,
            settings=variant.settings or DEFAULT_SETTINGS,
            path=str(self.folder / item.path),
            extra_files=extra,
        )

    def _stream(
        self, prompt: CompletionPrompt, item: FimItem, settings: CompletionSettings
    ) -> tuple[str, float]:
        key = (prompt.text, settings.max_tokens, prompt.forced_indent)  # healing changes the answer
        cached = self._cache.get(key)
        if cached is not None:
            pieces, exhausted, seconds = cached
            replay = _Recorder(self.backend, replay=pieces)
            stream = CompletionStream(
                completion.cursor_context(item.prefix, item.suffix), indent=prompt.indent, settings=settings
            )
            completion.generate(replay, prompt, stream, max_tokens=settings.max_tokens)
            if stream.done or exhausted:
                return stream.text or "", seconds
        recorder = _Recorder(self.backend)
        stream = CompletionStream(
            completion.cursor_context(item.prefix, item.suffix), indent=prompt.indent, settings=settings
        )
        result = completion.generate(recorder, prompt, stream, max_tokens=settings.max_tokens)
        self.generations += 1
        old = self._cache.get(key)
        if old is None or len(recorder.pieces) > len(old[0]):
            self._cache[key] = (recorder.pieces, recorder.exhausted, result.seconds)
        return result.text, result.seconds

    def _plain(self, item: FimItem) -> tuple[str, float]:
        template = TEMPLATES.get(self.backend.info.family)
        if template is None:
            raise ValueError(f"model family {self.backend.info.family!r} has no FIM template")
        before, after = item.prefix[-PLAIN_PREFIX_CHARS:], item.suffix[:PLAIN_SUFFIX_CHARS]
        text = f"{template.prefix}{before}{template.suffix}{after}{template.middle}"
        started = time.perf_counter()
        raw = "".join(
            self.backend.complete(text, max_tokens=DEFAULT_SETTINGS.max_tokens, stop=[*template.stop, "\n"])
        )
        self.generations += 1
        return raw.split("\n", 1)[0].rstrip(), time.perf_counter() - started

    def answer(self, item: FimItem, variant: Variant) -> dict:
        if variant.settings is None:
            text, seconds = self._plain(item)
        else:
            text, seconds = self._stream(self._prompt(item, variant), item, variant.settings)
        return {
            "item": item.id,
            "kind": item.kind,
            "variant": variant.name,
            "text": text,
            "exact": exact_match(text, item.middle),
            "similarity": edit_similarity(text.strip(), item.middle.strip()),
            "seconds": seconds,
        }


def compile_checks(items: Sequence[FimItem], rows: list[dict], folder: Path, sandbox: Sandbox) -> None:
    """Adds `compiles` to each row: the file with the answer inserted compiles (where the original
    compiles here), else parses (where it does not: missing dependencies). One VM per batch of files."""
    by_id = {i.id: i for i in items}
    originals = sorted({i.path for i in items})
    texts = [(folder / p).read_text(encoding="utf-8") for p in originals]
    inserted = [by_id[r["item"]].prefix + r["text"] + by_id[r["item"]].suffix for r in rows]
    statuses = _check(sandbox, texts + inserted)
    compiles_here = {p: statuses[i][0] == "ok" for i, p in enumerate(originals)}
    for row, (status, message) in zip(rows, statuses[len(originals) :], strict=True):
        path = by_id[row["item"]].path
        row["compile_mode"] = "compile" if compiles_here[path] else "parse"
        row["compiles"] = status == "ok" or (status == "compile" and not compiles_here[path])
        row["compile_message"] = message


def _check(sandbox: Sandbox, texts: list[str], batch: int = 40) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        inv = sandbox.run_script(COMPILE_CHECK, chunk, timeout_s=30 + 12 * len(chunk))
        found: dict[int, tuple[str, str]] = {}
        for line in inv.lines:
            fields = line.split("\t")
            if len(fields) >= 2 and fields[1].isdigit():
                found[int(fields[1])] = (fields[0], fields[2] if len(fields) > 2 else "")
        out.extend(found.get(i, ("compile", "the checker did not report")) for i in range(len(chunk)))
    return out


def summarize(rows: list[dict]) -> dict[str, dict]:
    """Per variant: exact match, edit similarity, compile rate, seconds per item (mean and median)."""
    out: dict[str, dict] = {}
    for name in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == name]
        entry = {
            "items": len(mine),
            "exact_match": statistics.fmean(r["exact"] for r in mine),
            "edit_similarity": statistics.fmean(r["similarity"] for r in mine),
            "seconds_mean": statistics.fmean(r["seconds"] for r in mine),
            "seconds_median": statistics.median(r["seconds"] for r in mine),
        }
        for kind in ("line", "body"):
            of_kind = [r for r in mine if r["kind"] == kind]
            if of_kind:
                entry[f"{kind}_similarity"] = statistics.fmean(r["similarity"] for r in of_kind)
        if all("compiles" in r for r in mine):
            entry["compile_rate"] = statistics.fmean(r["compiles"] for r in mine)
        out[name] = entry
    return out


def run_variants(
    runner: FimRunner,
    items: Sequence[FimItem],
    variants: Sequence[Variant],
    advance: Callable[[int], None] = lambda _n: None,
    on_row: Callable[[dict], None] = lambda _row: None,
) -> list[dict]:
    """Every item with every variant (`on_row` sees each row as it comes: partial results survive)."""
    rows = []
    for item in items:  # item-major: consecutive prompts share the KV cache of the same file
        for variant in variants:
            rows.append({**runner.answer(item, variant), "split": item.split})
            on_row(rows[-1])
            advance(1)
    return rows


def variant(name: str, **changes) -> Variant:
    extra = changes.pop("extra_files", False)
    return Variant(name, dataclasses.replace(DEFAULT_SETTINGS, **changes), extra)
