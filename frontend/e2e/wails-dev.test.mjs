// Browser test: the real UI and the real Go bindings under `wails dev`, driven by
// Debian's Chromium. Run: `cd frontend && npm run e2e` (starts a relay and a DVM, Xvfb and `wails
// dev`), or POWDO_UI_URL=http://localhost:34115 npm run e2e against a running one.
// Screenshots land in artifacts/. See harness.mjs for the environment variables.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  env,
  artifact,
  launchChromium,
  startGroup,
  stopGroup,
  tempDataDir,
  waitFor,
} from "./harness.mjs";
import { startBackend, startDisplay } from "./backend.mjs";

let dev;
let browser;
let backend;
let display;
let url = env.uiURL;

before(async () => {
  if (!url) {
    url = `http://localhost:${env.devPort}`;
    // The real servers: a relay and a DVM with 20-second segments, unless the run
    // names its own invite (POWDO_INVITE_LINK).
    if (!process.env.POWDO_INVITE_LINK) {
      backend = await startBackend();
      env.invite = backend.link;
      env.expectAccepted = true;
    }
    // An X display of our own, with a typist on it: the tracker screenshots it and
    // sees input, as on a worker's desktop.
    display = await startDisplay();
    // One build per run: no go.mod tidy or sync, no rebuild or reload when files
    // change meanwhile (other work in the tree), no regenerated wailsjs/ (the UI
    // calls window.go directly).
    dev = startGroup(
      env.wails,
      [
        "dev",
        "-m",
        "-nosyncgomod",
        "-nogorebuild",
        "-noreload",
        "-skipbindings",
        "-devserver",
        `localhost:${env.devPort}`,
      ],
      {
        env: {
          POWDO_DATA_DIR: tempDataDir("powdo-e2e-"),
          DISPLAY: display.display,
        },
      },
    );
    dev.exited.then(({ code, signal }) => {
      if (code !== null && code !== 0)
        console.error(
          `wails dev exited with ${code ?? signal}:\n${dev.tail()}`,
        );
    });
  }
  await waitFor(
    async () => {
      if (dev && dev.child.exitCode !== null) {
        throw new Error(`wails dev exited early:\n${dev.tail()}`);
      }
      const res = await fetch(url);
      return res.ok;
    },
    {
      timeoutMs: env.startTimeoutMs,
      intervalMs: 1000,
      what: `${url} to answer`,
    },
  );
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await stopGroup(dev);
  await display?.stop();
  if (backend && process.exitCode) console.error(backend.logs());
  await backend?.stop();
});

test("onboarding → start → timer runs → stop, through the Go bindings", async (t) => {
  const page = await browser.newPage({
    viewport: { width: 1280, height: 800 },
  });
  const consoleErrors = [];
  page.on("pageerror", (e) => {
    const stack = String(e.stack || e.message);
    // Wails' own dev-mode overlay (bundled in /wails/ipc.js, not part of pow.do)
    // throws once per page load; anything else fails the test.
    const frames = stack.split("\n").filter((l) => l.trim().startsWith("at "));
    if (frames.length && frames.every((l) => l.includes("/wails/ipc.js")))
      return;
    consoleErrors.push(stack);
  });
  const shot = (name) => page.screenshot({ path: artifact(`e2e-${name}.png`) });
  const goState = () => page.evaluate(() => window.go.app.App.State());

  try {
    await page.goto(url);
    await waitFor(() => page.evaluate(() => !!window.go?.app?.App), {
      timeoutMs: 60_000,
      what: "the Go bindings in the page",
    });

    await t.test(
      "onboarding refuses a wrong link with advice from Go",
      async () => {
        await page
          .getByRole("heading", { name: "Join your employer" })
          .waitFor();
        await page
          .getByLabel("Invite link")
          .fill("https://example.com/not-an-invite");
        await page
          .getByLabel("Passphrase", { exact: true })
          .fill(env.passphrase);
        await page.getByLabel("Repeat passphrase").fill(env.passphrase);
        await page.getByRole("button", { name: "Join" }).click();
        const alert = page.getByRole("alert");
        await alert.waitFor();
        // The rejection went through app.FormatError: code, message and action.
        assert.match(await alert.innerText(), /Not an invite link/);
        assert.match(await alert.innerText(), /What to do:/);
        await shot("01-onboarding-refused");
      },
    );

    await t.test(
      "joins with the invite and shows the pairing step",
      async () => {
        await page.getByLabel("Invite link").fill(env.invite);
        await page
          .getByLabel("Passphrase", { exact: true })
          .fill(env.passphrase);
        await page.getByLabel("Repeat passphrase").fill(env.passphrase);
        await page.getByRole("button", { name: "Join" }).click();
        await page
          .getByRole("heading", { name: /^Joined/ })
          .waitFor({ timeout: 60_000 });
        const st = await goState();
        assert.equal(st.onboarded, true, "Go state is onboarded after joining");
        await shot("02-joined");
        await page.getByRole("button", { name: "Continue" }).click();
      },
    );

    await t.test(
      "starts tracking on a project from the catalogue",
      async () => {
        const project = page.getByLabel("Project");
        await waitFor(
          async () =>
            (await project.locator("option:not([disabled])").count()) > 0,
          {
            timeoutMs: 60_000,
            what: "projects from the catalogue",
          },
        );
        await project.selectOption({ index: 1 });
        await page.getByLabel("Activity").selectOption({ index: 1 });
        await page.getByLabel(/Memo/).fill("e2e run");
        await page.getByRole("button", { name: "Start" }).click();

        await page.getByText(/^Tracking /).waitFor();
        const timer = page.getByRole("timer");
        const first = await timer.innerText();
        assert.match(first, /^\d\d:\d\d:\d\d$/);
        // The clock moves on its own.
        await waitFor(async () => (await timer.innerText()) !== first, {
          timeoutMs: 10_000,
          what: "the timer to tick",
        });
        await page.getByRole("heading", { name: /Current segment/ }).waitFor();
        const st = await goState();
        assert.equal(st.running, true);
        assert.equal(st.session.memo, "e2e run");
        assert.ok(st.segment, "a segment is being recorded");
        await shot("03-tracking");
      },
    );

    if (env.expectAccepted) {
      await t.test("a segment is delivered and accepted", async () => {
        await page
          .locator('li[data-state="accepted"]')
          .first()
          .waitFor({ timeout: env.acceptedTimeoutMs });
        await shot("04-accepted");
      });
    }

    await t.test("stops from the keyboard", async () => {
      await page.getByRole("button", { name: "Stop" }).focus();
      await page.keyboard.press("Enter");
      await page.getByText("Not tracking").waitFor();
      const st = await goState();
      assert.equal(st.running, false);
      assert.equal(st.session, null);
      await shot("05-stopped");
    });

    assert.deepEqual(consoleErrors, [], "no uncaught errors in the page");
  } finally {
    await page.close();
  }
});
