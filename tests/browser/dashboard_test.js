#!/usr/bin/env node
// The manager dashboard (GET /) in a real browser (issue #9, point 5): starts the real hub
// (one manager token, one terminal token, embedded defaults, a temporary data folder),
// drives Debian's chromium headless with playwright-core and checks what a manager sees.
//
//   node tests/browser/dashboard_test.js --machub build/dev/src/app/machub [--screenshots DIR]
//
// Checks: a manager token logs in; a terminal token is refused on the page; a sale posted
// over HTTP shows up within 5 s with the right total; an offline card sale raises the
// exposure figure; a refused sale (422) shows nothing new; an alert appears and clears; no
// console error; the page fits a 390 px wide phone. Screenshots (desktop, phone) go to
// DIR (default: the current folder); `--screenshots docs` refreshes the ones
// docs/OPERATIONS.md shows.
//
// OFFLINE PARTS SWITCH: the offline limits (--offline-* flags of `machub serve`), the
// exposure and `alerts` members of /v1/status, declined offline payments and the
// authorization route come with the offline-payment routes (issue #9, points 1-3). They
// are switched on when `machub serve --help` lists --offline-store-max-outstanding (or
// MACHUB_BROWSER_OFFLINE=1; =0 forces them off). Off, the test uses what the hub shows
// without them: the X report's offline card total as the exposure figure, a
// total_mismatch 422 as the refused sale, and an open drawer (appears on drawer_open,
// clears on drawer_close) in place of an alert. On, every offline check is required.
//
// Exit 0: passed; 1: a check failed (what differed on stderr); 77: chromium or
// playwright-core missing (ctest SKIP_RETURN_CODE; scripts/install-deps.sh --test).
"use strict";

const childProcess = require("child_process");
const crypto = require("crypto");
const fs = require("fs");
const http = require("http");
const os = require("os");
const path = require("path");

const REPO = path.resolve(__dirname, "..", "..");
const CHROMIUM = process.env.MACHUB_CHROMIUM || "/usr/bin/chromium";
const PLAYWRIGHT = path.join(REPO, "tests", "peers", "npm", "node_modules", "playwright-core");
const SKIP = 77;
const MANAGER_TOKEN = "mgr-" + crypto.randomBytes(12).toString("hex");
const TERMINAL_TOKEN = "t01-" + crypto.randomBytes(12).toString("hex");
const UPDATE_MS = 5000;  // the dashboard must show a new sale within this (issue #9)
// Other changes (exposure, drawers, alerts, login) get more room on a busy 2-core CI
// machine: they check what is shown, the 5 s promise is checked on the sale.
const SHOW_MS = 10000;

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

function log(line) { console.log("dashboard_test: " + line); }
class Failure extends Error {}
function fail(message) { throw new Failure(message); }
function check(cond, message) { if (!cond) fail(message); }

// ---- the hub -------------------------------------------------------------------------

const sha256 = (s) => crypto.createHash("sha256").update(s).digest("hex");

function startHub(machub, work, extra) {
  const ready = path.join(work, "ready");
  const args = ["serve", "--store-id", "S042", "--data-dir", path.join(work, "data"),
                "--listen", "127.0.0.1:0", "--ready-file", ready, "--demo-token", "false",
                "--rate-per-terminal", "0", "--sync-batch-max-age-s", "1",
                "--terminal-tokens", "T01:" + sha256(TERMINAL_TOKEN),
                "--manager-tokens", "manager:" + sha256(MANAGER_TOKEN), ...extra];
  const out = fs.openSync(path.join(work, "hub.log"), "w");
  const proc = childProcess.spawn(machub, args, { stdio: ["ignore", out, out] });
  fs.closeSync(out);
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 30000;
    const poll = () => {
      if (proc.exitCode !== null || Date.now() > deadline) {
        reject(new Failure("the hub did not start; " + fs.readFileSync(path.join(work, "hub.log"), "utf8")));
        return;
      }
      if (fs.existsSync(ready)) {
        const port = Number(fs.readFileSync(ready, "utf8").trim().split(/\s+/)[0].split(":").pop());
        resolve({ proc, port });
        return;
      }
      setTimeout(poll, 50);
    };
    poll();
  });
}

