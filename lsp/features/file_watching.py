"""`workspace/didChangeWatchedFiles`: follow Elixir files changed outside the editor (git checkout,
`mix deps.get`, code generators) in the server's workspace index. Clients report them themselves
(VS Code watches `**/*.{ex,exs}`); an open buffer stays the truth until it is closed."""

from __future__ import annotations

from lsprotocol import types

from lsp.server import PotionServer


def register(server: PotionServer) -> None:
    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched_files_changed(ls: PotionServer, params: types.DidChangeWatchedFilesParams) -> None:
        for change in params.changes:
            ls.workspace_index.file_changed(change.uri, deleted=change.type == types.FileChangeType.Deleted)
