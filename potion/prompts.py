"""Fill-in-the-middle prompts: one template per model family, chosen from the model's vocabulary.

A completion prompt is built from the text before the cursor (prefix) and after it (suffix), trimmed to a
token budget at line boundaries: the end of the prefix and the start of the suffix are what the model needs
most, and the prefix gets the larger share. Families with file-separator tokens (Qwen2.5-Coder, StarCoder2)
also get other files of the project as repo-level context when the budget allows. A model without FIM tokens
gets a plain completion of the prefix, never an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # potion.backends imports this module: a runtime import would be circular
    from potion.backends.base import ModelInfo

UNKNOWN = "unknown"
ANCHOR_LINES = 16
EXTRA_QUANTUM = 64
Tokenize = Callable[[str], list[int]]


@dataclass(frozen=True)
class FimTemplate:
    """The special strings of one family's FIM format.

    order "psm" renders prefix-marker, prefix, suffix-marker, suffix, middle-marker; "spm" (Mistral) puts the
    suffix first and the model continues right after the prefix. `file_sep`/`repo_name` are set only for
    families trained on repo-level context.
    """

    family: str
    prefix: str
    suffix: str
    middle: str
    order: Literal["psm", "spm"] = "psm"
    file_sep: str | None = None
    repo_name: str | None = None
    stop: tuple[str, ...] = ()

    def markers(self) -> tuple[str, ...]:
        """Every special string of the format (stripped of the spaces CodeLlama pads them with)."""
        parts = (self.prefix, self.suffix, self.middle, self.file_sep, self.repo_name, *self.stop)
        return tuple(dict.fromkeys(p.strip() for p in parts if p and p.strip()))


_QWEN_STOP = (
    "<|endoftext|>",
    "<|file_sep|>",
    "<|fim_prefix|>",
    "<|fim_suffix|>",
    "<|fim_middle|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|im_end|>",
)

TEMPLATES: dict[str, FimTemplate] = {
    t.family: t
    for t in (
        FimTemplate(
            "qwen2.5-coder",
            "<|fim_prefix|>",
            "<|fim_suffix|>",
            "<|fim_middle|>",
            file_sep="<|file_sep|>",
            repo_name="<|repo_name|>",
            stop=_QWEN_STOP,
        ),
        # CodeGemma shares Qwen's FIM markers but has its own file separator and end tokens.
        FimTemplate(
            "codegemma",
            "<|fim_prefix|>",
            "<|fim_suffix|>",
            "<|fim_middle|>",
            file_sep="<|file_separator|>",
            stop=("<|file_separator|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<eos>"),
        ),
        # Mistral's tokenizers (Codestral, Devstral) encode FIM as [SUFFIX]suffix[PREFIX]prefix and the
        # model writes the middle right after the prefix: there is no middle marker.
        FimTemplate(
            "codestral",
            "[PREFIX]",
            "[SUFFIX]",
            "",
            order="spm",
            stop=("</s>", "[PREFIX]", "[SUFFIX]", "[MIDDLE]"),
        ),
        FimTemplate(
            "starcoder2",
            "<fim_prefix>",
            "<fim_suffix>",
            "<fim_middle>",
            file_sep="<file_sep>",
            repo_name="<repo_name>",
            stop=("<|endoftext|>", "<file_sep>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>"),
        ),
        FimTemplate(
            "starcoder",
            "<fim_prefix>",
            "<fim_suffix>",
            "<fim_middle>",
            stop=("<|endoftext|>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>"),
        ),
        FimTemplate(
            "deepseek-coder",
            "<｜fim▁begin｜>",
            "<｜fim▁hole｜>",
            "<｜fim▁end｜>",
            stop=("<｜end▁of▁sentence｜>", "<|EOT|>", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
        ),
        # Meta's reference implementation pads the markers with spaces exactly like this.
        FimTemplate("codellama", "<PRE> ", " <SUF>", " <MID>", stop=("<EOT>", "</s>")),
    )
}

# Vocabulary tokens that identify a family, most specific first: CodeGemma and StarCoder2 extend the
# markers of Qwen and StarCoder, so they are tested before them.
FAMILY_SIGNATURES: tuple[tuple[str, frozenset[str]], ...] = (
    ("codegemma", frozenset({"<|fim_prefix|>", "<|file_separator|>"})),
    ("qwen2.5-coder", frozenset({"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"})),
    ("codestral", frozenset({"[PREFIX]", "[SUFFIX]"})),
    ("starcoder2", frozenset({"<fim_prefix>", "<file_sep>"})),
    ("starcoder", frozenset({"<fim_prefix>", "<fim_suffix>", "<fim_middle>"})),
    ("deepseek-coder", frozenset({"<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"})),
    ("codellama", frozenset({"▁<PRE>", "▁<SUF>", "▁<MID>"})),
    ("codellama", frozenset({"<PRE>", "<SUF>", "<MID>"})),
)
_ALL_SIGNATURE_TOKENS = frozenset().union(*(tokens for _, tokens in FAMILY_SIGNATURES))

# Plain completion still has to stop at the usual end-of-text tokens.
_PLAIN_STOP = ["<|endoftext|>", "</s>", "<|im_end|>", "<|end_of_text|>", "<|eot_id|>"]


def detect_family(vocab: Iterable[str]) -> str:
    """The FIM family of a model from its vocabulary (token strings), or "unknown"."""
    present = {token for token in vocab if token in _ALL_SIGNATURE_TOKENS}
    for family, tokens in FAMILY_SIGNATURES:
        if tokens <= present:
            return family
    return UNKNOWN


def fim_tokens(family: str) -> dict[str, str]:
    """The prefix/suffix/middle markers of a family ({} when it has none), for ModelInfo.fim_tokens."""
    template = TEMPLATES.get(family)
    if template is None:
        return {}
    return {"prefix": template.prefix, "suffix": template.suffix, "middle": template.middle}


@dataclass(frozen=True)
class CompletionPrompt:
    """A prompt ready for `Backend.complete`, and what of the file it kept."""

    text: str
    stop: list[str]
    fim: bool
    prefix_kept: str
    suffix_kept: str
    warning: str | None = None
    files_kept: list[str] = field(default_factory=list)
    # The whitespace before a cursor on the indentation of its line, left out of `text` (see
    # `completion_prompt`); the model writes the indentation itself and `dedent_answer` drops it again.
    indent: str = ""
    # Token healing: the answer is generated constrained to start with `indent` (`Backend.complete`'s
    # `indent`), so the model writes the line at the cursor's depth.
    heal_indent: bool = False

    @property
    def forced_indent(self) -> str:
        """What `Backend.complete` gets as `indent`: the left-out indentation when it is healed."""
        return self.indent if self.heal_indent else ""


def cursor_indent(prefix: str) -> str:
    """The whitespace before a cursor that sits on the indentation of its line ("" otherwise)."""
    line = prefix[prefix.rfind("\n") + 1 :]
    return line if line and not line.strip(" \t") else ""


def dedent_answer(raw: str, indent: str) -> str:
    """Drop from the model's first line the indentation the document already has before the cursor."""
    if not indent:
        return raw
    lead = len(raw) - len(raw.lstrip(" \t"))
    return raw[min(lead, len(indent)) :]


