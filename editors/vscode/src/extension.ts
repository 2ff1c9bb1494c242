// Potion for VS Code: a thin client that starts `potion lsp --stdio` and lets the server do the work.
//
// Everything interesting (inline completions, hover, scaffolds, code actions) lives in the Python
// server so VS Code and Neovim behave the same; this file wires settings, commands, the status bar,
// the proposed LSP 3.18 inline completion feature of vscode-languageclient, and the server's
// supervision: a missing executable is said once (no restart loop), a crash restarts with back-off.

import * as vscode from "vscode";
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";
import { ModelState, resolveExecutable, RestartPolicy, statusView } from "./supervision";

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
  latencyWarningMs: number;
  // The A/B candidate (`potion.canary.*` in VS Code's UI), sent as the server's `canary` section (kept last).
  canary: { model: string | null; backendUrl: string | null; share: number };
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
    latencyWarningMs: c.get<number>("latencyWarningMs", 5000),
    canary: {
      model: orNull(c.get<string>("canary.model")),
      backendUrl: orNull(c.get<string>("canary.backendUrl")),
      share: c.get<number>("canary.share", 0),
    },
  };
}

/**
 * vscode-languageclient pops up its own notifications when the connection fails ("couldn't create
 * connection", "server crashed 5 times"); the supervisor below says what to fix instead, once. The
 * client's messages still go to the output channel.
 */
class PotionClient extends LanguageClient {
  override error(message: string, data?: unknown, showNotification: boolean | "force" = true): void {
    super.error(message, data, showNotification === "force" ? false : showNotification);
  }
}

interface ModelStatus {
  model_state?: "loading" | "ready" | "error";
  model_error?: string | null;
  model?: string | null;
}

/** Owns the language client: starts it, restarts it after a crash, and keeps the status bar true. */
class Supervisor {
  client: LanguageClient | undefined;
  private readonly policy = new RestartPolicy();
  private restartTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private generation = 0; // a client's callbacks act only while it is the current one
  private noMixProject = false;

  constructor(
    private readonly output: vscode.OutputChannel,
    private readonly status: vscode.StatusBarItem,
  ) {}

  async start(): Promise<void> {
    const generation = ++this.generation;
    const c = vscode.workspace.getConfiguration("potion");
    const setting = c.get<string>("server.path", "potion") || "potion";
    const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const resolved = resolveExecutable(setting, process.env.PATH, cwd);
    if ("problem" in resolved) {
      // Nothing to restart: the setting has to change first (which starts it again).
      this.output.appendLine(`[potion] cannot start the server: potion.server.path ${resolved.problem}`);
      this.show("stopped", `potion.server.path ${resolved.problem}`);
      void this.fixSettingMessage(
        `Potion: cannot start the language server: \`potion.server.path\` (${setting}) ${resolved.problem}. ` +
          "Set `potion.server.path` to the potion executable, e.g. /path/to/.venv/bin/potion.",
      );
      return;
    }
    const serverOptions: ServerOptions = {
      command: resolved.path,
      args: ["lsp", "--stdio", ...c.get<string[]>("server.args", [])],
      transport: TransportKind.stdio,
      options: cwd ? { cwd } : undefined,
    };
    let running = false;
    const clientOptions: LanguageClientOptions = {
      documentSelector: [
        { scheme: "file", language: "elixir" },
        { scheme: "untitled", language: "elixir" },
        { scheme: "file", pattern: "**/*.{ex,exs}" },
      ],
      initializationOptions: readSettings(),
      outputChannel: this.output,
      // Track mix projects and deps so the server's workspace index sees new files without a restart.
      synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.{ex,exs}") },
      initializationFailedHandler: () => false, // said once by start() below, never retried
      errorHandler: {
        error: (_error, _message, count) => ({
          action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown,
          handled: true,
        }),
        closed: () => {
          if (running && generation === this.generation) {
            this.crashed();
          }
          return { action: CloseAction.DoNotRestart, handled: true };
        },
      },
    };
    const client = new PotionClient("potion", "Potion", serverOptions, clientOptions);
    // textDocument/inlineCompletion is a proposed (LSP 3.18) feature in vscode-languageclient 9:
    // without this call VS Code would never ask the server for ghost text.
    client.registerProposedFeatures();
    this.client = client;
    this.show("starting");
    try {
      await client.start();
    } catch (err) {
      if (generation !== this.generation) {
        return;
      }
      this.client = undefined;
      // It ran but did not answer `initialize`: restarting would fail the same way.
      this.show("stopped", String(err));
      void this.fixSettingMessage(
        `Potion: \`${resolved.path} lsp --stdio\` did not start (${String(err)}). Check \`potion.server.path\` ` +
          "(the potion executable of an environment where `potion lsp` runs); the output has its log.",
      );
      return;
    }
    if (generation !== this.generation) {
      return;
    }
    running = true;
    this.output.appendLine(`[potion] server started: ${resolved.path}`);
    await this.checkMixProject();
    this.pollModel();
  }

  /** Stop the current server (if any) and start again; `byUser` forgets earlier crashes. */
  async restart(byUser: boolean): Promise<void> {
    if (byUser) {
      this.policy.reset();
    }
    await this.stop();
    await this.start();
  }

  async stop(): Promise<void> {
    this.generation++;
    clearTimeout(this.restartTimer);
    clearTimeout(this.pollTimer);
    const old = this.client;
    this.client = undefined;
    if (old?.isRunning()) {
      try {
        await old.stop(2000);
      } catch (err) {
        this.output.appendLine(`[potion] stopping the server: ${String(err)}`);
      }
    }
  }