function request(port, method, urlPath, token, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({ host: "127.0.0.1", port, method, path: urlPath,
      headers: Object.assign({ "Authorization": "Bearer " + token },
                             data ? { "Content-Type": "application/json", "Content-Length": data.length } : {}) },
    (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        let json = null;
        try { json = raw ? JSON.parse(raw) : null; } catch (e) { json = raw; }
        resolve({ status: res.statusCode, body: json });
      });
    });
    req.on("error", reject);
    req.setTimeout(10000, () => req.destroy(new Error("request timed out")));
    if (data) req.write(data);
    req.end();
  });
}

let saleNo = 0;
// A one-line sale with no tax, so its total is `amount`; card payments are offline.
function sale(amount, method, extra) {
  saleNo += 1;
  const payment = method === "card"
    ? { method: "card", amount, card_token: "tok_browser_" + saleNo, last4: "4242", brand: "visa", offline: true }
    : { method: "cash", amount };
  return Object.assign({
    id: "browser-sale-" + saleNo, terminal_id: "T01", type: "sale",
    created_at: new Date().toISOString(), currency: "USD",
    lines: [{ sku: "0001", name: "Item " + saleNo, qty: "1", unit_price: amount, tax_rate: "0" }],
    payments: [payment], total: amount }, extra || {});
}

// ---- the page ------------------------------------------------------------------------

const readText = (page, id) => page.$eval("#" + id, (el) => el.textContent);

// Waits until #id's text contains `want`; answers how long it took (ms).
async function waitText(page, id, want, what, timeout = SHOW_MS) {
  const t0 = Date.now();
  try {
    await page.waitForFunction(([i, w]) => {
      const el = document.getElementById(i);
      return el !== null && el.textContent.includes(w);
    }, [id, want], { timeout, polling: 50 });
  } catch (e) {
    fail(what + ": #" + id + " did not show " + JSON.stringify(want) + " within " + timeout +
         " ms; it shows " + JSON.stringify(await readText(page, id).catch(() => "?")));
  }
  return Date.now() - t0;
}

async function waitNoText(page, id, unwanted, what, timeout = SHOW_MS) {
  try {
    await page.waitForFunction(([i, w]) => !document.getElementById(i).textContent.includes(w),
                               [id, unwanted], { timeout, polling: 50 });
  } catch (e) {
    fail(what + ": #" + id + " still shows " + JSON.stringify(unwanted) + " after " + timeout + " ms");
  }
}

// Waits for `n` more completed refreshes of the page (it counts them in body[data-refreshes]).
async function refreshes(page, n) {
  const now = Number(await page.evaluate(() => document.body.dataset.refreshes || "0"));
  await page.waitForFunction((target) => Number(document.body.dataset.refreshes || "0") >= target,
                             now + n, { timeout: 15000, polling: 50 });
}

// Everything a refused sale must not change.
const snapshot = (page) => page.evaluate(() => {
  const ids = ["x_sales", "x_gross", "x_net", "off_store", "off_count", "off_today", "alerts", "drawers",
               "methods", "terminals"];
  const out = {};
  for (const id of ids) out[id] = document.getElementById(id).textContent;
  // The last entries without their Uploaded column (an upload may land meanwhile).
  out.sales = Array.from(document.querySelectorAll("#sales tr"))
    .map((tr) => Array.from(tr.cells).slice(0, 6).map((td) => td.textContent).join("|")).join("\n");
  return out;
});

async function login(page, port, token) {
  await page.goto("http://127.0.0.1:" + port + "/");
  await page.fill("#token", token);
  await page.click("#login button");
}

// ---- the test ------------------------------------------------------------------------

