// Browser test of the work diary: Debian's Chromium, driven by playwright-core, against
// the diary served by internal/e2eserver over a store filled through the real ingest
// path. Run from this directory: npm ci && node --test diary.test.mjs
//
// Environment: CHROMIUM_PATH (default /usr/bin/chromium), POWDO_ARTIFACTS (default
// <repo>/artifacts), GO (default go).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const dvmDir = path.resolve(here, "../..");
const repoRoot = path.resolve(dvmDir, "..");
const artifacts = process.env.POWDO_ARTIFACTS || path.join(repoRoot, "artifacts");
const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const goBin = process.env.GO || "go";
const execFileP = promisify(execFile);

let work, server, serverLog = [], info, password, context, page;

function shot(name, fullPage = true) {
  mkdirSync(artifacts, { recursive: true });
  return page.screenshot({ path: path.join(artifacts, name), fullPage });
}

// readInfo waits for the server's JSON line, or its death, with a deadline.
function readInfo(child, timeoutMs) {
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`e2eserver printed nothing in ${timeoutMs} ms:\n${serverLog.join("")}`)), timeoutMs);
    child.stdout.on("data", (d) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl >= 0) {
        clearTimeout(timer);
        try { resolve(JSON.parse(buf.slice(0, nl))); } catch (e) { reject(e); }
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`e2eserver exited with ${code}:\n${serverLog.join("")}`));
    });
  });
}

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), "powdo-diary-e2e-"));
  const bin = path.join(work, "e2eserver");
  await execFileP(goBin, ["build", "-o", bin, "./diary/internal/e2eserver"], { cwd: dvmDir, timeout: 600_000 });
  password = randomBytes(18).toString("base64url");
  server = spawn(bin, [], { detached: true, stdio: ["pipe", "pipe", "pipe"] });
  server.stderr.on("data", (d) => { serverLog.push(String(d)); serverLog = serverLog.slice(-50); });
  server.stdin.write(password + "\n"); // never on the command line
  info = await readInfo(server, 120_000);
  context = await chromium.launchPersistentContext(path.join(work, "profile"), {
    executablePath: chromiumPath,
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    timezoneId: "Asia/Tokyo", // the reviewer's zone: neither the worker's nor UTC
    viewport: { width: 1440, height: 1000 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20_000);
});

