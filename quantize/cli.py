"""`potion export [RUN_OR_ADAPTER] [--quant q8_0,q5_k_m,q4_k_m] [--name NAME]`.

Turns a trained adapter into GGUF files that the language server and the chat load by name
(`--model NAME`, `NAME:q4_k_m`, or the adapter on its base: `BASE + NAME`). Without RUN_OR_ADAPTER it
exports the promoted adapter (`potion adapters promote`); an export of the promoted adapter becomes the
registry's `stable` model, the default of the editor, the chat and `potion complete`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from potion import versions
from potion.cli_args import add_command, arg
from potion.exported import NAME_RE
from quantize.export import DEFAULT_QUANTS, ExportOptions
from quantize.gguf_quant import QUANT_TYPES

OUTTYPES = ("f16", "bf16", "f32")


@dataclass
class ExportArgs:
    source: str | None = arg(
        "a run directory of `potion train`, its adapter/ folder or an adapter id (default: the promoted one)",
        positional=True,
        metavar="RUN_OR_ADAPTER",
        default=None,
    )
    quant: list[str] = arg(
        f"quantized types to make ({', '.join(QUANT_TYPES)})",
        default_factory=lambda: list(DEFAULT_QUANTS),
        sep=",",
    )
    name: str | None = arg("registry name of the export (default: the adapter id)", default=None)
    outtype: str = arg("precision of the converted GGUF", default="f16", choices=OUTTYPES)
    force: bool = arg("replace an existing export of that name", default=False)
    progress: bool = arg("progress bars", default=True)

    def __post_init__(self) -> None:
        self.quant = [q.lower() for q in self.quant]
        bad = [q for q in self.quant if q not in QUANT_TYPES]
        if bad:
            raise ValueError(f"--quant: unknown type {', '.join(bad)}; use {', '.join(QUANT_TYPES)}")
        if len(set(self.quant)) != len(self.quant):
            raise ValueError("--quant: a type is given twice")
        if self.name is not None and not NAME_RE.match(self.name):
            raise ValueError(f"--name {self.name!r}: use a-z, 0-9, '.', '_' or '-' (up to 64 characters)")


def export_command(args: ExportArgs) -> int:
    from quantize.export import export_adapter

    export = export_adapter(
        args.source,
        ExportOptions(
            name=args.name, quants=args.quant, outtype=args.outtype, force=args.force, progress=args.progress
        ),
    )
    for kind, entry in export.files.items():
        spec = f"BASE + {export.name}" if kind == "lora" else f"{export.name}:{kind}"
        print(f"{spec:<32} {entry.size / 1e6:>9,.1f} MB  {entry.path}")
    print(f"registered: --model {export.name} (= {export.name}:{export.default})")
    if _promoted_adapter() == export.record["adapter"]["id"]:
        versions.promote(export.name)  # this export, not whichever of the adapter's sorts newest
        print(f"default model (stable) is now {export.name}: its adapter is the promoted one")
    return 0


def _promoted_adapter() -> str | None:
    try:
        from trainer import adapters
    except ImportError:  # the train extra is not installed: no adapter registry
        return None
    return adapters.promoted_id()


def register(subparsers: argparse._SubParsersAction) -> None:
    add_command(
        subparsers,
        "export",
        ExportArgs,
        export_command,
        help="merge a trained adapter, convert it to GGUF with llama.cpp, quantize and register it",
    )
