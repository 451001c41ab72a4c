// The real servers behind the browser test: a powdo-relay and a powdo-dvm on 127.0.0.1
// with 20-second segments, plus an invite for the tracker to join. Binaries come from
// $POWDO_BIN (make builds them into bin/), else they are built into a temp directory.
// Also: an X display (Xvfb) for the tracker's window and screenshots, and a "typist"
// that moves the pointer and presses a key every second on it, as a worker at work
// would (a finished segment waits for input after its end before its review starts:
// idle time could still reach back over it).
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { repoRoot, startGroup, stopGroup, waitFor } from "./harness.mjs";

const execFileP = promisify(execFile);

// binaries returns paths of powdo-relay and powdo-dvm, building them when needed.
export async function binaries() {
  const dir = process.env.POWDO_BIN;
  const names = ["powdo-relay", "powdo-dvm"];
  if (dir && names.every((n) => existsSync(path.join(dir, n)))) {
    return Object.fromEntries(names.map((n) => [n, path.join(dir, n)]));
  }
  const out = mkdtempSync(path.join(tmpdir(), "powdo-e2e-bin-"));
  const build = async (mod, pkg, name) => {
    await execFileP("go", ["build", "-o", path.join(out, name), pkg], {
      cwd: path.join(repoRoot, mod),
      timeout: 600_000,
      maxBuffer: 64 << 20,
    });
    return path.join(out, name);
  };
  return {
    "powdo-relay": await build("relay", "./cmd/powdo-relay", "powdo-relay"),
    "powdo-dvm": await build("dvm", "./cmd/powdo-dvm", "powdo-dvm"),
  };
}

// startDisplay starts Xvfb on a free display and a typist on it.
export async function startDisplay() {
  const xvfb = startGroup(
    "Xvfb",
    ["-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
    { extraStdio: ["pipe"] },
  );
  let out = "";
  xvfb.child.stdio[3].on("data", (b) => (out += b));
  const display = await waitFor(() => /^\d+\n/.test(out) && `:${out.trim()}`, {
    timeoutMs: 20_000,
    what: "Xvfb to report its display",
  });
  const typist = startGroup(
    "bash",
    [
      "-c",
      "i=0; while sleep 1; do i=$((i+1)); xdotool mousemove $((100 + i % 300)) $((100 + i % 200)) key shift || exit 1; done",
    ],
    { env: { DISPLAY: display } },
  );
  return {
    display,
    stop: async () => {
      await stopGroup(typist, 2_000);
      await stopGroup(xvfb, 2_000);
    },
  };
}

// startBackend runs the relay and the DVM and returns a fresh invite link.
export async function startBackend({ name = "E2E Worker" } = {}) {
  const bin = await binaries();
  const dir = mkdtempSync(path.join(tmpdir(), "powdo-e2e-backend-"));
  const keyFile = path.join(dir, "dvm.key");
  const { stdout: keyOut } = await execFileP(bin["powdo-dvm"], [
    "keygen",
    "--out",
    keyFile,
  ]);
  const pk = /^pubkey ([0-9a-f]{64})$/m.exec(keyOut)?.[1];
  if (!pk) throw new Error(`powdo-dvm keygen printed no pubkey:\n${keyOut}`);

  const addrFile = path.join(dir, "relay.addr");
  const relay = startGroup(bin["powdo-relay"], [
    "serve",
    "--listen",
    "127.0.0.1:0",
    "--addr-file",
    addrFile,
    "--data-dir",
    path.join(dir, "relay"),
    "--admin",
    pk,
    "--allow",
    pk,
    "--events-per-minute-pubkey",
    "-1",
    "--events-per-minute-ip",
    "-1",
    "--max-conns-per-ip",
    "-1",
    "--manage-per-minute-ip",
    "-1",
    "--uploads-per-minute-pubkey",
    "-1",
    "--uploads-per-minute-ip",
    "-1",
  ]);
  const addr = await waitFor(
    () => {
      if (relay.child.exitCode !== null)
        throw new Error(`powdo-relay exited:\n${relay.tail()}`);
      return existsSync(addrFile) && readFileSync(addrFile, "utf8").trim();
    },
    { timeoutMs: 30_000, what: "powdo-relay to listen" },
  );

  const cfgFile = path.join(dir, "dvm.json");
  writeFileSync(
    cfgFile,
    JSON.stringify({
      data_dir: path.join(dir, "dvm"),
      key_file: keyFile,
      relays: [`ws://${addr}`],
      listen: "off",
      policy: {
        segment_seconds: 20,
        screenshots: 1,
        blur: false,
        review_seconds: 5,
        idle_seconds: 300,
        jpeg_quality: 70,
        max_width: 1280,
      },
      projects: [{ id: 1, name: "Website relaunch", customer: "ACME" }],
      activities: [{ id: 5, name: "Development", project: null }],
      retry_min: "200ms",
      retry_max: "2s",
      reconnect_min: "200ms",
      reconnect_max: "2s",
    }),
    { mode: 0o600 },
  );
  const { stdout: inv } = await execFileP(bin["powdo-dvm"], [
    "invite",
    "--config",
    cfgFile,
    "--name",
    name,
    "--no-qr",
  ]);
  const link = /^(powdo:\/\/join\S+)$/m.exec(inv)?.[1];
  if (!link) throw new Error(`powdo-dvm invite printed no link:\n${inv}`);
  const dvm = startGroup(bin["powdo-dvm"], ["run", "--config", cfgFile]);
  await waitFor(
    () => {
      if (dvm.child.exitCode !== null)
        throw new Error(`powdo-dvm exited:\n${dvm.tail()}`);
      return dvm.log.some((l) => l.includes("relay subscribed"));
    },
    { timeoutMs: 30_000, what: "powdo-dvm to subscribe to the relay" },
  );
  return {
    link,
    relayDataDir: path.join(dir, "relay"),
    logs: () => `powdo-relay:\n${relay.tail()}\npowdo-dvm:\n${dvm.tail()}`,
    stop: async () => {
      await stopGroup(dvm, 10_000);
      await stopGroup(relay, 10_000);
    },
  };
}
