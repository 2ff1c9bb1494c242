"""`python -m lsp.demo`: a real LSP session against `potion lsp` on the default model.

It starts the server over stdio exactly as an editor does, opens examples/counter.ex, waits for the model
to load ($/progress), then prints an inline completion inside `increment/0`, the hover of
`GenServer.start_link`, and the GenServer scaffold the `potion.newModule` command creates. `make setup`
ends with it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "counter.ex"


def _capabilities() -> types.ClientCapabilities:
    return types.ClientCapabilities(
        window=types.WindowClientCapabilities(work_done_progress=True),
        workspace=types.WorkspaceClientCapabilities(
            apply_edit=True,
            workspace_edit=types.WorkspaceEditClientCapabilities(
                document_changes=True, resource_operations=[types.ResourceOperationKind.Create]
            ),
        ),
        text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities(),
            hover=types.HoverClientCapabilities(content_format=[types.MarkupKind.Markdown]),
        ),
    )


def _client(out: list[str]) -> LanguageClient:
    client = LanguageClient("potion-demo", "1")
    edits: list[types.WorkspaceEdit] = []
    client.applied_edits = edits  # type: ignore[attr-defined]

    @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def create_progress(params: types.WorkDoneProgressCreateParams) -> None:
        return None

    @client.feature(types.PROGRESS)
    def progress(params: types.ProgressParams) -> None:
        value = params.value
        message = value.get("message") if isinstance(value, dict) else getattr(value, "message", None)
        if message:
            print(f"  [progress] {message}", flush=True)

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def show_message(params: types.ShowMessageParams) -> None:
        out.append(params.message)
        print(f"  [server] {params.message}", flush=True)

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def log_message(params: types.LogMessageParams) -> None:
        return None

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        edits.append(params.edit)
        return types.ApplyWorkspaceEditResult(applied=True)

    return client


def _edit_texts(edit: Any) -> list[tuple[str, str]]:
    """(uri, inserted text) of every text edit in a WorkspaceEdit (document changes or changes)."""
    found: list[tuple[str, str]] = []
    for change in getattr(edit, "document_changes", None) or []:
        for text_edit in getattr(change, "edits", None) or []:
            found.append((change.text_document.uri, text_edit.new_text))
    for uri, text_edits in (getattr(edit, "changes", None) or {}).items():
        found.extend((uri, e.new_text) for e in text_edits)
    return found


def _hover_text(hover: types.Hover | None) -> str:
    if hover is None:
        return "(no hover)"
    contents = hover.contents
    if isinstance(contents, types.MarkupContent):
        return contents.value
    if isinstance(contents, list):
        return "\n".join(c if isinstance(c, str) else c.value for c in contents)
    return contents if isinstance(contents, str) else contents.value


async def run_demo(model: str | None, *, timeout: float, sample: Path = SAMPLE) -> dict[str, Any]:
    """Run the session in a throwaway workspace; return what it showed (the e2e test checks it)."""
    with tempfile.TemporaryDirectory(prefix="potion-demo-") as tmp:
        return await _session(model, timeout, sample, Path(tmp))


async def _session(model: str | None, timeout: float, sample: Path, workspace: Path) -> dict[str, Any]:
    messages: list[str] = []
    client = _client(messages)
    (workspace / "lib").mkdir()
    target = workspace / "lib" / "counter.ex"
    text = sample.read_text(encoding="utf-8")
    target.write_text(text, encoding="utf-8")
    uri = target.as_uri()
    # A generous time budget: on a busy CPU the default 5 s could cut the one suggestion the demo shows.
    options: dict[str, Any] = {"debounceMs": 0, "telemetry": True, "timeBudgetMs": 30_000}
    if model:
        options["model"] = model
    await client.start_io(sys.executable, "-m", "lsp", "--stdio", env=dict(os.environ))
    result: dict[str, Any] = {}
    try:
        await client.initialize_async(
            types.InitializeParams(
                capabilities=_capabilities(),
                root_uri=workspace.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name="demo")],
                initialization_options=options,
            )
        )
        client.initialized(types.InitializedParams())
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id="elixir", version=1, text=text)
            )
        )
        print(f"Potion language server demo on {sample.name} (a real LSP session over stdio)\n")
        print("Loading the model ...", flush=True)
        started = time.monotonic()
        while True:
            state = await client.protocol.send_request_async("potion/status", {})
            if state.model_ready:
                break
            if messages or time.monotonic() - started > timeout:
                raise SystemExit(f"the model did not load: {messages[-1] if messages else 'timed out'}")
            await asyncio.sleep(0.2)
        print(f"  {state.model} ready in {time.monotonic() - started:.1f}s\n")

        # 1. Inline completion in the empty body of increment/0 (line 14, column 5 in editor terms).
        lines = text.split("\n")
        line = next(i for i, s in enumerate(lines) if s.strip() == "" and "def increment" in lines[i - 1])
        position = types.Position(line=line, character=len(lines[line]))
        t0 = time.perf_counter()
        inline = await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=position,
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
            )
        )
        elapsed = (time.perf_counter() - t0) * 1000
        suggestion = inline.items[0].insert_text if inline and inline.items else ""
        result["inline"] = suggestion
        print(f"1. Inline completion at line {line + 1}, column {position.character + 1} ({elapsed:.0f} ms):")
        print("   " + lines[line - 1].strip())
        for s in (suggestion or "(empty)").split("\n"):
            print(f"   >>> {s}")
        print()

        # 2. Hover on GenServer.start_link.
        hover_line = next(i for i, s in enumerate(lines) if "GenServer.start_link" in s)
        column = lines[hover_line].index("start_link") + 2
        hover = await client.text_document_hover_async(
            types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=hover_line, character=column),
            )
        )
        result["hover"] = _hover_text(hover)
        print(f"2. Hover on GenServer.start_link (line {hover_line + 1}):")
        for s in result["hover"].strip().split("\n")[:14]:
            print(f"   {s}")
        print()

        # 3. A GenServer scaffold through workspace/executeCommand.
        print("3. New GenServer module Demo.Worker (workspace/executeCommand potion.newModule):")
        try:
            reply = await client.workspace_execute_command_async(
                types.ExecuteCommandParams(
                    command="potion.newModule", arguments=[{"kind": "genserver", "module": "Demo.Worker"}]
                )
            )
        except Exception as exc:  # the command's error response, shown as the user would see it
            reply = None
            print(f"   (the server refused: {exc})")
        created = [t for e in client.applied_edits for t in _edit_texts(e)]  # type: ignore[attr-defined]
        path = getattr(reply, "path", None)
        if not created and path and Path(path).exists():  # the server wrote the file itself
            created = [(Path(path).as_uri(), Path(path).read_text(encoding="utf-8"))]
        result["scaffold"] = created[0][1] if created else ""
        if not created:
            print("   (no file was created: is lsp.features.code_actions installed?)")
        else:
            print(f"   {created[0][0]}")
            for s in created[0][1].rstrip().split("\n"):
                print(f"   | {s}")
        print()
        await client.shutdown_async(None)
        client.exit(None)
    finally:
        await client.stop()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lsp.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="registry name, hf: spec or .gguf path")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the model")
    args = parser.parse_args(argv)
    result = asyncio.run(run_demo(args.model, timeout=args.timeout))
    ok = bool(result.get("inline")) and bool(result.get("hover")) and bool(result.get("scaffold"))
    print(
        "demo "
        + ("complete: inline completion, hover and scaffold shown" if ok else "incomplete (see above)")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
