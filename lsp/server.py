"""The Potion language server: state, document sync, settings and lifecycle.

Each LSP feature lives in its own module under `lsp.features` with a `register(server)`; this module
holds what they share: settings (`config`), the model (`backend`, None until `model_ready` is set), the
completion `engine`, the `workspace_index`, `telemetry`, the ring buffer of recent chunks, and the pygls
workspace.

Document sync handlers are registered here, once: pygls allows one handler per notification, so other
parts subscribe with `add_document_listener` instead of registering their own. The workspace index is
such a listener, created and subscribed here; it starts scanning the workspace folders at `initialized`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import FeatureRequestError, JsonRpcException, JsonRpcInvalidRequest
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method
from pygls.workspace import TextDocument

from lsp.canary import CanaryLoader
from lsp.context import RecentChunks, uri_path
from lsp.engine import CompletionEngine, CompletionRequest
from lsp.lifecycle import ModelLoader, ServerConfig, parse_settings
from lsp.metrics import Metrics
from lsp.open_buffers import MAX_ANALYSIS_CHARS
from lsp.telemetry import Telemetry
from lsp.workspace_index import WorkspaceIndex
from potion import __version__
from potion.backends import Backend
from potion.errors import PotionError

log = logging.getLogger(__name__)

DocumentListener = Callable[[str, str], None]  # (event: open|change|save|close, uri)
StartupHook = Callable[["PotionServer"], None]

STATUS = "potion/status"
ACCEPTED_COMMAND = "potion.accepted"


class _Answered:
    """A message that was already answered with an error while it was being decoded."""

    jsonrpc = "2.0"


class PotionProtocol(LanguageServerProtocol):
    """pygls' protocol, hardened against bad input.

    - A request whose params do not fit the method's schema gets an InvalidParams error response
      (pygls would drop it, leaving the client waiting forever).
    - `didChange` for a document that was never opened is ignored with a log line (pygls raises).
    - A request whose id is no integer or string (an object, a boolean, a float) gets Invalid Request
      with id null, as JSON-RPC 2.0 says (pygls would drop it).
    - A second `initialize` gets Invalid Request; the first session, open documents included, stays.
    - Text from the editor is sanitised once, here where it enters (`clean_text`).
    """

    _initialize_seen = False

    def structure_message(self, data: dict[str, Any]):
        if isinstance(data, dict) and "jsonrpc" in data and "method" in data and "id" in data:
            msg_id = data["id"]
            if not isinstance(msg_id, int | str) or isinstance(msg_id, bool):
                log.warning("request %r with an id of type %s: Invalid Request", data["method"], type(msg_id))
                self._send_data(
                    {
                        "jsonrpc": "2.0",
                        "id": None,
                        "error": {
                            "code": -32600,
                            "message": "Invalid Request: the id must be a string or integer",
                        },
                    }
                )
                return _Answered()
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if isinstance(data, dict) and "id" in data and "method" in data:
                msg_id = data["id"]
                if isinstance(msg_id, int | str) and not isinstance(msg_id, bool):
                    self._send_response(msg_id, error=exc.to_response_error())
                    return _Answered()
            if isinstance(data, dict) and "method" in data and "id" not in data:
                return _Answered()  # a notification gets no answer; pygls logged the line
            raise

    def handle_message(self, message):
        if isinstance(message, _Answered):
            return
        version = message.get("jsonrpc") if isinstance(message, dict) else getattr(message, "jsonrpc", None)
        if version != self.VERSION:
            # Valid JSON but no JSON-RPC 2.0 message: Invalid Request, to its id when it has a usable one.
            msg_id = message.get("id") if isinstance(message, dict) else getattr(message, "id", None)
            if not isinstance(msg_id, int | str) or isinstance(msg_id, bool):
                msg_id = None
            self._send_data(
                {
                    "jsonrpc": "2.0",
                    "id": msg_id,
                    "error": {"code": -32600, "message": "Invalid Request: not a JSON-RPC 2.0 message"},
                }
            )
            return
        return super().handle_message(message)

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams):
        if self._initialize_seen:
            log.warning("a second initialize request: refused")
            raise JsonRpcInvalidRequest("initialize was already received: the server is initialized")
        self._initialize_seen = True
        return (yield from super().lsp_initialize(params))

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams):
        params.text_document.text = clean_text(params.text_document.text)
        yield from super().lsp_text_document__did_open(params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        for change in params.content_changes:
            change.text = clean_text(change.text)
        uri = params.text_document.uri
        if unquote(uri) not in self.workspace.text_documents:
            log.warning("didChange for %s, which was never opened: ignored", uri)
            return
        for change in params.content_changes:
            try:
                self.workspace.update_text_document(params.text_document, change)
            except (IndexError, ValueError) as exc:  # a range outside the document
                log.warning("bad change to %s ignored: %s", uri, exc)
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """`text` with lone surrogates (JSON allows `"\\ud800"`; no encoder does) replaced by U+FFFD.

    JSON decoding already joined every valid pair, so any surrogate left is a lone one. Once replaced
    here, nothing downstream (tokenizers, prompts of other files, SQLite) meets one.
    """
    return _LONE_SURROGATE.sub("\ufffd", text) if _LONE_SURROGATE.search(text) else text


def document_split(document: TextDocument, position: types.Position) -> tuple[str, str]:
    """The text before and after `position`, clamping a position past the end of a line or the file.

    Walks to the line with `str.find` rather than splitting the whole source: a 5 MB file stays cheap.
    """
    source = document.source
    start = 0
    for _ in range(max(0, position.line)):
        nxt = source.find("\n", start)
        if nxt < 0:
            return source, ""
        start = nxt + 1
    end = source.find("\n", start)
    line = source[start : len(source) if end < 0 else end].rstrip("\r")
    units = document.position_codec.impl.code_units_for_char
    counted = 0
    index = 0
    for char in line:
        if counted >= position.character:
            break
        counted += units(char)
        index += 1
    offset = start + index
    return source[:offset], source[offset:]


class PotionServer(LanguageServer):
    """The language server and the state its features share."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        super().__init__("potion", __version__, protocol_cls=PotionProtocol, max_workers=4)
        self.config = config or ServerConfig()
        self.backend: Backend | None = None
        self.model_ready = threading.Event()
        self.engine = CompletionEngine(self.config.engine, on_error=self._generation_failed)
        self.telemetry: Telemetry | None = None
        self.recent = RecentChunks()
        self.loader = ModelLoader(self)
        self.canary = CanaryLoader(self)  # the candidate model of a canary split, after the stable one
        self.metrics = Metrics(
            errors=lambda: self.engine.stats.errors_by_model, on_slow=self._latency_warning
        )
        self.metrics.configure(warn_after_s=self.config.latency_warning_ms / 1000)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[DocumentListener] = []
        self._startup: dict[str, list[StartupHook]] = {"initialize": [], "initialized": []}
        self.workspace_index = WorkspaceIndex(text_of=self._document_text)
        self.add_document_listener(self.workspace_index.document_event)
        self.add_startup_hook("initialized", lambda ls: ls.workspace_index.start(ls.workspace_roots()))
        self.add_startup_hook("initialized", lambda ls: ls.canary.start(ls.config))
        self._generation_error_shown = False
        self._telemetry_failed = False
        self._progress: dict[str, str | None] = {}  # token -> None (created), "begun", or a pending end

    # -- state shared with the features -------------------------------------------------------------

    def add_document_listener(self, listener: DocumentListener) -> None:
        """Call `listener(event, uri)` after each didOpen/didChange/didSave/didClose."""
        self._listeners.append(listener)

    def add_startup_hook(self, stage: str, hook: StartupHook) -> None:
        """Call `hook(server)` at a stage of the handshake: "initialize" (the client's capabilities are
        known and `server_capabilities` can still change before the result is sent) or "initialized"
        (the client now accepts requests such as `client/registerCapability`)."""
        self._startup[stage].append(hook)

    def _run_startup_hooks(self, stage: str) -> None:
        for hook in self._startup[stage]:
            try:
                hook(self)
            except Exception:  # one feature's setup must not stop the server from starting
                log.exception("%s hook %r failed", stage, hook)

    def document(self, uri: str) -> TextDocument | None:
        """An open document, or None (never reads an unopened file from disk)."""
        return self.workspace.text_documents.get(unquote(uri))  # pygls keys documents by unquoted URI

    def _document_text(self, uri: str) -> str:
        document = self.document(uri)
        return document.source if document is not None else ""

    def workspace_roots(self) -> list[str]:
        """The client's workspace folders (else its root path) as local paths."""
        roots = [path for folder in self.workspace.folders.values() if (path := uri_path(folder.uri))]
        if not roots and self.workspace.root_path:
            roots.append(self.workspace.root_path)
        return roots

    def position_encoding(self) -> str:
        """The negotiated position encoding as `potion.elixir` names it (UTF-16 unless agreed otherwise)."""
        value = self.workspace.position_encoding
        value = getattr(value, "value", value) or "utf-16"
        return value if value in ("utf-8", "utf-16", "utf-32") else "utf-16"

    def client_has_inline_completion(self) -> bool:
        caps = self.client_capabilities.text_document if self.client_capabilities else None
        return caps is not None and caps.inline_completion is not None

    def completion_request(self, uri: str, position: types.Position) -> CompletionRequest | None:
        document = self.document(uri)
        if document is None:
            return None
        prefix, suffix = document_split(document, position)
        extra = self.recent.extra_files(uri, max_chars=self.engine.config.extra_context_chars)
        return CompletionRequest(uri, prefix, suffix, path=uri_path(uri), extra_files=extra)

    def set_backend(self, backend: Backend | None) -> Backend | None:
        """Switch the model; returns the previous backend, which the caller closes (off the event loop:
        closing waits for a running generation to stop)."""
        old = self.backend
        self.backend = backend
        self.engine.backend = backend
        self.engine.clear_cache()
        if backend is None:
            self.model_ready.clear()
        else:
            self.model_ready.set()
        if old is not None and old is not backend:
            self.engine.cancel_running()
            return old
        return None

    def apply_settings(self, options: Any) -> None:
        """Apply client settings; a bad one is reported and the previous settings stay."""
        try:
            new = parse_settings(options, self.config)
        except PotionError as exc:
            self.show_message(f"Potion: {exc.user_message()}", types.MessageType.Error)
            return
        old, self.config = self.config, new
        self.engine.configure(new.engine)
        self.metrics.configure(warn_after_s=new.latency_warning_ms / 1000)
        if new.telemetry and self.telemetry is None:
            self._open_telemetry()
        # Before `initialized` nothing is loading yet: the first load starts there, with these settings.
        if new.model_key() != old.model_key() and self.loader.thread is not None:
            self.loader.start(new)
        if self.loader.thread is not None:
            self.canary.start(new)  # reloads only if the candidate changed; a new share re-routes

    # -- messages that may come from worker threads ------------------------------------------------

    def _on_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn` on the event loop: writes to stdout must not interleave between threads."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        try:
            if running is loop:
                fn(*args)
            else:
                loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed while shutting down
            log.debug("dropped a message after shutdown")

    def show_message(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self._on_loop(self.window_show_message, types.ShowMessageParams(type=kind, message=message))

    def progress_begin(self, token: str, title: str, message: str) -> None:
        """Create a progress token and begin it once the client acknowledged it (as the spec asks)."""

        def begin() -> None:
            window = self.client_capabilities.window if self.client_capabilities else None
            if not (window and window.work_done_progress):
                return
            self._progress[token] = None  # created, not begun: an early end waits here

            def created(*_: Any) -> None:
                self.work_done_progress.begin(
                    token, types.WorkDoneProgressBegin(title=title, message=message, cancellable=False)
                )
                if (pending_end := self._progress.pop(token, None)) is not None:
                    self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=pending_end))
                else:
                    self._progress[token] = "begun"

            self.work_done_progress.create(token, created)

        self._on_loop(begin)

    def progress_end(self, token: str, message: str) -> None:
        def end() -> None:
            if token not in self._progress:
                return  # the client has no progress support
            if self._progress[token] == "begun":
                del self._progress[token]
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))
            else:
                self._progress[token] = message  # sent right after the begin

        self._on_loop(end)

    def _generation_failed(self, exc: Exception) -> None:
        if self._generation_error_shown:
            return  # one message, not one per keystroke
        self._generation_error_shown = True
        text = exc.user_message() if isinstance(exc, PotionError) else f"{type(exc).__name__}: {exc}"
        self.show_message(f"Potion: generation failed: {text}", types.MessageType.Warning)

    def _latency_warning(self, p95_s: float, samples: int) -> None:
        limit = self.config.latency_warning_ms / 1000
        self.show_message(
            f"Potion: suggestions are slow: p95 latency {p95_s:.1f} s over the last minute ({samples} "
            f"suggestions), above {limit:g} s (potion.latencyWarningMs). A smaller model, a lower "
            "maxTokens or a GPU server (potion.backendUrl) helps.",
            types.MessageType.Warning,
        )

    def _open_telemetry(self) -> None:
        if self._telemetry_failed:
            return  # said once already: settings and `initialize` both ask for it
        try:
            # A damaged database is repaired (its readable rows kept) and said once, not left broken.
            self.telemetry = Telemetry(
                recover=True,
                on_notice=lambda text: self.show_message(f"Potion: {text}", types.MessageType.Warning),
            )
        except PotionError as exc:
            self._telemetry_failed = True
            self.show_message(f"Potion: {exc.user_message()}", types.MessageType.Warning)

    def report_server_error(self, error: Exception, source) -> None:
        """Bad JSON gets a ParseError response (id null); other errors are logged, not popped up."""
        if source is JsonRpcException and isinstance(error, ValueError):  # JSONDecodeError, bad UTF-8
            self.protocol._send_data(
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": f"Parse error: {error}"}}
            )
            return
        if source is FeatureRequestError:
            return  # the error response already told the client
        log.error("server error (%s): %s", getattr(source, "__name__", source), error)

    def close(self) -> None:
        self.engine.close()
        self.canary.close()
        self.metrics.close()
        if self.backend is not None:
            self.backend.close()
        if self.telemetry is not None:
            self.telemetry.close()


def register_core(server: PotionServer) -> None:
    """Lifecycle, settings, document sync, status and the acceptance command."""

    @server.feature(types.INITIALIZE)
    def initialize(ls: PotionServer, params: types.InitializeParams) -> None:
        ls.loop = asyncio.get_running_loop()
        ls.apply_settings(params.initialization_options)
        if ls.config.telemetry and ls.telemetry is None:
            ls._open_telemetry()
        ls._run_startup_hooks("initialize")

    @server.feature(types.INITIALIZED)
    def initialized(ls: PotionServer, params: types.InitializedParams) -> None:
        ls.loader.start(ls.config)
        ls._run_startup_hooks("initialized")

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: PotionServer, params: types.DidChangeConfigurationParams) -> None:
        ls.apply_settings(params.settings)

    def notify(event: str, uri: str) -> None:
        for listener in server._listeners:
            try:
                listener(event, uri)
            except Exception:  # one broken listener must not stop document sync for the others
                log.exception("document listener failed on %s %s", event, uri)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: PotionServer, params: types.DidOpenTextDocumentParams) -> None:
        if (size := len(params.text_document.text)) > MAX_ANALYSIS_CHARS:
            ls.show_message(
                f"Potion: {uri_path(params.text_document.uri) or params.text_document.uri} has {size:,} "
                f"characters, over the {MAX_ANALYSIS_CHARS:,} that are analysed: hover, Elixir completions "
                "and code actions are off for it; AI suggestions still work.",
                types.MessageType.Info,
            )
        ls.recent.note(params.text_document.uri, params.text_document.text, 0)
        notify("open", params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: PotionServer, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        document = ls.document(uri)
        if document is not None and params.content_changes:
            change = params.content_changes[-1]
            line = (
                change.range.start.line if isinstance(change, types.TextDocumentContentChangePartial) else 0
            )
            ls.recent.note(uri, document.source, line)
        notify("change", uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: PotionServer, params: types.DidSaveTextDocumentParams) -> None:
        notify("save", params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: PotionServer, params: types.DidCloseTextDocumentParams) -> None:
        notify("close", params.text_document.uri)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: PotionServer, params: None) -> None:
        ls.close()

    @server.feature(STATUS)
    def status(ls: PotionServer, params: Any) -> dict[str, Any]:
        """Model readiness and engine counters (for the demo, the benchmark and curious users)."""
        stats = ls.engine.stats
        return {
            "model_ready": ls.model_ready.is_set(),
            "model_state": ls.loader.state(),  # the editors' status bar: loading | ready | error
            "model_error": ls.loader.error,
            "model": ls.backend.info.name if ls.backend is not None else None,
            "requests": stats.requests,
            "generations": stats.generations,
            "cache_hits": stats.cache_hits,
            "superseded": stats.superseded,
            "cancelled": stats.cancelled,
            "errors": stats.errors,
            "canary": {
                "model": ls.config.canary.model,
                "share": ls.config.canary.share,
                "ready": ls.canary.backend is not None,
                "error": ls.canary.error,
            },
            "metrics_port": ls.metrics.port,
            "last": None
            if (last := ls.engine.last) is None
            else {
                "id": last.id,
                "cache_hit": last.cache_hit,
                "latency_ms": round(last.latency_ms, 2),
                "prompt_tokens": last.prompt_tokens,
                "completion_tokens": last.completion_tokens,
            },
        }

    @server.command(ACCEPTED_COMMAND)
    def accepted(ls: PotionServer, *args: Any) -> None:
        """Sent by the client when the user accepts a suggestion (the item's `command`)."""
        if not args or not isinstance(args[0], str):
            return
        ls.metrics.accepted(args[0])
        if ls.telemetry is not None:
            ls.telemetry.accepted(args[0])


def create_server(config: ServerConfig | None = None) -> PotionServer:
    from lsp import features

    server = PotionServer(config)
    register_core(server)
    features.register_all(server)
    return server
