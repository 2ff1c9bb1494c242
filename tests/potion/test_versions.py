"""The `stable` pointer: promote, rollback, history, atomic writes, and what the registry makes of it."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from potion import registry, versions
from potion.cli import main
from potion.errors import ModelNotFound, ModelVersionError

TENSOR = [("t", [32], 0)]  # one tensor: a GGUF the registry accepts


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_without_promotions_stable_is_the_builtin_default(potion_home) -> None:
    assert versions.stable() == registry.DEFAULT_MODEL
    assert versions.revision() is None and versions.history() == []
    assert registry.default_spec(None) == registry.default_spec("stable") == registry.DEFAULT_MODEL
    assert registry.default_spec(" other ") == "other"


def test_promote_moves_the_default_of_the_registry_and_rollback_moves_it_back(potion_home, make_gguf) -> None:
    a, b = make_gguf("a.gguf", tensors=TENSOR), make_gguf("b.gguf", tensors=TENSOR)
    event = versions.promote(str(a))
    assert (event.action, event.before, event.after) == ("promote", registry.DEFAULT_MODEL, str(a))
    assert registry.resolve() == registry.resolve("stable") == a.resolve()
    assert registry.resolve_model(None).path == a.resolve()

    versions.promote(str(b))
    assert registry.resolve() == b.resolve()
    event = versions.rollback()
    assert (event.before, event.after) == (str(b), str(a))
    assert registry.resolve() == a.resolve()
    assert versions.rollback().after == registry.DEFAULT_MODEL
    with pytest.raises(ModelVersionError, match="nothing to roll back") as err:
        versions.rollback()
    assert "potion models history" in err.value.user_message()
    assert [(e.action, e.after) for e in versions.history()] == [
        ("promote", str(a)),
        ("promote", str(b)),
        ("rollback", str(a)),
        ("rollback", registry.DEFAULT_MODEL),
    ]


def test_promoting_the_stable_model_again_changes_nothing(potion_home, make_gguf) -> None:
    a = str(make_gguf("a.gguf", tensors=TENSOR))
    versions.promote(a)
    before = versions.revision()
    assert versions.promote(a) is None
    assert versions.revision() == before and len(versions.history()) == 1


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("no-such-model", ModelNotFound, "no model named 'no-such-model'"),
        ("/nowhere/x.gguf", ModelNotFound, "no such file"),
        ("stable", ModelVersionError, "cannot point at itself"),
        ("  ", ModelVersionError, "needs a model name"),
    ],
)
def test_a_model_that_cannot_be_used_is_not_promoted(potion_home, spec, error, message) -> None:
    with pytest.raises(error, match=message):
        versions.promote(spec)
    assert versions.revision() is None and versions.stable() == registry.DEFAULT_MODEL


def test_a_damaged_pointer_file_is_one_clear_error(potion_home) -> None:
    versions.path().write_text('{"stack": "oops"}')
    with pytest.raises(ModelVersionError, match="damaged") as err:
        versions.stable()
    assert "delete it" in err.value.user_message()
    with pytest.raises(ModelVersionError):
        registry.resolve()


def test_concurrent_promotions_lose_nothing_and_readers_never_see_half_a_file(potion_home) -> None:
    specs = [f"model-{i}" for i in range(40)]
    stop = threading.Event()
    seen_errors: list[Exception] = []

    def read() -> None:
        while not stop.is_set():
            try:
                versions.stable()
            except Exception as exc:  # noqa: BLE001 - any failure is the bug this test looks for
                seen_errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=versions.promote, args=(s,), kwargs={"check": str}) for s in specs]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    reader.join()
    assert seen_errors == []
    assert sorted(e.after for e in versions.history()) == sorted(specs)
    assert not list(versions.path().parent.glob(".versions.json.*.tmp"))


def test_the_watcher_says_when_stable_moved_to_another_model(potion_home, make_gguf) -> None:
    a, b = str(make_gguf("a.gguf", tensors=TENSOR)), str(make_gguf("b.gguf", tensors=TENSOR))
    watcher = versions.StableWatcher()
    assert watcher.moved() is None and watcher.loaded == registry.DEFAULT_MODEL
    versions.promote(a)
    assert watcher.moved() == a and watcher.moved() is None
    versions.promote(b)
    versions.rollback()  # back where the watcher's process already is: nothing to reload
    assert watcher.moved() is None


def test_cli_promote_history_rollback(potion_home, make_gguf, capsys) -> None:
    a = str(make_gguf("a.gguf", tensors=TENSOR))
    code, out, _ = run(capsys, "models", "promote", a)
    assert code == 0 and out == f"stable: {registry.DEFAULT_MODEL} -> {a}\n"
    code, out, _ = run(capsys, "models", "promote", a)
    assert code == 0 and out == f"stable is already {a}\n"
    code, out, _ = run(capsys, "models", "path")
    assert code == 0 and out == f"{Path(a).resolve()}\n"  # the default follows stable
    code, out, _ = run(capsys, "models", "list")
    assert f"stable: {a}" in out  # a path has no row of its own
    code, out, _ = run(capsys, "models", "history")
    assert code == 0 and "promote" in out and out.endswith(f"stable: {a}\n")
    code, out, _ = run(capsys, "models", "history", "--json")
    (event,) = map(json.loads, out.splitlines())
    assert event["action"] == "promote" and event["to"] == a and event["from"] == registry.DEFAULT_MODEL
    code, out, _ = run(capsys, "models", "rollback")
    assert code == 0 and out == f"stable: {a} -> {registry.DEFAULT_MODEL}\n"
    code, out, err = run(capsys, "models", "rollback")
    assert code == 1 and out == "" and "nothing to roll back" in err and len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, "models", "promote", "no-such-model")
    assert code == 1 and "no model named 'no-such-model'" in err


def test_list_marks_a_promoted_registry_model_as_the_default(fake_registry_model, capsys) -> None:
    registry.pull("fake-model", progress=False)
    versions.promote("fake-model")
    code, out, _ = run(capsys, "models", "list", "--json")
    rows = {r["name"]: r for r in map(json.loads, out.splitlines())}
    assert rows["fake-model"]["default"] is True and rows[registry.DEFAULT_MODEL]["default"] is False
