// Potion for VS Code: a thin client that starts `potion lsp --stdio` and lets the server do the work.
//
// Everything interesting (inline completions, hover, scaffolds, code actions) lives in the Python
// server so VS Code and Neovim behave the same; this file only wires settings, commands and the
// proposed LSP 3.18 inline completion feature of vscode-languageclient.

import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";

let client: LanguageClient | undefined;
let output: vscode.OutputChannel | undefined;

/** The settings the server reads, in the shape of `initializationOptions` and `settings.potion`. */
export interface PotionSettings {
  model: string | null;
  backendUrl: string | null;
  debounceMs: number;
  maxTokens: number;
  timeBudgetMs: number;
  // Feature switches are flat keys, as the server reads them (`potion.features.*` in VS Code's UI).
  inlineCompletion: boolean;
  elixirCompletion: boolean;
  hover: boolean;
  codeActions: boolean;
  telemetry: boolean;
}

function readSettings(): PotionSettings {
  const c = vscode.workspace.getConfiguration("potion");
  // Empty strings mean "use the default": send null so the server does not mistake them for a value.
  const orNull = (v: string | undefined) => (v && v.trim() ? v.trim() : null);
  return {
    model: orNull(c.get<string>("model")),
    backendUrl: orNull(c.get<string>("backendUrl")),
    debounceMs: c.get<number>("debounceMs", 150),
    maxTokens: c.get<number>("maxTokens", 64),
    timeBudgetMs: c.get<number>("timeBudgetMs", 5000),
    inlineCompletion: c.get<boolean>("features.inlineCompletion", true),
    elixirCompletion: c.get<boolean>("features.elixirCompletion", true),
    hover: c.get<boolean>("features.hover", true),
    codeActions: c.get<boolean>("features.codeActions", true),
    telemetry: c.get<boolean>("features.telemetry", true),
  };
}

function serverOptions(): ServerOptions {
  const c = vscode.workspace.getConfiguration("potion");
  const command = c.get<string>("server.path", "potion") || "potion";
  const args = ["lsp", "--stdio", ...c.get<string[]>("server.args", [])];
  return { command, args, transport: TransportKind.stdio };
}

async function startClient(context: vscode.ExtensionContext): Promise<void> {
  output ??= vscode.window.createOutputChannel("Potion");
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: "file", language: "elixir" },
      { scheme: "untitled", language: "elixir" },
      { scheme: "file", pattern: "**/*.{ex,exs}" },
    ],
    initializationOptions: readSettings(),
    outputChannel: output,
    // Track mix projects and deps so the server's workspace index sees new files without a restart.
    synchronize: {
      fileEvents: vscode.workspace.createFileSystemWatcher("**/*.{ex,exs}"),
    },
  };
  client = new LanguageClient("potion", "Potion", serverOptions(), clientOptions);
  // textDocument/inlineCompletion is a proposed (LSP 3.18) feature in vscode-languageclient 9:
  // without this call VS Code would never ask the server for ghost text.
  client.registerProposedFeatures();
  try {
    await client.start();
  } catch (err) {
    const path = vscode.workspace.getConfiguration("potion").get<string>("server.path", "potion");
    void vscode.window.showErrorMessage(
      `Potion: could not start \`${path} lsp --stdio\` (${String(err)}). ` +
        "Set `potion.server.path` to the potion executable, e.g. /path/to/.venv/bin/potion.",
    );
    client = undefined;
  }
  context.subscriptions.push({ dispose: () => void client?.stop() });
}

async function restartClient(context: vscode.ExtensionContext): Promise<void> {
  const old = client;
  client = undefined;
  if (old) {
    await old.stop();
  }
  await startClient(context);
}

interface ScaffoldChoice {
  kind: string;
  title: string;
}

async function newModuleInteractive(): Promise<void> {
  if (!client) {
    void vscode.window.showErrorMessage("Potion: the language server is not running.");
    return;
  }
  // Ask the server for its scaffold kinds so the list never drifts from potion.scaffolds.
  const kinds = (await client.sendRequest(ExecuteCommandRequest.type, {
    command: "potion.listScaffolds",
    arguments: [],
  })) as ScaffoldChoice[] | null;
  const picked = await vscode.window.showQuickPick(
    (kinds ?? []).map((k) => ({ label: k.title, description: k.kind, scaffold: k.kind })),
    { placeHolder: "Which OTP module?" },
  );
  if (!picked) {
    return;
  }
  const module = await vscode.window.showInputBox({
    prompt: "Module name",
    placeHolder: "MyApp.Worker",
    validateInput: (v) =>
      /^[A-Z][A-Za-z0-9_]*(\.[A-Z][A-Za-z0-9_]*)*$/.test(v.trim())
        ? undefined
        : "An Elixir module name: dot-separated CamelCase parts, e.g. MyApp.Worker",
  });
  if (!module) {
    return;
  }
  // The server applies the WorkspaceEdit itself (workspace/applyEdit) and answers with the new file.
  const result = (await client.sendRequest(ExecuteCommandRequest.type, {
    command: "potion.newModule",
    arguments: [{ kind: picked.scaffold, module: module.trim() }],
  })) as { uri?: string } | null;
  if (result?.uri) {
    await vscode.window.showTextDocument(vscode.Uri.parse(result.uri));
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  context.subscriptions.push(
    vscode.commands.registerCommand("potion.newModuleInteractive", newModuleInteractive),
    vscode.commands.registerCommand("potion.restartServer", () => restartClient(context)),
    vscode.commands.registerCommand("potion.showOutput", () => output?.show()),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (!e.affectsConfiguration("potion")) {
        return;
      }
      if (e.affectsConfiguration("potion.server")) {
        // A different executable or arguments: only a new process picks them up.
        await restartClient(context);
      } else if (client) {
        await client.sendNotification(DidChangeConfigurationNotification.type, {
          settings: { potion: readSettings() },
        });
      }
    }),
  );
  await startClient(context);
}

export async function deactivate(): Promise<void> {
  if (client) {
    await client.stop();
    client = undefined;
  }
}
