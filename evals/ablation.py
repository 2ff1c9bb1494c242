"""The variants of the completion-defaults ablation: each pipeline choice against the plain-PSM baseline."""

from __future__ import annotations

from collections.abc import Sequence

from evals.fim import PLAIN, Variant, variant
from potion.completion import DEFAULT_SETTINGS

# Each choice of the pipeline and its alternatives; "pipeline" is the current defaults.
# Ordered so that consecutive prompts of an item share their start (llama.cpp keeps that part cached)
# and post-processing-only variants come free (they replay the pipeline's generation).
GROUPS: dict[str, list[Variant]] = {
    "indent": [variant("indent-healing", heal_indent=True), variant("keep-indent", strip_indent=False)],
    "trim": [variant("trim-suffix-only", trim="suffix"), variant("trim-none", trim="none")],
    "lines": [variant("single-line", lines="single"), variant("block-anywhere", lines="auto")],
    "header": [variant("no-path-header", path_header=False)],
    "budget": [variant("budget-256", prompt_tokens=256), variant("budget-1024", prompt_tokens=1024)],
    "split": [variant("suffix-1/4", suffix_share=0.25), variant("suffix-1/2", suffix_share=0.5)],
    "extra": [variant("other-files", extra_files=True)],
}


def variants_for(ablate: Sequence[str], *, only: Sequence[str] = ()) -> list[Variant]:
    """The pipeline, the variants of each group in `ablate` ("all": every group), the plain baseline;
    `only` keeps those it names (the pipeline and the baseline always run: the table compares with
    them). A name `only` cannot keep raises ValueError naming it: a misspelt or renamed variant would
    otherwise drop out of the run unnoticed."""
    names = list(GROUPS) if "all" in ablate else list(ablate)
    out = [Variant("pipeline", DEFAULT_SETTINGS)]
    for name in GROUPS:
        if name in names:
            out.extend(GROUPS[name])
    out.append(PLAIN)
    for wanted in only:
        if wanted in (v.name for v in out):
            continue
        group = next((g for g, vs in GROUPS.items() if wanted in (v.name for v in vs)), None)
        if group is not None:
            raise ValueError(f"--variants: {wanted} is a variant of --ablate {group}, which is not ablated")
        known = ["pipeline", *(v.name for vs in GROUPS.values() for v in vs), PLAIN.name]
        raise ValueError(f"--variants: no variant named {wanted} (choose from {', '.join(known)})")
    if only:
        out = [v for v in out if v.name in only or v.name in (PLAIN.name, "pipeline")]
    return out