async function main() {
  const machub = arg("--machub");
  check(machub && fs.existsSync(machub), "usage: dashboard_test.js --machub PATH [--screenshots DIR]");
  const shots = path.resolve(arg("--screenshots", "."));
  if (!fs.existsSync(CHROMIUM)) {
    console.error("dashboard_test: SKIP: no " + CHROMIUM + " (Debian's chromium: scripts/install-deps.sh --test)");
    return SKIP;
  }
  if (!fs.existsSync(path.join(PLAYWRIGHT, "package.json"))) {
    console.error("dashboard_test: SKIP: no playwright-core in tests/peers/npm/node_modules " +
                  "(scripts/install-deps.sh --test)");
    return SKIP;
  }
  const { chromium } = require(PLAYWRIGHT);

  // The switch for the parts that need the offline-payment routes (see the top).
  const help = childProcess.spawnSync(machub, ["serve", "--help"], { encoding: "utf8" });
  const env = process.env.MACHUB_BROWSER_OFFLINE;
  const offline = env === "1" || (env !== "0" && (help.stdout + help.stderr).includes("--offline-store-max-outstanding"));
  log("offline parts " + (offline ? "ON (limits, exposure, alerts, declined payments)"
                                  : "OFF: this machub has no --offline-* flags; the stand-ins run"));
  const limitFlags = offline ? ["--offline-card-max-amount", "50.00", "--offline-terminal-max-outstanding", "80.00",
                                "--offline-store-max-outstanding", "100.00"] : [];

  const work = fs.mkdtempSync(path.join(os.tmpdir(), "machub-browser-"));
  const t0 = Date.now();
  let hub = null;
  let browser = null;
  let passed = false;
  const stop = () => { if (hub && hub.proc.exitCode === null) hub.proc.kill("SIGKILL"); };
  process.on("exit", stop);
  // ctest's timeout sends SIGTERM: no hub is left behind (chromium ends with its pipe).
  for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => { stop(); process.exit(1); });
  try {
    hub = await startHub(machub, work, limitFlags);
    const port = hub.port;
    browser = await chromium.launch({
      executablePath: CHROMIUM, headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"] });
    log("hub on port " + port + ", chromium " + browser.version() + " (" + (Date.now() - t0) + " ms)");

    // 1. A terminal token is refused on the page (its own context: nothing shared).
    {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      const errors = [];
      page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
      page.on("pageerror", (e) => errors.push(String(e)));
      await login(page, port, TERMINAL_TOKEN);
      await waitText(page, "msg", "needs a manager token", "terminal token");
      check((await readText(page, "store")) === "", "a terminal token showed the store id");
      check((await readText(page, "x_sales")) !== "0", "a terminal token showed the day's figures");
      check((await page.evaluate(() => sessionStorage.getItem("machub_token"))) === null,
            "the refused token stayed in sessionStorage");
      // The only console line allowed here is the browser's own note on the 403 answer.
      const other = errors.filter((e) => !/Failed to load resource.*403/.test(e));
      check(other.length === 0, "console errors with a terminal token: " + JSON.stringify(other));
      await ctx.close();
      log("terminal token refused on the page");
    }

    // 2. A manager logs in.
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    const consoleErrors = [];
    page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
    page.on("pageerror", (e) => consoleErrors.push("pageerror: " + String(e)));
    await login(page, port, MANAGER_TOKEN);
    await waitText(page, "store", "S042", "manager login");
    await waitText(page, "x_sales", "0", "manager login: the day's figures");
    // The figures appear during the first refresh; its message ("Paste a manager token...")
    // is cleared only when that refresh completes: wait for it (a CI run read it between).
    await page.waitForFunction(() => Number(document.body.dataset.refreshes || "0") >= 1, null,
                               { timeout: 15000, polling: 50 });
    const loginMsg = await readText(page, "msg");
    check(loginMsg === "", "manager login: message " + JSON.stringify(loginMsg));
    check(!(await page.content()).includes(MANAGER_TOKEN), "the manager token is in the page");
    log("manager token logged in");

    // 3. A sale posted over HTTP shows up within 5 s with the right total.
    const cash = sale("7.58", "cash");
    const r1 = await request(port, "POST", "/v1/sales", TERMINAL_TOKEN, cash);
    check(r1.status === 201, "cash sale: " + r1.status + " " + JSON.stringify(r1.body));
    const posted = Date.now();
    const shownIn = await waitText(page, "x_gross", "7.58 USD", "cash sale", UPDATE_MS);
    await waitText(page, "sales", r1.body.receipt_no, "cash sale in the last entries",
                   Math.max(1, UPDATE_MS - (Date.now() - posted)));
    await waitText(page, "sales", "7.58 USD", "cash sale total in the last entries",
                   Math.max(1, UPDATE_MS - (Date.now() - posted)));
    log("cash sale " + r1.body.receipt_no + " on the page after " + shownIn + " ms");

    // 4. An offline card sale raises the exposure figure.
    const card = sale("30.00", "card");
    const r2 = await request(port, "POST", "/v1/sales", TERMINAL_TOKEN, card);
    check(r2.status === 201, "offline card sale: " + r2.status + " " + JSON.stringify(r2.body));
    if (offline) {
      await waitText(page, "off_store", "30.00", "offline exposure (store)");
      await waitText(page, "off_store_limit", "100.00", "offline store limit");
      await waitText(page, "off_terminals", "30.00", "offline exposure (T01)");
      await waitText(page, "off_count", "1", "outstanding offline payments");
      await waitNoText(page, "off_oldest", "—", "oldest offline payment's age");
    } else {
      await waitText(page, "off_today", "30.00 USD", "offline card total today (stand-in)");
    }
    log("offline card sale raised the exposure figure");

    // 5. A refused sale (422) shows nothing new.
    await refreshes(page, 1);
    const before = await snapshot(page);
    const refused = offline ? sale("60.00", "card")                       // over card_max_amount
                            : sale("12.00", "cash", { total: "12.01" });  // stand-in: total_mismatch
    const r3 = await request(port, "POST", "/v1/sales", TERMINAL_TOKEN, refused);
    const wantCode = offline ? "offline_limit_exceeded" : "total_mismatch";
    check(r3.status === 422 && r3.body && r3.body.error && r3.body.error.code === wantCode,
          "refused sale: want 422 " + wantCode + ", got " + r3.status + " " + JSON.stringify(r3.body));
    await refreshes(page, 2);
    const after = await snapshot(page);
    for (const k of Object.keys(before)) {
      check(before[k] === after[k], "the refused sale changed #" + k + ": " + JSON.stringify(before[k]) +
            " -> " + JSON.stringify(after[k]));
    }
    log("422 " + wantCode + " showed nothing new");

    // 6. An alert appears and clears.
    if (offline) {
      // T01 at 75.00 of its 80.00: above 80 % of a limit. The alert is whichever code
      // appears now; it must be gone once both payments have an outcome.
      const codes = () => page.$$eval("#alerts tr", (rows) =>
        rows.filter((r) => r.cells.length > 1).map((r) => r.cells[0].textContent));
      const earlier = await codes();
      const more = sale("45.00", "card");
      const r4 = await request(port, "POST", "/v1/sales", TERMINAL_TOKEN, more);
      check(r4.status === 201, "second offline sale: " + r4.status + " " + JSON.stringify(r4.body));
      await waitText(page, "off_store", "75.00", "offline exposure after the second sale");
      let raised = [];
      try {
        await page.waitForFunction((before) => Array.from(document.querySelectorAll("#alerts tr"))
          .some((r) => r.cells.length > 1 && !before.includes(r.cells[0].textContent)), earlier,
        { timeout: SHOW_MS, polling: 50 });
        raised = (await codes()).filter((c) => !earlier.includes(c));
      } catch (e) {
        fail("no alert appeared at 75.00 of the terminal's 80.00 within " + SHOW_MS + " ms; alerts: " +
             JSON.stringify(await readText(page, "alerts")));
      }
      check(raised.some((c) => c.includes("offline")), "the new alert is not an offline one: " + JSON.stringify(raised));
      await page.screenshot({ path: path.join(shots, "dashboard-desktop.png"), fullPage: true });
      // The processor approves one, declines the other: exposure released, alert cleared.
      for (const [s, result] of [[card, "approved"], [more, "declined"]]) {
        const body = { id: "auth-" + s.id, result };
        if (result === "approved") body.auth_code = "A1B2C3"; else body.reason = "insufficient funds";
        let r = await request(port, "POST", "/v1/sales/" + s.id + "/payments/0/authorization", TERMINAL_TOKEN, body);
        if (r.status === 403) r = await request(port, "POST", "/v1/sales/" + s.id + "/payments/0/authorization", MANAGER_TOKEN, body);
        check(r.status === 201 || r.status === 200, "authorization " + result + ": " + r.status + " " + JSON.stringify(r.body));
      }
      for (const c of raised) await waitNoText(page, "alerts", c, "alert " + c + " clearing");
      await waitText(page, "off_count", "0", "nothing outstanding after the outcomes");
      await waitText(page, "declined", more.id, "the declined payment listed");
      await waitText(page, "declined", "45.00", "the declined payment's amount");
      log("alert " + raised.join(", ") + " appeared and cleared; the declined payment is listed");
    } else {
      // STAND-IN until /v1/status has `alerts`: an open drawer appears and clears.
      const open = { id: "browser-ev-1", terminal_id: "T01", type: "drawer_open",
                     created_at: new Date().toISOString(), currency: "USD", amount: "100.00" };
      const r4 = await request(port, "POST", "/v1/events", TERMINAL_TOKEN, open);
      check(r4.status === 201, "drawer_open: " + r4.status + " " + JSON.stringify(r4.body));
      await waitText(page, "drawers", "T01", "open drawer (alert stand-in)");
      await waitText(page, "drawers", "100.00", "open drawer's float");
      await page.screenshot({ path: path.join(shots, "dashboard-desktop.png"), fullPage: true });
      const close = { id: "browser-ev-2", terminal_id: "T01", type: "drawer_close",
                      created_at: new Date().toISOString(), currency: "USD", counted: "100.00" };
      const r5 = await request(port, "POST", "/v1/events", TERMINAL_TOKEN, close);
      check(r5.status === 201, "drawer_close: " + r5.status + " " + JSON.stringify(r5.body));
      await waitText(page, "drawers", "no drawer open", "drawer closed (alert stand-in clears)");
      log("STAND-IN (no alerts on this hub): an open drawer appeared and cleared");
    }

    // 7. Phone width: nothing wider than the screen (tables scroll in their own box).
    await page.setViewportSize({ width: 390, height: 844 });
    const widths = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    check(widths[0] <= widths[1], "at 390 px the page is " + widths[0] + " px wide (scrolls sideways)");
    await page.screenshot({ path: path.join(shots, "dashboard-phone.png"), fullPage: true });
    log("phone width: page " + widths[0] + " px of " + widths[1] + "; screenshots in " + shots);

    // 8. No console error (a CSP violation is one) on the manager's page, from the first load to here.
    check(consoleErrors.length === 0, "console: " + JSON.stringify(consoleErrors));
    await ctx.close();
    log("PASS in " + (Date.now() - t0) + " ms");
    passed = true;
    return 0;
  } finally {
    if (browser) await browser.close().catch(() => {});
    if (hub && hub.proc.exitCode === null) {
      hub.proc.kill("SIGTERM");
      await new Promise((resolve) => {
        const timer = setTimeout(() => { hub.proc.kill("SIGKILL"); resolve(); }, 5000);
        hub.proc.once("exit", () => { clearTimeout(timer); resolve(); });
      });
    }
    if (!passed) log("hub log kept in " + work);
    else fs.rmSync(work, { recursive: true, force: true });
  }
}

main().then((code) => { process.exitCode = code; }, (e) => {
  console.error("dashboard_test: FAIL: " + (e instanceof Failure ? e.message : (e && e.stack) || e));
  process.exitCode = 1;
});
