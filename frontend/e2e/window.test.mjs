// Window test: the real built app (`wails build`, tags from wails.json) under Xvfb,
// captured with ImageMagick's `import` into artifacts/window.png. It asserts that the
// WebKitGTK window painted pow.do's UI, not an empty view: the screen holds the
// onboarding's accent-blue Join button.
// Run: `cd frontend && npm run e2e:window`; POWDO_APP_BIN=build/bin/pow.do skips
// the build.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import {
  env,
  artifact,
  execFileP,
  repoRoot,
  startGroup,
  stopGroup,
  tempDataDir,
  waitFor,
} from "./harness.mjs";

const ACCENT = "#1d4ed8"; // --accent in src/app.css: primary buttons

let xvfb;
let app;
let display;
const bin = process.env.POWDO_APP_BIN
  ? path.resolve(repoRoot, process.env.POWDO_APP_BIN)
  : path.join(repoRoot, "build/bin/pow.do");

before(async () => {
  if (!process.env.POWDO_APP_BIN) {
    // -m: never tidy go.mod from a test run.
    await execFileP(env.wails, ["build", "-m"], {
      cwd: repoRoot,
      timeout: env.startTimeoutMs,
      maxBuffer: 64 << 20,
    });
  }
  // Xvfb picks a free display and writes its number to fd 3.
  xvfb = startGroup(
    "Xvfb",
    ["-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
    { extraStdio: ["pipe"] },
  );
  let out = "";
  xvfb.child.stdio[3].on("data", (b) => (out += b));
  display = await waitFor(() => /^\d+\n/.test(out) && `:${out.trim()}`, {
    timeoutMs: 20_000,
    what: "Xvfb to report its display",
  });
});

after(async () => {
  await stopGroup(app);
  await stopGroup(xvfb);
});

async function accentShare(file) {
  const { stdout } = await execFileP("convert", [
    file,
    "-alpha",
    "off",
    "-fill",
    "black",
    "+opaque",
    ACCENT,
    "-fill",
    "white",
    "-opaque",
    ACCENT,
    "-format",
    "%[fx:mean]",
    "info:",
  ]);
  return Number(stdout);
}

test("the built window shows pow.do's UI under Xvfb", async () => {
  const xenv = { DISPLAY: display };
  app = startGroup(bin, [], {
    env: { ...xenv, POWDO_DATA_DIR: tempDataDir("powdo-window-") },
  });

  const winId = await waitFor(
    async () => {
      if (app.child.exitCode !== null) {
        throw new Error(`pow.do exited early:\n${app.tail()}`);
      }
      const { stdout } = await execFileP(
        "xdotool",
        ["search", "--name", "^pow\\.do$"],
        { env: { ...process.env, ...xenv } },
      ).catch(() => ({ stdout: "" }));
      return stdout.trim().split("\n")[0];
    },
    { timeoutMs: 60_000, intervalMs: 500, what: "the pow.do window" },
  );
  assert.match(winId, /^\d+$/);

  const shot = artifact("window.png");
  const share = await waitFor(
    async () => {
      rmSync(shot, { force: true });
      await execFileP("import", ["-window", "root", shot], {
        env: { ...process.env, ...xenv },
      });
      const s = await accentShare(shot);
      return s > 0.001 && s;
    },
    {
      timeoutMs: 60_000,
      intervalMs: 1000,
      what: "the UI to paint (a Join button)",
    },
  );
  assert.ok(readFileSync(shot).length > 10_000, "a real PNG was written");
  assert.ok(share < 0.2, `accent colour covers ${share}: not a solid fill`);
  assert.equal(app.child.exitCode, null, "pow.do is still running");
});