def _count(tokenize: Tokenize, text: str) -> int:
    return len(tokenize(text)) if text else 0


def _longest_fitting(n: int, fits: Callable[[int], bool]) -> int:
    """Largest k in [0, n] with fits(k), assuming fits is monotone (true up to some k)."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def keep_tail(text: str, budget: int, tokenize: Tokenize) -> str:
    """The longest end of `text` within `budget` tokens, cut at a line start when possible.

    Binary search keeps the number of tokenize calls logarithmic: the HTTP backend pays a round trip each.
    """
    if budget <= 0 or not text:
        return ""
    if _count(tokenize, text) <= budget:
        return text
    lines = text.splitlines(keepends=True)
    k = _longest_fitting(len(lines), lambda k: _count(tokenize, "".join(lines[len(lines) - k :])) <= budget)
    if k > 0:
        return "".join(lines[len(lines) - k :])
    # Even the last line alone is too long: keep its end, character by character.
    last = lines[-1]
    c = _longest_fitting(len(last), lambda c: _count(tokenize, last[len(last) - c :]) <= budget)
    return last[len(last) - c :]


def keep_head(text: str, budget: int, tokenize: Tokenize) -> str:
    """The longest start of `text` within `budget` tokens, cut after a line end when possible."""
    if budget <= 0 or not text:
        return ""
    if _count(tokenize, text) <= budget:
        return text
    lines = text.splitlines(keepends=True)
    k = _longest_fitting(len(lines), lambda k: _count(tokenize, "".join(lines[:k])) <= budget)
    if k > 0:
        return "".join(lines[:k])
    first = lines[0]
    c = _longest_fitting(len(first), lambda c: _count(tokenize, first[:c]) <= budget)
    return first[:c]


def _scrub(text: str, markers: Sequence[str]) -> str:
    # A file that contains the model's own control strings (a tokenizer test, say) would otherwise inject
    # them into the prompt and derail generation.
    for marker in markers:
        if marker in text:
            text = text.replace(marker, "")
    return text


def _anchored(prefix: str, kept: str) -> str:
    """Start a trimmed prefix on a line number that is a multiple of ANCHOR_LINES.

    The cache of the previous prompt is reusable only up to the first token that changed. If the trimmed
    prefix started one line later each time the user's edits pushed it over the budget, every such
    keystroke would re-evaluate the whole prompt; starting on block boundaries moves the start only once
    per ANCHOR_LINES lines, at the cost of up to that many lines of budget.
    """
    dropped_text = prefix[: len(prefix) - len(kept)]
    if not dropped_text.endswith("\n"):
        return kept  # cut inside a line (one enormous line): nothing to anchor to
    lines = prefix.split("\n")
    dropped = dropped_text.count("\n")
    anchored = -(-dropped // ANCHOR_LINES) * ANCHOR_LINES
    if anchored >= len(lines) - 1:
        return kept  # keep at least the cursor line and the one before it
    return "\n".join(lines[anchored:])


def _split_budget(
    n_prefix: int, n_suffix: int, available: int, suffix_share: float = 1 / 8
) -> tuple[int, int]:
    """Token allowances for prefix and suffix: the suffix gets `suffix_share` (an eighth), or what the
    prefix leaves unused, and the prefix the rest.

    The suffix share is small on purpose: the model mostly needs the next few lines to know where to
    stop, and in prefix-suffix-middle order every suffix token sits after the cursor, so it is
    re-evaluated on every keystroke while the prefix before the edit stays cached.
    """
    if n_prefix + n_suffix <= available:
        return n_prefix, n_suffix
    share = int(available * suffix_share)
    if n_suffix <= share:
        return available - n_suffix, n_suffix
    if n_prefix <= available - share:
        return n_prefix, available - n_prefix
    return available - share, share


def render_fim(template: FimTemplate, prefix: str, suffix: str) -> str:
    """The FIM prompt of `template` around the hole; the model's answer is the middle.

    Public so that training-time FIM (trainer) writes exactly what the server sends.
    """
    if template.order == "spm":
        return f"{template.suffix}{suffix}{template.prefix}{prefix}{template.middle}"
    return f"{template.prefix}{prefix}{template.suffix}{suffix}{template.middle}"


def _repo_header(template: FimTemplate, repo: str | None) -> str:
    if template.repo_name and repo:
        return f"{template.repo_name}{repo}\n"
    return ""


def _file_block(template: FimTemplate, path: str, text: str) -> str:
    body = text if text.endswith("\n") else text + "\n"
    return f"{template.file_sep}{path}\n{body}"


def completion_prompt(
    prefix: str,
    suffix: str,
    *,
    info: ModelInfo,
    tokenize: Tokenize,
    budget_tokens: int,
    extra_files: Sequence[tuple[str, str]] = (),
    path: str | None = None,
    repo: str | None = None,
    strip_indent: bool = True,
    suffix_share: float = 1 / 8,
) -> CompletionPrompt:
    """Build the FIM prompt for the cursor between `prefix` and `suffix`, within `budget_tokens`.

    `extra_files` are (path, text) pairs, most relevant first; they are used only by families with a file
    separator and only with the tokens the current file leaves over. `repo` names the project for families
    that have a repo-name token.

    When the cursor sits on the indentation of its line, that indentation is left out of the prompt
    (`CompletionPrompt.indent`): a prefix ending in spaces is a token boundary code models rarely saw in
    training, and they answer it with odd continuations; from the line start they write the indented
    line themselves, and callers drop what the document already has with `dedent_answer`.
    `strip_indent=False` keeps it (the evaluations measure both); `suffix_share` is the suffix's part of
    the budget when both sides do not fit.
    """
    indent = cursor_indent(prefix) if strip_indent else ""
    prefix = prefix[: len(prefix) - len(indent)]
    template = TEMPLATES.get(info.family)
    if template is None:
        kept = keep_tail(prefix, budget_tokens, tokenize)
        return CompletionPrompt(
            text=kept,
            stop=list(_PLAIN_STOP),
            fim=False,
            prefix_kept=kept,
            suffix_kept="",
            warning=f"model {info.name!r} has no fill-in-the-middle tokens: completing the prefix only",
            indent=indent,
        )

    markers = template.markers()
    prefix, suffix = _scrub(prefix, markers), _scrub(suffix, markers)
    repo_level = template.file_sep is not None and (path is not None or bool(extra_files))
    header = _repo_header(template, repo) if repo_level else ""
    current = f"{template.file_sep}{path or 'untitled'}\n" if repo_level else ""

    overhead = _count(tokenize, header + current + render_fim(template, "", ""))
    available = max(budget_tokens - overhead, 0)
    n_prefix, n_suffix = _count(tokenize, prefix), _count(tokenize, suffix)
    prefix_budget, suffix_budget = _split_budget(n_prefix, n_suffix, available, suffix_share)
    prefix_kept = (
        prefix if prefix_budget >= n_prefix else _anchored(prefix, keep_tail(prefix, prefix_budget, tokenize))
    )
    suffix_kept = suffix if suffix_budget >= n_suffix else keep_head(suffix, suffix_budget, tokenize)

    files_kept: list[str] = []
    context = ""
    if repo_level:
        # Other files come first in the prompt, so they must not change with every keystroke in the
        # current file: their allowance moves in steps of EXTRA_QUANTUM tokens.
        left = available - _count(tokenize, prefix_kept) - _count(tokenize, suffix_kept)
        left = left // EXTRA_QUANTUM * EXTRA_QUANTUM
        for other_path, other_text in extra_files:
            if left <= 0:
                break
            block_overhead = _count(tokenize, _file_block(template, other_path, ""))
            text = keep_head(_scrub(other_text, markers), left - block_overhead, tokenize)
            if not text.strip():
                continue
            block = _file_block(template, other_path, text)
            left -= _count(tokenize, block)
            context += block
            files_kept.append(other_path)

    text = header + context + current + render_fim(template, prefix_kept, suffix_kept)
    return CompletionPrompt(
        text=text,
        stop=list(template.stop),
        fim=True,
        prefix_kept=prefix_kept,
        suffix_kept=suffix_kept,
        files_kept=files_kept,
        indent=indent,
    )
