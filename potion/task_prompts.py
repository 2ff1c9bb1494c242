"""Prompts for Elixir tasks, in one place: "write the `@doc`", "implement from the `@doc`/`@spec`",
"explain this code".

The chat (`/doc`, `/explain`), the language server's code actions (Write @doc, Implement) and the
corpus's stage-2 instruction samples build their messages here, so the model is asked the same way
everywhere and a fine-tuned model is trained on the prompts it will be served. Each task also has its
answer format (`doc_answer`, `implementation_answer`): what a training sample's assistant turn holds and
what the callers' parsers (`lsp.code_edits.doc_block`, `implementation_code`) accept.

Pure functions of strings: no model, no analysis (callers find the function and its lines with
`potion.elixir`, `attribute_block_start` for the `@doc`/`@spec` block above a `def`).
"""

from __future__ import annotations

import re

SYSTEM_PROMPT = (
    "You are Potion, a concise assistant for Elixir and OTP developers. Prefer idiomatic Elixir: "
    "pattern matching, pipelines, supervision trees, tagged tuples. Put code in ```elixir fenced blocks."
)

# Task names, as the corpus's `task` column records them.
WRITE_DOC = "write_doc"
IMPLEMENT = "implement"
EXPLAIN = "explain"
TASKS = (WRITE_DOC, IMPLEMENT, EXPLAIN)


def fenced(code: str, language: str = "", label: str | None = None) -> str:
    """A Markdown code fence long enough not to be closed by backticks inside `code`."""
    longest = max((len(m) for m in re.findall(r"`{3,}", code)), default=2)
    fence = "`" * (longest + 1)
    head = f"{label}\n\n" if label else ""
    return f"{head}{fence}{language}\n{code.rstrip()}\n{fence}"


def _at(where: str | None) -> str:
    return f" ({where})" if where else ""


def write_doc_prompt(code: str, *, function: str, module: str | None = None, where: str | None = None) -> str:
    """The user message asking for the `@doc` of `function` (`name/arity`), whose code (with its
    `@spec`) is `code`. `where`: `path:line`, shown to the model."""
    qualified = f"{module}.{function}" if module else function
    return (
        f"Write the `@doc` for `{qualified}`{_at(where)}: one summary sentence, then what the arguments "
        "and the result are, and an `## Examples` section with iex> examples only if you are sure they "
        'pass. Answer with only the `@doc """` ... `"""` heredoc in one ```elixir block.\n\n'
        + fenced(code, "elixir")
    )


def doc_answer(doc: str, indent: str = "") -> str:
    """The answer `write_doc_prompt` asks for, holding the documentation text `doc`."""
    body = "\n".join(f"{indent}{line}" if line.strip() else "" for line in doc.strip("\n").split("\n"))
    return fenced(f'{indent}@doc """\n{body}\n{indent}"""', "elixir")


def implement_prompt(head: str, *, function: str, module_source: str | None = None) -> str:
    """The user message asking to implement `function` (`name/arity`) from `head`: its `@doc`/`@spec`
    block and current (stub) clauses. `module_source`: the module around it, as context."""
    context = f"The module:\n\n{fenced(module_source, 'elixir')}\n\n" if module_source else ""
    return (
        f"{context}Implement `{function}` so it does what its @doc and @spec say, in idiomatic Elixir. "
        "Answer with only the code of the function's def clauses in one ```elixir block: no @doc, "
        "no @spec, no explanation.\n\n" + fenced(head, "elixir")
    )


def implementation_answer(clauses: str) -> str:
    """The answer `implement_prompt` asks for: the function's clauses, fenced."""
    return fenced(clauses, "elixir")


def explain_prompt(
    code: str, *, what: str, module: str | None = None, where: str | None = None, language: str = "elixir"
) -> str:
    """The user message asking to explain `code`; `what` says what it is ("function push/2", "file")."""
    about = f" in module `{module}`" if module else ""
    return (
        f"Explain this Elixir {what}{about}{_at(where)}: what it does, how data flows through it, "
        "and any OTP behaviour or pitfalls worth knowing.\n\n" + fenced(code, language)
    )


def task_messages(user: str, *, system: str | None = None, answer: str | None = None) -> list[dict[str, str]]:
    """Chat messages for one task: system, user, and the assistant's `answer` when there is one
    (a training sample)."""
    messages = [{"role": "system", "content": system or SYSTEM_PROMPT}, {"role": "user", "content": user}]
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return messages
