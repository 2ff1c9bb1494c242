"""The completion pipeline: one for the language server, `potion complete` and the evaluations.

A suggestion is made in three steps, all here so that the editor, the CLI and `potion eval fim` show and
score the same text for the same cursor:

1. `build_prompt`: the fill-in-the-middle prompt for the cursor (`potion.prompts.completion_prompt` within
   the token budget of `CompletionSettings`, with the file path and other files' chunks).
2. `CompletionStream`: fed the model's pieces, it says when more output cannot change the answer (the
   stop rule that ends generation early) and which text is already final (what a CLI may stream).
3. `shape` / `postprocess`: the raw output cut back to what a user wants to accept.

The model continues the text at the cursor but does not know when to stop: it repeats the code after the
cursor, closes blocks that are already closed, or writes the next three functions. The post-processing
cuts it back: one line when the cursor is mid-line, otherwise one block that ends where its `do`/`end`
and brackets are balanced (counted on tree-sitter tokens, so `"do"` in a string or `:end` as an atom do
not count), indented like the cursor.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from potion.prompts import CompletionPrompt, completion_prompt, dedent_answer

if TYPE_CHECKING:
    from potion.backends.base import Backend, CancelToken, ModelInfo

# Characters of prefix/suffix handed to the prompt builder per prompt token: enough for any tokenizer
# (Elixir averages ~3.5 chars a token) while keeping tokenization of a 5 MB file bounded.
_CHARS_PER_TOKEN = 6


@dataclass(frozen=True)
class CompletionSettings:
    """Every choice the pipeline makes; the defaults are what the editor uses (docs/completion-defaults.md
    has the measurements they were chosen by, `potion eval fim --ablate` reproduces them)."""

    prompt_tokens: int = 512  # token budget of the prompt (current file + other files' chunks)
    max_tokens: int = 64  # most tokens generated per suggestion
    suffix_share: float = 1 / 8  # the text after the cursor's part of the budget when both do not fit
    strip_indent: bool = True  # leave a cursor's indentation out of the prompt (the model writes it)
    # With strip_indent: generate the answer constrained to start with that indentation (token healing),
    # where the backend can constrain generation (llama.cpp in process, llama-server). Off: +0.017 edit
    # similarity on 60 tuning items, not confirmed held out (+0.008 on 50, -0.001 on 150 items).
    heal_indent: bool = False
    path_header: bool = True  # name the file in the prompt (families with a file separator)
    extra_context_chars: int = 1500  # at most this much of other files' chunks goes into the prompt
    trim: Literal["editor", "suffix", "none"] = "editor"  # post-processing rules (see `shape`)
    # "auto": a block wherever post-processing allows one; "single": one line of code; "smart": a block only
    # where the cursor starts an empty body (after `do`, `->`, `fn`...), one line among existing code.
    lines: Literal["auto", "single", "smart"] = "smart"


DEFAULT_SETTINGS = CompletionSettings()
TRIMS = ("editor", "suffix", "none")
LINES = ("auto", "single", "smart")
_BLOCK_STARTS = ("do", "->", "fn", "(", "[", "{", "=", "|>")

_OPENERS = {"do", "fn", "(", "[", "{", "<<", "#{", "%{"}
_CLOSERS = {"end", ")", "]", "}", ">>"}
_CLOSING_CHARS = set(")]}>\"' \t,;")


@dataclass(frozen=True)
class CursorContext:
    """The text around the cursor that post-processing needs."""

    line_prefix: str  # the cursor's line, before the cursor
    line_suffix: str  # the cursor's line, after the cursor
    next_lines: list[str] = field(default_factory=list)  # the lines after the cursor's line
    prev_line: str = ""  # the last non-blank line before the cursor's line

    @property
    def mid_line(self) -> bool:
        """True when real code follows the cursor on its line (closing brackets alone do not count)."""
        return any(ch not in _CLOSING_CHARS for ch in self.line_suffix)

    @property
    def indent(self) -> str:
        """The indentation of the cursor's line."""
        stripped = self.line_prefix.lstrip(" \t")
        return self.line_prefix[: len(self.line_prefix) - len(stripped)]

    @property
    def at_indent(self) -> bool:
        """True when only whitespace precedes the cursor on its line."""
        return not self.line_prefix.strip()


def cursor_context(prefix: str, suffix: str, *, next_lines: int = 8) -> CursorContext:
    """Build the context from the document text before and after the cursor."""
    line_start = prefix.rfind("\n") + 1
    line_end = suffix.find("\n")
    line_suffix = suffix if line_end < 0 else suffix[:line_end]
    following: list[str] = []
    if line_end >= 0:
        rest = suffix[line_end + 1 :]
        # Only look a few lines ahead: the suffix of a 5 MB file must not be split whole.
        following = rest[: 200 * next_lines].split("\n")[:next_lines]
    before = prefix[max(0, line_start - 2000) : line_start].rstrip()
    prev = before[before.rfind("\n") + 1 :]
    return CursorContext(
        prefix[line_start:], line_suffix.rstrip("\r"), [s.rstrip("\r") for s in following], prev.rstrip("\r")
    )


