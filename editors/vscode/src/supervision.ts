// Decisions about starting and restarting the server, without VS Code: tested with plain Node
// (tests/editors/test_vscode.py runs out/supervision.js).

import * as fs from "fs";
import * as path from "path";

/** Where `command` resolves to, or why it cannot run (a message naming what to fix). */
export type Resolved = { path: string } | { problem: string };

/**
 * Resolve the `potion.server.path` setting as a process spawn would: a path (absolute, or with a
 * slash, relative to `cwd`) must be an executable file; a bare name is looked up on `PATH`.
 */
export function resolveExecutable(command: string, envPath: string | undefined, cwd?: string): Resolved {
  const name = command.trim();
  if (!name) {
    return { problem: "is empty" };
  }
  if (name.includes("/") || name.includes(path.sep)) {
    const full = path.resolve(cwd ?? process.cwd(), name);
    return checkFile(full) ?? { path: full };
  }
  for (const dir of (envPath ?? "").split(path.delimiter)) {
    if (!dir) {
      continue;
    }
    const full = path.join(dir, name);
    if (checkFile(full) === undefined) {
      return { path: full };
    }
  }
  return { problem: `\`${name}\` is not on PATH` };
}

function checkFile(full: string): { problem: string } | undefined {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(full);
  } catch {
    return { problem: `${full} does not exist` };
  }
  if (!stat.isFile()) {
    return { problem: `${full} is not a file` };
  }
  try {
    fs.accessSync(full, fs.constants.X_OK);
  } catch {
    return { problem: `${full} is not executable` };
  }
  return undefined;
}

/**
 * Restarts after crashes, with back-off: the n-th crash within `windowMs` waits `delaysMs[n-1]`; one
 * crash more than there are delays stops restarting (the caller says so). Crashes older than the
 * window are forgotten, so a server that crashes once a day is always restarted.
 */
export class RestartPolicy {
  private crashes: number[] = [];

  constructor(
    readonly delaysMs: readonly number[] = [1000, 2000, 4000, 8000],
    readonly windowMs: number = 3 * 60 * 1000,
  ) {}

  /** Record a crash at `now`; the delay before restarting, or undefined: give up. */
  crashed(now: number): number | undefined {
    this.crashes = this.crashes.filter((t) => now - t < this.windowMs);
    this.crashes.push(now);
    return this.delaysMs[this.crashes.length - 1];
  }

  /** How many crashes are counted now. */
  get count(): number {
    return this.crashes.length;
  }

  /** A restart by the user starts over. */
  reset(): void {
    this.crashes = [];
  }
}

/** The model's state as `potion/status` reports it, and what the status bar shows for it. */
export type ModelState = "starting" | "loading" | "ready" | "error" | "off" | "stopped";

export interface StatusView {
  text: string;
  tooltip: string;
  error: boolean;
}

export function statusView(state: ModelState, detail?: string | null): StatusView {
  switch (state) {
    case "starting":
      return {
        text: "$(loading~spin) Potion: starting",
        tooltip: `Potion: starting the language server${detail ? ` (${detail})` : ""}`,
        error: false,
      };
    case "loading":
      return {
        text: "$(loading~spin) Potion: loading model",
        tooltip: `Potion: loading ${detail || "the model"}; hover and scaffolds already work`,
        error: false,
      };
    case "ready":
      return { text: "$(sparkle) Potion", tooltip: `Potion: ${detail || "model"} ready`, error: false };
    case "off":
      return {
        text: "$(circle-slash) Potion: AI off",
        tooltip: "Potion: AI completions are off (Potion: Toggle AI completions)",
        error: false,
      };
    case "error":
      return {
        text: "$(error) Potion: model error",
        tooltip: `Potion: the model could not be loaded${detail ? `: ${detail}` : ""}`,
        error: true,
      };
    case "stopped":
      return {
        text: "$(error) Potion: stopped",
        tooltip: `Potion: the language server is not running${detail ? `: ${detail}` : ""}`,
        error: true,
      };
  }
}
