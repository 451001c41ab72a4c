// Shared pieces of the browser and window tests: processes started in their own
// process group (so everything they spawn ends with them), polling with a deadline on
// a real condition, Debian's Chromium through playwright-core, artifacts.
import { spawn, execFile } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir, homedir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export const execFileP = promisify(execFile);

export const repoRoot = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../..",
);

export const env = {
  // A URL of a running `wails dev` (skips starting one).
  uiURL: process.env.POWDO_UI_URL || "",
  devPort: Number(process.env.POWDO_DEV_PORT || 34115),
  wails: process.env.WAILS || path.join(homedir(), "go/bin/wails"),
  chromium: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  artifacts: process.env.POWDO_ARTIFACTS || path.join(repoRoot, "artifacts"),
  // The invite to join with. The default has the right shape for the preview
  // engine; with the real engine, pass a link made by `powdo-dvm invite`.
  invite:
    process.env.POWDO_INVITE_LINK ||
    "powdo://join?dvm=npub1previewdvm&relay=wss%3A%2F%2Frelay.invalid&blossom=https%3A%2F%2Fblossom.invalid&secret=nsec1previewsecret&name=E2E",
  passphrase: process.env.POWDO_PASSPHRASE || "e2e passphrase",
  // Set to wait, while tracking, for a segment the DVM accepted (real engine with
  // a short segment policy and a running relay + DVM).
  expectAccepted: process.env.POWDO_E2E_EXPECT_ACCEPTED === "1",
  acceptedTimeoutMs: Number(
    process.env.POWDO_E2E_ACCEPTED_TIMEOUT_MS || 180_000,
  ),
  // Compiling with cgo on a busy machine takes minutes.
  startTimeoutMs: Number(process.env.POWDO_E2E_START_TIMEOUT_MS || 600_000),
};

export function artifact(name) {
  mkdirSync(env.artifacts, { recursive: true });
  return path.join(env.artifacts, name);
}

export function tempDataDir(prefix) {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

// waitFor polls check() until it returns a truthy value or the deadline passes.
export async function waitFor(check, { timeoutMs, intervalMs = 250, what }) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}` +
          (lastError ? `: ${lastError.message}` : ""),
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// startGroup runs a command as the leader of a new process group, keeping the
// last lines of its output for failure messages.
export function startGroup(cmd, args, opts = {}) {
  const child = spawn(cmd, args, {
    detached: true,
    stdio: ["ignore", "pipe", "pipe", ...(opts.extraStdio ?? [])],
    cwd: opts.cwd ?? repoRoot,
    env: { ...process.env, ...opts.env },
  });
  const log = [];
  const keep = (buf) => {
    log.push(...buf.toString().split("\n"));
    if (log.length > 200) log.splice(0, log.length - 200);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, log, exited, tail: () => log.slice(-40).join("\n") };
}

// stopGroup ends the process group it started: SIGINT (wails dev cleans up on
// it), then SIGKILL if it is still there after the grace period.
export async function stopGroup(proc, graceMs = 15_000) {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode) return;
  const pgid = proc.child.pid;
  const signal = (s) => {
    try {
      process.kill(-pgid, s);
    } catch {
      // already gone
    }
  };
  signal("SIGINT");
  const timedOut = Symbol("timeout");
  let timer;
  const r = await Promise.race([
    proc.exited,
    new Promise((res) => (timer = setTimeout(() => res(timedOut), graceMs))),
  ]);
  clearTimeout(timer);
  signal("SIGKILL"); // also reaps children that outlived their parent
  if (r === timedOut) await proc.exited;
}

export async function launchChromium() {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: env.chromium,
    headless: true,
    args: ["--no-sandbox"],
  });
}
