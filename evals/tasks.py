"""Task suites: MultiPL-E-style JSONL (prompt, tests, stop tokens, language "ex") and the project's own.

A program is `prompt + completion + "\\n" + tests`, as in MultiPL-E. The project's suite
(`evals/suites/elixir.jsonl`) adds `canonical_solution` (a completion that passes), `category`, and
`truncate`: "balance" cuts a completion where the prompt's open `do` blocks are all closed (the model
goes on writing other code after the answer), "stop" keeps MultiPL-E's rule (stop tokens only).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from evals.errors import TaskFileError
from potion.completion import line_depths

SUITES_DIR = Path(__file__).with_name("suites")
LANGUAGES = ("ex", "elixir")
_REQUIRED = ("name", "prompt", "tests", "stop_tokens")


@dataclass(frozen=True)
class Task:
    name: str
    prompt: str
    tests: str
    stop_tokens: tuple[str, ...]
    category: str = "uncategorized"
    canonical_solution: str | None = None
    truncate: str = "stop"  # "stop" (MultiPL-E) | "balance"

    def program(self, completion: str) -> str:
        return self.prompt + completion + "\n" + self.tests

    def cut(self, generated: str) -> str:
        """The completion a model's raw output stands for: up to the first stop token, and with
        `truncate="balance"` up to the line that closes the prompt's last open block."""
        cut = min((i for i in (generated.find(s) for s in self.stop_tokens if s) if i >= 0), default=-1)
        text = generated if cut < 0 else generated[:cut]
        if self.truncate != "balance":
            return text
        open_blocks = sum(line_depths(self.prompt))
        if open_blocks <= 0:
            return text
        depths = line_depths(self.prompt + text)
        first = self.prompt.count("\n")  # the first completion line continues the prompt's last line
        depth = sum(depths[:first])
        lines = (self.prompt + text).split("\n")
        for row in range(first, len(lines)):
            depth += depths[row]
            if depth <= 0:
                return _tail(self.prompt, "\n".join(lines[first : row + 1]))
        return text

    def empty_completion(self) -> str:
        """A completion that only closes the prompt's open blocks: a body that does nothing."""
        depth = max(0, sum(line_depths(self.prompt)))
        return "".join("  " * (depth - 1 - i) + "end\n" for i in range(depth))


def _tail(prompt: str, kept_lines: str) -> str:
    """The completion part of `kept_lines`, whose first line begins with the prompt's unfinished line."""
    partial = prompt[prompt.rfind("\n") + 1 :]
    return kept_lines[len(partial) :]


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    tasks: list[Task]

    @property
    def digest(self) -> str:
        """Identifies the suite's content (stored results are keyed by it)."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]

    def categories(self) -> list[str]:
        return sorted({t.category for t in self.tasks})


def _field(row: dict, key: str, kind: type, where: str):
    value = row[key]
    if not isinstance(value, kind):
        raise TaskFileError(
            f"{where}: field {key!r} must be a {kind.__name__}, got {type(value).__name__}",
            hint="fix that line of the task file",
        )
    return value


def parse_task(row: object, where: str) -> Task:
    if not isinstance(row, dict):
        raise TaskFileError(f"{where}: a task must be a JSON object", hint="one object per line")
    missing = [k for k in _REQUIRED if k not in row]
    if missing:
        raise TaskFileError(f"{where}: task has no {', '.join(map(repr, missing))}", hint="add the fields")
    language = row.get("language", "ex")
    if language not in LANGUAGES:
        raise TaskFileError(f"{where}: language {language!r} is not Elixir", hint='use "language": "ex"')
    stops = _field(row, "stop_tokens", list, where)
    if not all(isinstance(s, str) for s in stops):
        raise TaskFileError(f"{where}: stop_tokens must be strings", hint="fix that line of the task file")
    truncate = row.get("truncate", "stop")
    if truncate not in ("stop", "balance"):
        raise TaskFileError(f"{where}: truncate must be 'stop' or 'balance', got {truncate!r}")
    solution = row.get("canonical_solution")
    if solution is not None and not isinstance(solution, str):
        raise TaskFileError(f"{where}: field 'canonical_solution' must be a string")
    return Task(
        name=_field(row, "name", str, where),
        prompt=_field(row, "prompt", str, where),
        tests=_field(row, "tests", str, where),
        stop_tokens=tuple(stops),
        category=str(row.get("category") or "uncategorized"),
        canonical_solution=solution,
        truncate=truncate,
    )


def load_tasks(path: Path) -> list[Task]:
    """Tasks of a JSONL file; a malformed line raises TaskFileError naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskFileError(f"cannot read task file {path}: {exc}", hint="check the path") from exc
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskFileError(
                f"{where}: not valid JSON ({exc.msg})", hint="one JSON object per line"
            ) from exc
        task = parse_task(row, where)
        if task.name in seen:
            raise TaskFileError(
                f"{where}: duplicate task name {task.name!r} (first on line {seen[task.name]})"
            )
        seen[task.name] = number
        tasks.append(task)
    if not tasks:
        raise TaskFileError(f"{path} has no tasks", hint="one JSON object per line")
    return tasks


def load_suite(spec: str | Path) -> Suite:
    """A suite by name (a file of evals/suites/, "elixir" is the project's own) or by path."""
    path = Path(spec)
    if not path.suffix:
        candidate = SUITES_DIR / f"{spec}.jsonl"
        if candidate.exists():
            path = candidate
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in SUITES_DIR.glob("*.jsonl")))
        raise TaskFileError(f"no task suite {str(spec)!r}", hint=f"give a .jsonl path or one of: {known}")
    return Suite(path.stem, path, load_tasks(path))