@functools.cache
def _parser():
    import tree_sitter
    import tree_sitter_elixir

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_elixir.language()))


def line_depths(text: str) -> list[int]:
    """The change of block depth each line of `text` makes: +1 per `do`/`fn`/open bracket, -1 per close.

    Tokens come from tree-sitter so strings, sigils' contents, comments and atoms are not counted. A stray
    `end` that error recovery parses as an identifier still closes.
    """
    lines = text.split("\n")
    deltas = [0] * len(lines)
    tree = _parser().parse(text.encode("utf-8", "replace"))  # a lone surrogate from a client must not raise
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.child_count:
            stack.extend(node.children)
            continue
        kind = node.type
        if kind == "identifier" and node.text == b"end":
            kind = "end"
        row = min(node.start_point[0], len(lines) - 1)
        if kind in _OPENERS:
            deltas[row] += 1
        elif kind in _CLOSERS:
            deltas[row] -= 1
    return deltas


def _width(s: str) -> int:
    return len(s) - len(s.lstrip(" \t"))


def match_indent(text: str, ctx: CursorContext) -> str:
    """Indent the suggestion like the cursor.

    When the cursor already sits at the indentation, the model's leading whitespace on the first line is
    extra; it is removed and later lines shift by the same amount so their relative indentation stays.
    """
    if not ctx.at_indent or not ctx.line_prefix:
        return text
    first, _, rest = text.partition("\n")
    lead = _width(first)
    if lead == 0:
        return text
    lines = [first[lead:]]
    if rest or "\n" in text:
        for line in rest.split("\n"):
            lines.append(line[lead:] if _width(line) >= lead else line.lstrip(" \t"))
    return "\n".join(lines)


def single_line(text: str, ctx: CursorContext) -> str:
    """Mid-line: keep the first line and drop what repeats the rest of the cursor's line."""
    line = text.split("\n", 1)[0].rstrip()
    rest = ctx.line_suffix.strip()
    if len(rest) >= 3 and (cut := line.find(rest)) >= 0:
        return line[:cut].rstrip()
    # The model often closes what the line already closes: "foo(a" + ")" written as "foo(a)" + ")".
    for k in range(len(rest), 0, -1):
        if line.endswith(rest[:k]):
            return line[: len(line) - k].rstrip() if k < len(line) else ""
    return line


def block(text: str, ctx: CursorContext) -> str:
    """End of line or blank line: keep one balanced block, stop at dedent, a blank line or the suffix."""
    lines = text.split("\n")
    deltas = line_depths(text)
    base_indent = _width(ctx.line_prefix) if ctx.at_indent else _width(ctx.indent)
    next_line = next((s.rstrip() for s in ctx.next_lines if s.strip()), "")
    # Blocks the cursor's line opens ("def foo do|") are the suggestion's to close.
    depth = (0 if ctx.at_indent else max(0, sum(line_depths(ctx.line_prefix)))) + deltas[0]
    baseline = min(0, depth)
    opened = depth > baseline
    seen_code = bool(lines[0].strip())
    keep = len(lines)
    for i in range(1, len(lines)):
        line = lines[i].rstrip()
        stripped = line.strip()
        if not stripped:
            if depth <= baseline and (opened or seen_code):
                keep = i  # a blank line after a complete statement ends the suggestion
                break
            continue
        new_depth = depth + deltas[i]
        repeats = line == next_line or (len(stripped) >= 12 and stripped == next_line.strip())
        if repeats and new_depth <= baseline:
            keep = i  # the model started re-writing the code after the cursor
            break
        if depth <= baseline and _width(line) < base_indent:
            keep = i  # dedented out of the cursor's block
            break
        if new_depth < baseline:
            keep = i  # closes a block opened before the suggestion
            break
        depth = new_depth
        seen_code = True
        if depth > baseline:
            opened = True
        elif opened:
            keep = i + 1  # the block the suggestion opened is closed: stop after it
            break
    return "\n".join(lines[:keep])


def postprocess(text: str, ctx: CursorContext) -> str:
    """The suggestion to show for raw output `text`, or "" when nothing useful is left."""
    text = text.replace("\r\n", "\n")
    if not text.strip():
        return ""
    if ctx.mid_line:
        out = single_line(text, ctx)
    else:
        out = block(match_indent(text, ctx), ctx)
        out = "\n".join(line.rstrip() for line in out.split("\n")).rstrip()
        # Trailing brackets the line already has after the cursor would be doubled.
        rest = ctx.line_suffix.strip()
        if rest and "\n" not in out and out.endswith(rest):
            out = out[: len(out) - len(rest)].rstrip()
    return out if out.strip() else ""