  /** The settings changed: send them, and show what that means for the AI features. */
  async settingsChanged(): Promise<void> {
    if (this.client?.isRunning()) {
      await this.client.sendNotification(DidChangeConfigurationNotification.type, {
        settings: { potion: readSettings() },
      });
      this.pollModel();
    }
  }

  private crashed(): void {
    this.client = undefined;
    clearTimeout(this.pollTimer);
    const delay = this.policy.crashed(Date.now());
    if (delay === undefined) {
      const count = this.policy.count;
      this.output.appendLine(`[potion] the server crashed ${count} times in 3 minutes: not restarting`);
      this.show("stopped", `crashed ${count} times in 3 minutes`);
      void vscode.window
        .showErrorMessage(
          `Potion: the language server crashed ${count} times in 3 minutes and was stopped. ` +
            "The output has its log; Potion: Restart language server starts it again.",
          "Show Output",
          "Restart",
        )
        .then((choice) => {
          if (choice === "Show Output") {
            this.output.show();
          } else if (choice === "Restart") {
            void this.restart(true);
          }
        });
      return;
    }
    this.output.appendLine(`[potion] the server exited; restarting in ${delay / 1000}s`);
    this.show("starting", `restarting in ${delay / 1000}s after a crash`);
    const generation = this.generation;
    this.restartTimer = setTimeout(() => {
      if (generation === this.generation) {
        void this.start();
      }
    }, delay);
  }

  /** Ask `potion/status` for the model's state while it loads (a cheap request, twice a second). */
  private pollModel(): void {
    clearTimeout(this.pollTimer);
    const generation = this.generation;
    const tick = async () => {
      const client = this.client;
      if (!client?.isRunning() || generation !== this.generation) {
        return;
      }
      let status: ModelStatus | null = null;
      try {
        status = (await client.sendRequest("potion/status", {})) as ModelStatus | null;
      } catch (err) {
        this.output.appendLine(`[potion] potion/status failed: ${String(err)}`);
      }
      if (generation !== this.generation) {
        return;
      }
      const state = status?.model_state ?? "loading";
      const aiOn = vscode.workspace.getConfiguration("potion").get<boolean>("features.inlineCompletion", true);
      if (state === "error") {
        this.show("error", status?.model_error);
      } else if (!aiOn) {
        this.show("off");
      } else {
        this.show(state, status?.model);
      }
      if (state === "loading") {
        this.pollTimer = setTimeout(() => void tick(), 500);
      }
    };
    void tick();
  }

  private async checkMixProject(): Promise<void> {
    if (!vscode.workspace.workspaceFolders?.length) {
      return; // single files: nothing to say
    }
    const found = await vscode.workspace.findFiles("**/mix.exs", "**/{deps,_build,node_modules}/**", 1);
    this.noMixProject = found.length === 0;
    if (this.noMixProject) {
      this.output.appendLine(
        "[potion] no mix.exs in this workspace: hover and completions cover the open files and the " +
          "standard library; open the Mix project's folder for the whole project",
      );
    }
  }

  show(state: ModelState, detail?: string | null): void {
    const view = statusView(state, detail);
    this.status.text = view.text;
    this.status.tooltip =
      view.tooltip +
      (this.noMixProject ? "\nNo mix.exs in this workspace: only open files and the standard library." : "") +
      "\nClick for the output.";
    this.status.backgroundColor = view.error ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
    this.status.show();
  }

  private async fixSettingMessage(message: string): Promise<void> {
    const choice = await vscode.window.showErrorMessage(message, "Open Settings", "Show Output");
    if (choice === "Open Settings") {
      await vscode.commands.executeCommand("workbench.action.openSettings", "potion.server.path");
    } else if (choice === "Show Output") {
      this.output.show();
    }
  }
}

let supervisor: Supervisor | undefined;

interface ScaffoldChoice {
  kind: string;
  title: string;
}

async function newModuleInteractive(): Promise<void> {
  const client = supervisor?.client;
  if (!client?.isRunning()) {
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

/** Flip `potion.features.inlineCompletion` where it is set (the workspace's, else the user's). */
async function toggleAiCompletions(): Promise<void> {
  const c = vscode.workspace.getConfiguration("potion");
  const on = c.get<boolean>("features.inlineCompletion", true);
  const inspect = c.inspect<boolean>("features.inlineCompletion");
  const target =
    inspect?.workspaceValue !== undefined ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  await c.update("features.inlineCompletion", !on, target);
  vscode.window.setStatusBarMessage(`Potion: AI completions ${on ? "off" : "on"}`, 3000);
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("Potion");
  const status = vscode.window.createStatusBarItem("potion.status", vscode.StatusBarAlignment.Right, 100);
  status.name = "Potion";
  status.command = "potion.showOutput";
  const sup = new Supervisor(output, status);
  supervisor = sup;
  context.subscriptions.push(
    output,
    status,
    { dispose: () => void sup.stop() },
    vscode.commands.registerCommand("potion.newModuleInteractive", newModuleInteractive),
    vscode.commands.registerCommand("potion.restartServer", () => sup.restart(true)),
    vscode.commands.registerCommand("potion.showOutput", () => output.show()),
    vscode.commands.registerCommand("potion.toggleAiCompletions", toggleAiCompletions),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (!e.affectsConfiguration("potion")) {
        return;
      }
      if (e.affectsConfiguration("potion.server")) {
        // A different executable or arguments: only a new process picks them up.
        await sup.restart(true);
      } else {
        await sup.settingsChanged();
      }
    }),
  );
  await sup.start();
}

export async function deactivate(): Promise<void> {
  await supervisor?.stop();
  supervisor = undefined;
}
