"""Stage-2 `messages` samples built from real code with `potion.elixir`.

Tasks (schema `task`): `doc_to_impl` (@doc/@spec -> implementation), `impl_to_doc` (implementation ->
@doc), `doctest_to_fn` (iex> examples -> function), `behaviour_to_module` (an OTP behaviour's description
-> module), `explain` (module code -> what it does). Half the `doc_to_impl`, `impl_to_doc` and `explain`
samples use the exact prompts and answer formats the chat and code actions send (`potion.task_prompts`),
so the model is trained on what it is served; the others vary their wording over several templates. The
choice is a stable hash, so a rebuild gives the same rows. Code that does not parse is never a target:
such samples are dropped and counted.
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from collections import Counter
from dataclasses import dataclass

from potion import task_prompts as served
from potion.elixir import FunctionDef, ModuleDef, SourceAnalysis, is_balanced

OTP = (
    "GenServer",
    "Supervisor",
    "DynamicSupervisor",
    "Agent",
    "Task",
    "Registry",
    "Application",
    "GenStage",
    "GenEvent",
    "Phoenix.Channel",
    "Phoenix.LiveView",
    "Mix.Task",
)

_DOC_TO_IMPL = (
    "Implement `{fn}` in module `{mod}`.\n\nIts documentation:\n\n{doc}{spec}",
    "Write the Elixir function `{fn}` (module `{mod}`) described below.\n\n{doc}{spec}",
    "Here is the @doc{spec_word} for `{mod}.{fn}`. Write the implementation.\n\n{doc}{spec}",
    "Module `{mod}` needs `{fn}`:\n\n{doc}{spec}\n\nGive only the function definition.",
)
_IMPL_TO_DOC = (
    "Write an `@doc` for this function from `{mod}`:\n\n```elixir\n{code}\n```",
    "Document this Elixir function (the @doc text only):\n\n```elixir\n{code}\n```",
    "What should the @doc of `{mod}.{fn}` say?\n\n```elixir\n{code}\n```",
)
_DOCTEST = (
    "Write `{mod}.{fn}` so that these doctests pass:\n\n```elixir\n{examples}\n```",
    "Implement `{fn}` in `{mod}`. Expected behaviour:\n\n```elixir\n{examples}\n```",
    "Make these iex examples work by writing `{mod}.{fn}`:\n\n```elixir\n{examples}\n```",
)
_BEHAVIOUR = (
    "Write a {beh} module named `{mod}`.{about}\n\nIt should define: {api}.",
    "Create `{mod}`, a {beh}.{about}\n\nPublic API: {api}.",
    "I need an Elixir {beh} called `{mod}`.{about} Include {api}.",
)
_EXPLAIN = (
    "Explain what this Elixir module does:\n\n```elixir\n{code}\n```",
    "What is this code for?\n\n```elixir\n{code}\n```",
    "Walk me through this module:\n\n```elixir\n{code}\n```",
)
_IEX = re.compile(r"^\s*(iex(\(\d+\))?>|\.\.\.(\(\d+\))?>)")


@dataclass
class Drafts:
    """What one file yields: samples as dicts (`messages`, `task`) and how many were dropped why."""

    samples: list[dict]
    dropped: Counter[str]


def _pick(options: tuple[str, ...], key: str) -> str:
    digest = hashlib.sha256(key.encode()).digest()
    return options[digest[0] % len(options)]


def _code(data: bytes, start: int, end: int) -> str:
    """The source of a definition, its first line's indentation taken off every line that has it."""
    line_start = data.rfind(b"\n", 0, start) + 1
    indent = data[line_start:start]
    if not indent.strip():
        text = data[start:end]
        if indent:
            text = text.replace(b"\n" + indent, b"\n")
        return text.decode("utf-8", "replace").strip("\n")
    return textwrap.dedent(data[line_start:end].decode("utf-8", "replace")).strip("\n")


def _fn_code(data: bytes, fn: FunctionDef) -> str:
    return _code(data, fn.clauses[0].start_byte, fn.clauses[-1].end_byte)


def _fenced(code: str) -> str:
    return f"```elixir\n{code}\n```"


def doctest_examples(doc: str) -> str | None:
    """The `iex>` lines of a @doc with their expected results (blocks separated by blank lines)."""
    out: list[str] = []
    in_example = False
    for line in textwrap.dedent(doc).splitlines():
        if _IEX.match(line):
            in_example = True
            out.append(line.strip())
        elif in_example and line.strip() and not line.strip().startswith("```"):
            out.append(line.strip())
        else:
            if in_example and out and out[-1]:
                out.append("")
            in_example = False
    text = "\n".join(out).strip()
    return text or None


def _conversation(user: str, assistant: str) -> list[dict]:
    return served.task_messages(user, answer=assistant)


def _served(key: str) -> bool:
    return hashlib.sha256((key + ":served").encode()).digest()[0] % 2 == 0


def _spec_block(fn: FunctionDef) -> str:
    return f"@spec {fn.spec}\n" if fn.spec and "\n" not in fn.spec else ""