def should_stop(text: str, ctx: CursorContext) -> bool:
    """True once more output cannot change the post-processed suggestion (saves generation time)."""
    if "\n" not in text:
        return False
    if ctx.mid_line:
        return bool(text.split("\n", 1)[0].strip())
    # A line is only final once the next one started; compare with the last line dropped.
    complete = text[: text.rfind("\n")]
    if not complete.strip():
        return False
    kept = block(match_indent(complete, ctx), ctx)
    return kept.count("\n") < match_indent(complete, ctx).count("\n")


# -- the pipeline ------------------------------------------------------------------------------------


def _capped(extra_files: Sequence[tuple[str, str]], max_chars: int) -> list[tuple[str, str]]:
    """The first of `extra_files` (most relevant first) within `max_chars` of text in all."""
    out: list[tuple[str, str]] = []
    used = 0
    for path, text in extra_files:
        if used + len(text) > max_chars:
            break
        out.append((path, text))
        used += len(text)
    return out


def build_prompt(
    prefix: str,
    suffix: str,
    *,
    info: ModelInfo,
    tokenize: Callable[[str], list[int]],
    settings: CompletionSettings = DEFAULT_SETTINGS,
    path: str | None = None,
    extra_files: Sequence[tuple[str, str]] = (),
) -> CompletionPrompt:
    """The FIM prompt for the cursor between `prefix` and `suffix` (the document's whole text around it)."""
    window = settings.prompt_tokens * _CHARS_PER_TOKEN
    prompt = completion_prompt(
        prefix[-window:],
        suffix[:window],
        info=info,
        tokenize=tokenize,
        budget_tokens=settings.prompt_tokens,
        extra_files=_capped(extra_files, settings.extra_context_chars),
        path=path if settings.path_header else None,
        strip_indent=settings.strip_indent,
        suffix_share=settings.suffix_share,
    )
    return dataclasses.replace(prompt, heal_indent=settings.heal_indent and bool(prompt.indent))


def _until_suffix_repeat(text: str, ctx: CursorContext) -> str:
    """Cut where a later line repeats the first non-blank line after the cursor's line."""
    target = next((s.strip() for s in ctx.next_lines if s.strip()), None)
    if target is None:
        return text
    lines = text.split("\n")
    for i in range(1, len(lines)):
        if lines[i].strip() == target:
            return "\n".join(lines[:i])
    return text


def _first_line_of_code(text: str) -> str:
    """Up to the end of the first line that has code (after a `do|` cursor the first line is empty)."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.strip():
            return "\n".join(lines[: i + 1])
    return ""


def starts_a_body(ctx: CursorContext) -> bool:
    """True where a multi-line answer is what the user wants: the cursor's line opens a block, or the
    cursor sits on an empty line between a block's opening and its dedented end (an empty body)."""
    if ctx.mid_line:
        return False
    if not ctx.at_indent:
        return ctx.line_prefix.rstrip().endswith(_BLOCK_STARTS)
    if not ctx.prev_line.rstrip().endswith(_BLOCK_STARTS):
        return False
    following = next((line for line in ctx.next_lines if line.strip()), "")
    return not following or _width(following) < _width(ctx.line_prefix)


def shape(text: str, ctx: CursorContext, settings: CompletionSettings = DEFAULT_SETTINGS) -> str:
    """The suggestion to show for the model's output `text` (indentation already dropped), by the rules
    of `settings`: "editor" is `postprocess`; "suffix" only cuts where the model repeats the code after
    the cursor; "none" keeps everything. Returns "" when nothing useful is left."""
    text = text.replace("\r\n", "\n")
    if settings.trim == "editor":
        out = postprocess(text, ctx)
    elif settings.trim == "suffix":
        out = _until_suffix_repeat(text, ctx)
    else:
        out = text
    if settings.lines == "single" or (settings.lines == "smart" and not starts_a_body(ctx)):
        out = _first_line_of_code(out)
    out = "\n".join(line.rstrip() for line in out.split("\n")).rstrip()
    return out if out.strip() else ""


def _final(text: str, ctx: CursorContext, settings: CompletionSettings) -> bool:
    """True once more output cannot change `shape(text)`."""
    single = settings.lines == "single" or (settings.lines == "smart" and not starts_a_body(ctx))
    if single and "\n" in text:
        complete = text[: text.rfind("\n")]
        if complete.strip():
            return True
    if settings.trim == "editor":
        return should_stop(text, ctx)
    if settings.trim == "suffix":
        return "\n" in text and _until_suffix_repeat(text, ctx) != text
    return False


