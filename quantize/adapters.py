"""Find a trained adapter and check that its base is the one on disk.

RUN_OR_ADAPTER is a run directory (`RUN/adapter/potion_adapter.json`), an adapter directory (peft
`save_pretrained` with `potion_adapter.json`), or an adapter id that `trainer.adapters.resolve` knows.
The sidecar's `base.sha256` hashes the base's weights (`weights_sha256`): an adapter is only merged into
the very weights it was trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from potion.errors import PotionError
from quantize.errors import AdapterMismatch, AdapterNotFound, UnsupportedArchitecture

SIDECAR = "potion_adapter.json"
SUPPORTED_ARCHITECTURES = ("MistralForCausalLM", "Qwen2ForCausalLM", "LlamaForCausalLM")


@dataclass(frozen=True)
class Adapter:
    """A peft adapter folder and what its sidecar says about its base."""

    id: str
    dir: Path
    base_dir: Path
    base_sha256: str
    base_spec: str | None
    architecture: str
    sidecar: dict[str, Any]


def weights_sha256(hf_dir: Path) -> str:
    """The trainer's hash of a checkpoint's weights (`trainer.model.hash_weights`), always recomputed
    here, never read from a sidecar: an export must notice weights that changed since training."""
    from trainer.errors import ModelSourceError
    from trainer.model import hash_weights

    try:
        return hash_weights(hf_dir)
    except ModelSourceError as exc:
        raise AdapterNotFound(
            f"{hf_dir} has no .safetensors weights", hint="point the adapter at its HF base"
        ) from exc


def architecture(hf_dir: Path) -> str:
    """The `architectures[0]` of a checkpoint; UnsupportedArchitecture names the supported ones."""
    try:
        config = json.loads((Path(hf_dir) / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise AdapterNotFound(
            f"cannot read {hf_dir}/config.json: {exc}", hint="is it an HF checkpoint?"
        ) from exc
    arch = (config.get("architectures") or ["?"])[0]
    if arch not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedArchitecture(
            f"the base model is a {arch}; export supports {', '.join(SUPPORTED_ARCHITECTURES)}",
            hint="train the adapter on a Mistral, Qwen2 or Llama base",
        )
    return arch


def find_adapter(spec: str | None) -> Adapter:
    """The adapter named by a run dir, an adapter dir or an id (None: the promoted adapter);
    AdapterNotFound says which forms exist."""
    if spec is None:
        return _promoted()
    path = Path(spec).expanduser()
    if path.exists():  # absolute: the converters run in another working directory
        path = path.resolve()
    if (path / "adapter" / SIDECAR).is_file():
        return read_adapter(path / "adapter")
    if (path / SIDECAR).is_file():
        return read_adapter(path)
    if path.is_dir():
        raise AdapterNotFound(
            f"{path} has no {SIDECAR} (nor adapter/{SIDECAR})",
            hint="pass a run directory of `potion train` or its adapter/ folder",
        )
    try:
        from trainer import adapters as trainer_adapters

        record = trainer_adapters.resolve(spec)
    except (ImportError, AttributeError):
        record = None
    except PotionError as exc:  # the trainer's own error: keep its message, say what we accept
        raise AdapterNotFound(
            f"no adapter {spec!r}: {exc}", hint="pass a run directory, an adapter folder or an adapter id"
        ) from exc
    folder = getattr(record, "adapter_dir", None) if record is not None else None
    if folder is None:
        raise AdapterNotFound(
            f"no run directory, adapter folder or adapter id {spec!r}",
            hint="pass a run directory of `potion train` or its adapter/ folder",
        )
    return read_adapter(Path(folder))


def _promoted() -> Adapter:
    from trainer import adapters as trainer_adapters

    try:
        record = trainer_adapters.resolve(None)
    except PotionError as exc:
        raise AdapterNotFound(
            f"no adapter given and {exc.message}",
            hint="pass a run directory or an adapter id, or promote one: `potion adapters promote ID`",
        ) from exc
    return read_adapter(Path(record.adapter_dir))


def read_adapter(folder: Path) -> Adapter:
    try:
        sidecar = json.loads((folder / SIDECAR).read_text())
        base = sidecar["base"]
        base_dir = Path(base["hf_dir"]).expanduser()
        base_sha = str(base["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AdapterNotFound(
            f"{folder / SIDECAR} is not a valid adapter sidecar ({exc})",
            hint="re-run `potion train`, which writes it with the adapter",
        ) from exc
    if not (folder / "adapter_config.json").is_file():
        raise AdapterNotFound(
            f"{folder} has no adapter_config.json", hint="it must be a peft save_pretrained folder"
        )
    return Adapter(
        id=str(sidecar.get("id") or folder.parent.name),
        dir=folder,
        base_dir=base_dir,
        base_sha256=base_sha,
        base_spec=base.get("spec"),
        architecture=str(base.get("architecture") or ""),
        sidecar=sidecar,
    )


def check_base(adapter: Adapter) -> str:
    """The base's architecture, once its weights hash to what the adapter was trained on."""
    if not adapter.base_dir.is_dir():
        raise AdapterMismatch(
            f"the base of adapter {adapter.id} is gone: {adapter.base_dir}",
            hint="rebuild the base (potion train does it) or retrain the adapter",
        )
    arch = architecture(adapter.base_dir)
    if adapter.architecture and adapter.architecture != arch:
        raise AdapterMismatch(
            f"adapter {adapter.id} was trained on a {adapter.architecture}, {adapter.base_dir} is a {arch}",
            hint="export it with the base it was trained on",
        )
    digest = weights_sha256(adapter.base_dir)
    if digest != adapter.base_sha256:
        raise AdapterMismatch(
            f"adapter {adapter.id} was trained on base weights {adapter.base_sha256[:12]}…, "
            f"but {adapter.base_dir} hashes to {digest[:12]}…",
            hint="the base changed since training: retrain the adapter or restore that base",
        )
    return arch
