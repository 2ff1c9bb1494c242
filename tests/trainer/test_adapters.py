"""The adapter registry: register, list, promote, rollback, resolve; a base with another hash is refused."""

from __future__ import annotations

import json

import pytest

from potion import versions
from potion.cli import main
from tests.potion.test_registry_exports import make_export
from trainer import adapters
from trainer.errors import AdapterError

BASE = {"spec": "tiny:mistral", "hf_dir": "/x", "sha256": "a" * 64, "architecture": "MistralForCausalLM"}


def make_adapter(root, name, loss):
    run = root / name
    adapter = run / "adapter"
    adapter.mkdir(parents=True)
    adapters.write_sidecar(
        adapter, adapter_id=f"{name}-id", run_dir=run, base=BASE, metrics={"stage2_eval_loss": loss}
    )
    return adapter


def test_sidecar_is_what_interfaces_fix(tmp_path):
    adapter = make_adapter(tmp_path, "r", 1.5)
    data = json.loads((adapter / "potion_adapter.json").read_text())
    assert set(data) == {"id", "run_dir", "base", "metrics", "created"}
    assert set(data["base"]) == {"spec", "hf_dir", "sha256", "architecture"}


def test_promote_and_rollback(tmp_path, potion_home, capsys):
    a = adapters.register(make_adapter(tmp_path, "a", 2.0))
    b = adapters.register(make_adapter(tmp_path, "b", 1.0))
    assert [r.id for r in adapters.list_adapters()] == [a.id, b.id]
    with pytest.raises(AdapterError, match="no adapter is promoted"):
        adapters.resolve()
    adapters.promote(a.id)
    adapters.promote(b.id)
    assert adapters.resolve().id == b.id
    assert [r.promoted for r in adapters.list_adapters()] == [False, True]
    assert adapters.rollback().id == a.id
    assert adapters.resolve().id == a.id
    assert adapters.rollback() is None
    with pytest.raises(AdapterError, match="nothing to roll back"):
        adapters.rollback()
    # resolve by run dir and by adapter dir
    assert adapters.resolve(str(tmp_path / "b")).id == b.id
    assert adapters.resolve(str(tmp_path / "b" / "adapter")).id == b.id
    with pytest.raises(AdapterError, match="no adapter 'zzz'"):
        adapters.resolve("zzz")
    with pytest.raises(AdapterError, match="no adapter 'zzz' in the registry"):
        adapters.promote("zzz")


def test_cli(tmp_path, potion_home, capsys):
    a = adapters.register(make_adapter(tmp_path, "a", 2.0))
    b = adapters.register(make_adapter(tmp_path, "b", 1.0))
    assert main(["adapters", "promote", a.id]) == 0
    assert main(["adapters", "promote", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    assert main(["adapters", "list"]) == 0
    out = capsys.readouterr().out
    assert f"* {b.id}" in out and f"  {a.id}" in out and "stage2_eval_loss=1" in out
    assert main(["adapters", "show"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == b.id
    assert main(["adapters", "rollback"]) == 0
    assert f"promoted {a.id}" in capsys.readouterr().out
    assert main(["adapters", "show", "nope"]) == 1
    assert "no adapter 'nope'" in capsys.readouterr().err


def test_an_adapter_refuses_another_base(tmp_path):
    record = adapters.read_sidecar(make_adapter(tmp_path, "a", 1.0))
    record.check_base("a" * 64)
    with pytest.raises(AdapterError, match="trained on a base with sha256 aaaaaaaaaaaa") as info:
        record.check_base("b" * 64)
    assert "tiny:mistral" in info.value.user_message()


def test_the_promoted_adapter_is_the_registrys_default_through_its_export(tmp_path, potion_home, capsys):
    a = adapters.register(make_adapter(tmp_path, "a", 2.0))
    b = adapters.register(make_adapter(tmp_path, "b", 1.0))
    builtin = versions.stable()
    make_export("a-old", adapter=a.id, created="2026-12-01T00:00:00Z")
    make_export("a-new", adapter=a.id, created="2026-12-02T00:00:00Z")
    make_export("other", adapter="someone-else")
    assert [e.name for e in adapters.exports_of(a.id)] == ["a-old", "a-new"]

    assert main(["adapters", "promote", a.id]) == 0
    assert versions.stable() == "a-new"  # its newest export
    assert "default model (stable): a-new\n" in capsys.readouterr().out
    # b has no export yet: stable stays, and the CLI says how b becomes the default
    assert main(["adapters", "promote", b.id]) == 0
    assert versions.stable() == "a-new"
    assert f"`potion export` exports {b.id} and makes it the default" in capsys.readouterr().out
    make_export("b-run", adapter=b.id)
    assert adapters.make_default_model(b.id) == "b-run"  # its newest export
    assert versions.stable() == "b-run"

    assert main(["adapters", "rollback"]) == 0  # b's export was stable: stable goes back with it
    assert versions.stable() == "a-new"
    assert f"promoted {a.id}\ndefault model (stable): a-new" in capsys.readouterr().out
    assert adapters.rollback() is None
    assert versions.stable() == builtin
    assert [e.action for e in versions.history()] == ["promote", "promote", "rollback", "rollback"]


def test_a_rollback_leaves_a_default_chosen_by_hand(tmp_path, potion_home):
    a = adapters.register(make_adapter(tmp_path, "a", 2.0))
    make_export("a-run", adapter=a.id)
    make_export("by-hand", adapter="someone-else")
    adapters.promote(a.id)
    versions.promote("by-hand")  # `potion models promote by-hand` after the adapter's promotion
    assert adapters.rollback() is None
    assert versions.stable() == "by-hand"