class CompletionStream:
    """The model's pieces in, the suggestion out.

    `feed` returns the text that has become final since the last call (a CLI streams it), and sets `done`
    once more output cannot change the suggestion (the caller stops generating). `finish` returns the
    rest; `text` is then the suggestion, the same whether or not anything was streamed.

    Text counts as final when it is a prefix of the suggestion for every continuation: while the first
    line is written, its shaped form so far; after that, the shaped form of the complete lines.
    """

    def __init__(
        self, ctx: CursorContext, *, indent: str = "", settings: CompletionSettings = DEFAULT_SETTINGS
    ):
        self.ctx = ctx
        self.indent = indent
        self.settings = settings
        self.raw = ""
        self.emitted = ""
        self.done = False
        self.text: str | None = None

    def _emit(self, stable: str) -> str:
        if len(stable) <= len(self.emitted) or not stable.startswith(self.emitted):
            return ""
        new, self.emitted = stable[len(self.emitted) :], stable
        return new

    def feed(self, piece: str) -> str:
        """Take one piece of the model's output; returns the newly final text (maybe "")."""
        if self.done:
            return ""
        self.raw += piece
        text = dedent_answer(self.raw, self.indent)
        if "\n" not in text:
            return self._emit(shape(text, self.ctx, self.settings))
        if "\n" not in piece:
            return ""
        if _final(text, self.ctx, self.settings):
            self.done = True
        return self._emit(shape(text[: text.rfind("\n")], self.ctx, self.settings))

    def finish(self, *, drop_partial_line: bool = False) -> str:
        """End of output: the rest of the suggestion. `drop_partial_line` drops a last line the model did
        not finish (generation stopped by a time budget: a line cut mid-token is worse than one less)."""
        raw = self.raw
        if drop_partial_line and "\n" in raw:
            raw = raw[: raw.rfind("\n")]
        self.text = shape(dedent_answer(raw, self.indent), self.ctx, self.settings)
        if self.text.startswith(self.emitted):
            rest = self.text[len(self.emitted) :]
            self.emitted = self.text
            return rest
        # Later tokens changed how earlier lines parse (an unclosed string, say): what was streamed stands.
        return ""


@dataclass
class CompletionResult:
    """One suggestion and how it was made."""

    text: str  # what the editor shows
    raw: str  # what the model wrote
    prompt: CompletionPrompt
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    timed_out: bool = False
    cancelled: bool = False


def generate(
    backend: Backend,
    prompt: CompletionPrompt,
    stream: CompletionStream,
    *,
    max_tokens: int,
    cancel: CancelToken | None = None,
    time_budget_s: float | None = None,
    on_text: Callable[[str], None] | None = None,
    temperature: float = 0.0,
) -> CompletionResult:
    """Run the model on `prompt` through `stream`: stop once the suggestion is final, the time budget
    (counted from the first token: prompt processing is not generation) is spent, or `cancel` is set.
    `on_text` receives the final text as it becomes final."""
    started = time.perf_counter()
    deadline: float | None = None
    timed_out = cancelled = False
    pieces = backend.complete(
        prompt.text,
        max_tokens=max_tokens,
        stop=prompt.stop,
        cancel=cancel,
        temperature=temperature,
        indent=prompt.forced_indent,
    )
    try:
        for piece in pieces:
            new = stream.feed(piece)
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            if new and on_text is not None:
                on_text(new)
            if stream.done:
                break
            if time_budget_s is not None:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + time_budget_s
                elif now > deadline:
                    timed_out = True
                    break
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()  # lets the backend finish its bookkeeping for a generation stopped early
    cancelled = cancelled or (cancel is not None and cancel.is_set())
    rest = stream.finish(drop_partial_line=timed_out)
    if rest and on_text is not None and not cancelled:
        on_text(rest)
    stats = backend.last_stats
    return CompletionResult(
        text=stream.text or "",
        raw=stream.raw,
        prompt=prompt,
        prompt_tokens=stats.prompt_tokens,
        completion_tokens=stats.completion_tokens,
        seconds=time.perf_counter() - started,
        timed_out=timed_out,
        cancelled=cancelled,
    )


def suggest(
    backend: Backend,
    prefix: str,
    suffix: str,
    *,
    settings: CompletionSettings = DEFAULT_SETTINGS,
    path: str | None = None,
    extra_files: Sequence[tuple[str, str]] = (),
    on_text: Callable[[str], None] | None = None,
) -> CompletionResult:
    """The suggestion for the cursor between `prefix` and `suffix`, as the editor would show it."""
    prompt = build_prompt(
        prefix,
        suffix,
        info=backend.info,
        tokenize=backend.tokenize,
        settings=settings,
        path=path,
        extra_files=extra_files,
    )
    stream = CompletionStream(cursor_context(prefix, suffix), indent=prompt.indent, settings=settings)
    return generate(backend, prompt, stream, max_tokens=settings.max_tokens, on_text=on_text)