after(async () => {
  await context?.close();
  if (server && server.exitCode === null) {
    server.stdin.end();
    try { process.kill(-server.pid, "SIGTERM"); } catch { /* already gone */ }
    await new Promise((r) => (server.exitCode !== null ? r() : server.on("exit", r)));
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

const dayPath = () => `/workers/${info.worker}/days/${info.day}`;

async function apiJSON(p) {
  const res = await page.request.get(info.url + p);
  assert.equal(res.status(), 200, `GET ${p}: ${res.status()}`);
  return res.json();
}

async function pageTotals() {
  return page.$$eval("[data-total]", (els) =>
    Object.fromEntries(els.map((e) => [e.dataset.total, Number(e.dataset.seconds ?? e.dataset.count)])));
}

async function assertTotalsMatchAPI(tz) {
  const apiURL = await page.getAttribute("[data-testid=totals]", "data-api");
  assert.ok(apiURL.includes("tz="), apiURL);
  const api = await apiJSON(apiURL.replace(/^https?:\/\/[^/]+/, ""));
  assert.equal(api.tz, tz);
  const t = await pageTotals();
  assert.equal(t["day-tracked"], api.totals.tracked_seconds);
  assert.equal(t["day-active"], api.totals.active_seconds);
  assert.equal(t["day-idle"], api.totals.idle_seconds);
  assert.equal(t["day-segments"], api.totals.segments);
  assert.equal(t["day-screenshots"], api.totals.screenshots);
  assert.equal(t["day-kimai-pending"], api.totals.kimai_pending);
  assert.equal(t["week-tracked"], api.week.totals.tracked_seconds);
  assert.equal(t["week-active"], api.week.totals.active_seconds);
  assert.equal(t["week-segments"], api.week.totals.segments);
  assert.equal(await page.locator("[data-testid=cell][data-segment]").count(), api.segments.length);
  return api;
}

// The first hour row must be the hour of the first segment in the zone shown.
async function assertFirstHour(api) {
  const first = api.segments[0].start; // RFC 3339 in the requested zone
  const hour = first.slice(11, 13) + ":00";
  const label = await page.locator("table.grid tbody tr th.hour").first().textContent();
  assert.equal(label.trim().slice(0, 5), hour, `first row ${label} vs first segment ${first}`);
}

test("without a session the diary answers 401 or sends to the login form", async () => {
  await page.goto(info.url + dayPath());
  assert.match(page.url(), /\/login\?next=/);
  const res = await page.request.get(info.url + "/api/v1/workers");
  assert.equal(res.status(), 401);
  const shotRes = await page.request.get(info.url + "/api/v1/workers/" + info.worker);
  assert.equal(shotRes.status(), 401);
});

test("log in (a wrong password first) and open a day", async () => {
  await page.goto(info.url + "/");
  await page.fill("input[name=username]", info.user);
  await page.fill("input[name=password]", password + "x");
  await page.click("form[data-testid=login-form] button[type=submit]");
  await page.waitForSelector("[data-testid=login-error]");
  assert.match(await page.textContent("[data-testid=login-error]"), /Wrong username or password/);
  await page.fill("input[name=username]", info.user);
  await page.fill("input[name=password]", password);
  await shot("diary-login.png");
  await Promise.all([page.waitForURL(info.url + "/"), page.click("form[data-testid=login-form] button[type=submit]")]);
  assert.equal(await page.textContent("[data-testid=reviewer]"), info.user);
  await page.click(`tr[data-worker="${info.worker}"] [data-testid=worker-link]`);
  await page.waitForURL(new RegExp(`/workers/${info.worker}$`));
  await page.click(`tr[data-day="${info.day}"] [data-testid=day-link]`);
  await page.waitForURL((u) => u.pathname === dayPath());
  await page.waitForSelector("[data-testid=grid]");
});

test("the grid has its cells, thumbnails load and the totals equal the API's", async () => {
  const rows = await page.locator("table.grid tbody tr").count();
  assert.ok(rows >= 3, `${rows} hour rows`);
  assert.equal(await page.locator("table.grid tbody [data-testid=cell]").count(), rows * 6);
  const api = await assertTotalsMatchAPI(info.worker_zone);
  assert.ok(api.segments.length > 20, `${api.segments.length} segments`);
  await assertFirstHour(api);
  for (const mark of ["idle", "deleted", "gap", "kimai"]) {
    assert.ok(await page.locator(`table.grid [data-mark=${mark}]`).count() > 0, `no ${mark} mark on the grid`);
  }
  const thumbs = page.locator("table.grid img.thumb");
  const n = await thumbs.count();
  const withShots = api.segments.filter((s) => s.screenshots.length > 0).length;
  assert.equal(n, withShots);
  for (let i = 0; i < n; i++) {
    const img = thumbs.nth(i);
    await img.scrollIntoViewIfNeeded(); // they load lazily
    await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle());
    const w = await img.evaluate((el) => el.naturalWidth);
    assert.ok(w > 0 && w <= 320, `thumbnail ${i} is ${w} px wide`);
  }
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot("diary-day.png");
});

test("a click on a cell opens the full screenshot and the minute activity", async () => {
  const cell = page.locator("table.grid [data-testid=cell][data-segment]:has(img.thumb)").first();
  const id = await cell.getAttribute("data-segment");
  await cell.locator("a.cell-link").click();
  const dialog = page.locator("dialog[data-testid=detail]");
  await dialog.waitFor({ state: "visible" });
  assert.equal(await dialog.getAttribute("data-segment"), id);
  const full = dialog.locator("img[data-testid=full-shot]").first();
  await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await full.elementHandle());
  const fullW = await full.evaluate((el) => el.naturalWidth);
  const seg = (await apiJSON(`/api/v1/segments/${id}`)).segment;
  assert.ok(fullW > 320, `full screenshot ${fullW} px wide`);
  assert.equal(await dialog.locator("table[data-testid=minutes] tbody tr").count(), seg.minutes.length);
  assert.ok(seg.top_apps.length > 0);
  assert.match(await dialog.textContent(), new RegExp(seg.top_apps[0].name));
  await shot("diary-segment.png", false);
  await dialog.locator("button.close").click();
  await dialog.waitFor({ state: "hidden" });
});

test("switching the time zone regroups the day", async () => {
  await Promise.all([page.waitForURL(/tz=UTC/), page.selectOption("[data-testid=tz-select]", "UTC")]);
  assert.equal((await page.textContent("[data-testid=tz-name]")).trim(), "UTC");
  const utc = await assertTotalsMatchAPI("UTC");
  await assertFirstHour(utc);
  await shot("diary-day-utc.png");

  const mine = await page.locator("[data-testid=tz-select] option[data-mine]").getAttribute("value");
  assert.equal(mine, "Asia/Tokyo");
  await Promise.all([page.waitForURL(/tz=Asia%2FTokyo/), page.selectOption("[data-testid=tz-select]", mine)]);
  const tokyo = await assertTotalsMatchAPI("Asia/Tokyo");
  if (tokyo.segments.length > 0) await assertFirstHour(tokyo);
  assert.notDeepEqual(tokyo.totals, utc.totals, "the same day in another zone should hold other segments");
  await shot("diary-day-reviewer-zone.png");
});

test("log out ends the session", async () => {
  await Promise.all([page.waitForURL(/\/login$/), page.click("[data-testid=logout]")]);
  await shot("diary-logged-out.png");
  await page.goto(info.url + dayPath());
  assert.match(page.url(), /\/login\?next=/);
  const res = await page.request.get(info.url + "/api/v1/workers");
  assert.equal(res.status(), 401);
});