def draft_samples(
    analysis: SourceAnalysis, data: bytes, *, sha: str, tasks: list[str], max_code_chars: int, seed: int = 0
) -> Drafts:
    """Every candidate sample the file's modules and functions support, each with the `code` it targets
    (not yet parse-checked: `select` checks the ones it keeps)."""
    out: list[dict] = []
    dropped: Counter[str] = Counter()
    wanted = set(tasks)

    def add(task: str, user: str, assistant: str, code: str) -> None:
        if len(code) > max_code_chars:
            dropped["too_long"] += 1
            return
        out.append({"messages": _conversation(user, assistant), "task": task, "code": code})

    for mod in analysis.modules:
        if mod.kind != "defmodule":
            continue
        for fn in mod.functions:
            if not fn.public or fn.doc_hidden or not fn.clauses:
                continue
            key = f"{seed}:{sha}:{mod.name}.{fn.name}/{fn.arity}"
            code = _fn_code(data, fn)
            label = f"{fn.name}/{fn.arity}"
            doc = (fn.doc or "").strip()
            if len(doc) >= 20:
                spec = f"\n\nSpec: `@spec {fn.spec}`" if fn.spec else ""
                if "doc_to_impl" in wanted and _served(key + "d"):
                    # what the "Implement" code action sends: the @doc/@spec block over a stub
                    head = f'@doc """\n{doc}\n"""\n{_spec_block(fn)}{fn.kind} {fn.signature()} do\nend'
                    user = served.implement_prompt(head, function=label)
                    add("doc_to_impl", user, served.implementation_answer(code), code)
                elif "doc_to_impl" in wanted:
                    user = _pick(_DOC_TO_IMPL, key + "d").format(
                        fn=label, mod=mod.name, doc=doc, spec=spec, spec_word=" and @spec" if spec else ""
                    )
                    add("doc_to_impl", user, _fenced(code), code)
                if "impl_to_doc" in wanted and _served(key + "i"):
                    where = f"{analysis.path.rsplit('/', 1)[-1]}:{fn.line + 1}" if analysis.path else None
                    user = served.write_doc_prompt(
                        _spec_block(fn) + code, function=label, module=mod.name, where=where
                    )
                    add("impl_to_doc", user, served.doc_answer(doc), code)
                elif "impl_to_doc" in wanted:
                    user = _pick(_IMPL_TO_DOC, key + "i").format(fn=label, mod=mod.name, code=code)
                    add("impl_to_doc", user, _fenced(f'@doc """\n{doc}\n"""'), code)
                examples = doctest_examples(doc) if "doctest_to_fn" in wanted else None
                if examples:
                    user = _pick(_DOCTEST, key + "t").format(fn=label, mod=mod.name, examples=examples)
                    add("doctest_to_fn", user, _fenced(code), code)
        _module_samples(mod, data, sha, wanted, seed, add)
    return Drafts(out, dropped)


def _module_samples(mod: ModuleDef, data: bytes, sha: str, wanted: set[str], seed: int, add) -> None:
    code = _code(data, mod.start_byte, mod.end_byte)
    key = f"{seed}:{sha}:{mod.name}"
    public = [f for f in mod.functions if f.public and not f.doc_hidden]
    summary = (mod.moduledoc or "").strip().split("\n\n")[0].strip()
    behaviours = [b for b in (*mod.behaviours, *mod.uses) if b in OTP]
    if "behaviour_to_module" in wanted and behaviours and public:
        api = ", ".join(f"`{f.name}/{f.arity}`" for f in public[:12])
        about = f" {summary}" if summary else ""
        user = _pick(_BEHAVIOUR, key + "b").format(beh=behaviours[0], mod=mod.name, about=about, api=api)
        add("behaviour_to_module", user, _fenced(code), code)
    if "explain" in wanted and summary and public:
        lines = [summary, ""]
        for f in public[:12]:
            first = (f.doc or "").strip().split("\n\n")[0].replace("\n", " ").strip()
            lines.append(f"- `{f.name}/{f.arity}`" + (f": {first}" if first else ""))
        if behaviours:
            lines.append(f"\nIt implements the `{behaviours[0]}` behaviour.")
        if _served(key + "e"):
            user = served.explain_prompt(code, what=f"module `{mod.name}`")
        else:
            user = _pick(_EXPLAIN, key + "e").format(code=code)
        add("explain", user, "\n".join(lines).strip(), code)


def select(drafts: Drafts, limit: int, key: str, *, parsed_clean: bool = False) -> Drafts:
    """At most `limit` samples whose code parses, chosen stably (a rebuild keeps the same ones); only
    the candidates examined are parsed, so a file with hundreds of functions costs `limit` parses.
    `parsed_clean`: the file's tree has no ERROR/MISSING node, so every definition in it parses (the
    snippets are its subtrees) and the per-sample parse is skipped."""
    ranked = sorted(
        drafts.samples, key=lambda s: hashlib.sha256((key + s["messages"][1]["content"]).encode()).hexdigest()
    )
    chosen: list[dict] = []
    dropped = Counter(drafts.dropped)
    for i, s in enumerate(ranked):
        if len(chosen) >= limit:
            dropped["over_file_cap"] += len(ranked) - i
            break
        if not parsed_clean and not is_balanced(s["code"]):
            dropped["unparsable"] += 1
            continue
        chosen.append({"messages": s["messages"], "task": s["task"]})
    return Drafts(chosen, dropped)
