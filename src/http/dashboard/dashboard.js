"use strict";
// The store dashboard (GET /): reads the manager routes every 2 s and shows what it got.
// Every value goes in as text (textContent), never as HTML. A member the hub does not send
// shows "—": an older or newer hub never breaks the page.
const DASH = "—";
const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);
const show = (v) => (v === null || v === undefined || v === "") ? DASH : String(v);
const text = (id, v) => { $(id).textContent = show(v); };
let token = sessionStorage.getItem("machub_token") || "";
let currency = "";  // the store's, from the last X report (the status has none)

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("token").value.trim();
  $("token").value = "";
  sessionStorage.setItem("machub_token", token);
  refresh();
});

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function get(path) {
  const r = await fetch(path, { headers: { "Authorization": "Bearer " + token }, cache: "no-store" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new HttpError(r.status, (body.error && body.error.message) || ("HTTP " + r.status));
  return body;
}

// The first of several member paths ("a.b.c") that is present in `o`; undefined if none.
// The offline and alert members are read through this, so a renamed member degrades to "—".
function pick(o, ...paths) {
  for (const p of paths) {
    let v = o;
    for (const k of p.split(".")) v = (v !== null && typeof v === "object") ? v[k] : undefined;
    if (v !== undefined && v !== null) return v;
  }
  return undefined;
}

// "12 s", "4 min", "3 h 20 min", "2 d 3 h" from seconds.
function age(seconds) {
  if (typeof seconds !== "number" || !isFinite(seconds) || seconds < 0) return undefined;
  const s = Math.floor(seconds);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
}

// Age from a seconds member or, failing that, from an RFC 3339 time.
function ageOf(secs, at) {
  if (typeof secs === "number") return age(secs);
  if (typeof secs === "string" && secs !== "" && isFinite(Number(secs))) return age(Number(secs));
  const t = typeof at === "string" ? Date.parse(at) : NaN;
  return isNaN(t) ? undefined : age((Date.now() - t) / 1000);
}

// Share of a limit used, 0..100, or undefined when either side is missing or not a number.
function percent(amount, limit) {
  const a = Number(amount), l = Number(limit);
  if (amount === undefined || limit === undefined || !isFinite(a) || !isFinite(l) || l <= 0) return undefined;
  return Math.min(100, Math.max(0, (a / l) * 100));
}

function bar(id, pct) {
  const el = $(id);
  el.style.width = (pct === undefined ? 0 : pct) + "%";
  el.className = pct === undefined ? "" : (pct >= 100 ? "bad" : (pct >= 80 ? "warn" : ""));
}

function showStatus(s) {
  text("store", s.store_id);
  text("version", "v" + show(s.version) + " · up " +
       (typeof s.uptime_s === "number" ? Math.floor(s.uptime_s / 60) + " min" : DASH));
  const c = s.cloud || {};
  text("cloud", c.state);
  $("cloud").className = "big " + ({ online: "ok", degraded: "warn", stalled: "warn", offline: "bad" }[c.state] || "");
  // The last successful upload stays on screen after a later error.
  text("cloud_detail", "last upload " + show(c.last_success_at));
  $("cloud_error").textContent = c.last_error ? "last error: " + c.last_error : "";
  const b = s.backlog || {};
  text("backlog", show(b.sales) + " sales");
  text("backlog_detail", b.oldest_sale_at ? "oldest " + b.oldest_sale_at : "nothing waiting");
  const j = s.journal || {};
  text("journal", "seq " + show(j.last_seq));
  $("journal").className = "big " + (j.healthy === false ? "bad" : "ok");
  text("journal_detail", (j.healthy === false ? "NOT WRITABLE · " : "") +
       (typeof j.free_disk_bytes === "number" ? Math.round(j.free_disk_bytes / 1048576) + " MiB free" : DASH));
  const k = s.catalog || {};
  text("catalog", k.version || "none");
  text("catalog_detail", k.fetched_at ? "fetched " + k.fetched_at : "");
}

// Offline card exposure from /v1/status `offline` (issue #9). Absent on a hub without the
// offline routes: every figure shows "—".
function showOffline(s) {
  const o = s.offline;
  const has = o !== undefined && o !== null && typeof o === "object";
  const cur = (has && typeof o.currency === "string") ? " " + o.currency : (currency ? " " + currency : "");
  const store = has ? pick(o, "store.exposure", "store.outstanding", "exposure.store", "store_exposure",
                           "exposure") : undefined;
  const storeValue = typeof store === "object" ? undefined : store;
  const storeLimit = has ? pick(o, "store.limit", "store.max_outstanding", "limits.store_max_outstanding",
                                "store_max_outstanding") : undefined;
  $("offline_note").textContent = has ? (o.enabled === false ? "(offline payments refused)" : "")
                                      : "(not reported by this hub)";
  text("off_store", storeValue === undefined ? undefined : storeValue + cur);
  const pct = percent(storeValue, storeLimit);
  text("off_store_limit", "of " + (storeLimit === undefined ? "no limit" : storeLimit + cur) +
       (pct === undefined ? "" : " · " + Math.round(pct) + " %"));
  bar("off_store_bar", pct);
  text("off_count", has ? pick(o, "outstanding", "count", "store.count") : undefined);
  const oldest = has ? ageOf(pick(o, "oldest_age_s", "oldest.age_s", "store.oldest_age_s"),
                             pick(o, "oldest_received_at", "oldest_at", "oldest.received_at")) : undefined;
  text("off_oldest", "oldest " + show(oldest));
  text("off_card_max", has ? pick(o, "limits.card_max_amount", "card_max_amount", "card.limit") : undefined);
  text("off_enabled", has ? (o.enabled === false ? "disabled" : "enabled") : "");
  // Per terminal: an array of {terminal_id, exposure, limit} or a map id -> amount / object.
  const termLimit = has ? pick(o, "terminal_limit", "limits.terminal_max_outstanding", "terminal_max_outstanding")
                        : undefined;
  let terms = has ? pick(o, "terminals") : undefined;
  if (terms && !Array.isArray(terms) && typeof terms === "object") {
    terms = Object.keys(terms).map((id) => (typeof terms[id] === "object" && terms[id] !== null)
      ? Object.assign({ terminal_id: id }, terms[id]) : { terminal_id: id, exposure: terms[id] });
  }
  fill("off_terminals", (Array.isArray(terms) ? terms : []).map((t) => {
    const amount = pick(t, "exposure", "outstanding", "amount");
    const limit = pick(t, "limit", "max_outstanding") ?? termLimit;
    const p = percent(amount, limit);
    return [t.terminal_id, amount, limit, p === undefined ? undefined : Math.round(p) + " %"];
  }), [1, 2, 3], has ? "nothing outstanding" : DASH);
}

// GET /v1/offline-payments?state=declined (only asked when the hub reports `offline`).
function showDeclined(list) {
  if (list === undefined) { fill("declined", [], [], DASH); return; }
  const rows = Array.isArray(list) ? list : (pick(list, "payments", "offline_payments") || []);
  fill("declined", rows.map((p) => [
    show(p.sale_id) + (p.payment_index !== undefined ? " #" + p.payment_index : ""),
    p.terminal_id, show(p.amount) + (p.currency ? " " + p.currency : ""),
    ageOf(p.age_s, pick(p, "received_at", "created_at")), pick(p, "reason", "outcome.reason")]),
  [2], "none declined");
}

// A figure behind an alert as one line of text: objects as "key value", lists joined by ";".
function flat(v) {
  if (Array.isArray(v)) return v.map(flat).join("; ");
  if (v !== null && typeof v === "object") return Object.keys(v).map((k) => k + " " + flat(v[k])).join(", ");
  return show(v);
}

// Alerts: /v1/status `alerts` (issue #9); each {code, severity, since, ...numbers}.
function showAlerts(s) {
  const list = s.alerts;
  if (!Array.isArray(list)) {
    text("alerts_note", "(not reported by this hub)");
    fill("alerts", [], [], DASH);
    return;
  }
  text("alerts_note", list.length === 0 ? "none" : "(" + list.length + ")");
  fill("alerts", list.map((a) => {
    const details = Object.keys(a || {})
      .filter((k) => !["code", "severity", "since", "since_at"].includes(k))
      .map((k) => k + " " + flat(a[k]))
      .join(" · ");
    return [a.code, a.severity, pick(a, "since", "since_at"), details];
  }), [], "no alerts");
  const rows = $("alerts").querySelectorAll("tr");
  list.forEach((a, i) => {
    if (rows[i]) rows[i].className = a.severity === "critical" || a.severity === "error" ? "bad" : "warn";
  });
}

function showSales(list) {
  const rows = list.slice().reverse().map((s) => [
    s.seq, s.receipt_no, s.received_at, s.terminal_id, s.type,
    show(s.total ?? s.amount ?? s.counted ?? (s.figures && s.figures.net && s.figures.net.total)) +
      (s.currency ? " " + s.currency : ""),
    s.uploaded ? "yes" : "no"]);
  fill("sales", rows, [5], "no entries yet");
}

// Rows of plain values into a table body; columns listed in `nums` are right-aligned.
function fill(id, rows, nums, empty) {
  const tbody = $(id);
  tbody.replaceChildren();
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 8;
    td.className = "muted";
    td.textContent = empty;
    tr.appendChild(td);
    tbody.appendChild(tr);
    return;
  }
  for (const row of rows) {
    const tr = document.createElement("tr");
    row.forEach((v, i) => {
      const td = document.createElement("td");
      td.textContent = show(v);
      if (nums.includes(i)) td.className = "num";
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
  }
}

// GET /v1/reports/x: the open day's figures (everything since the last Z report).
function showDay(x) {
  const f = x.figures || {};
  currency = x.currency || currency;
  const cur = " " + (x.currency || "");
  const sales = f.sales || {}, refunds = f.refunds || {}, voids = f.voids || {}, net = f.net || {};
  text("day_note", x.last_z ? "since Z" + x.last_z.z_number + " (seq " + x.last_z.seq + ")"
                            : "since the first entry");
  text("x_sales", sales.count ?? 0);
  text("x_sales_detail", show(f.entries) + " journal entries");
  text("x_gross", (sales.total ?? "0") + cur);
  text("x_gross_detail", "before tax " + (sales.subtotal ?? "0"));
  text("x_tax", (sales.tax ?? "0") + cur);
  text("x_refunds", (refunds.count ?? 0) + (voids.count ?? 0));
  text("x_refunds_detail", "refunds " + (refunds.total ?? "0") + " · voids " + (voids.total ?? "0"));
  text("x_net", (net.total ?? "0") + cur);
  const off = f.offline_card || {};
  text("off_today", off.amount === undefined ? undefined : off.amount + cur);
  text("off_today_detail", show(off.count) + " offline card payment(s) since the last Z");
  fill("methods", (f.by_method || []).map((m) =>
    [m.method, m.sales_count, m.collected, m.refunds_count, m.returned, m.net]),
    [1, 2, 3, 4, 5], "no payments yet");
  fill("terminals", (f.terminals || []).map((t) =>
    [t.terminal_id, t.sales, t.refunds, t.voids, t.first_receipt, t.last_receipt]),
    [1, 2, 3], "no sales yet");
  fill("drawers", (x.open_drawers || []).map((d) =>
    [d.terminal_id, d.opened_seq, d.float, d.cash_sales, d.cash_refunds, d.cash_in, d.cash_out,
     d.expected === null ? "unknown" : d.expected]),
    [1, 2, 3, 4, 5, 6, 7], "no drawer open");
}

// GET /v1/reports/z/last: the stored z_report entry (null before the first).
function showLastZ(z) {
  if (!z) {
    ["z_number", "z_detail", "z_net", "z_net_detail", "z_variance", "z_variance_detail"]
      .forEach((id) => { $(id).textContent = id === "z_number" ? "none yet" : ""; });
    return;
  }
  const f = z.figures || {};
  text("z_number", z.receipt_no);
  text("z_detail", "closed " + show(z.received_at) + " · seq " + show(z.first_seq) + "–" + show(z.last_seq));
  text("z_net", ((f.net && f.net.total) ?? "0") + " " + show(z.currency));
  text("z_net_detail", ((f.sales && f.sales.count) ?? 0) + " sales");
  // Each closed drawer's counted minus expected, as the hub computed it (exact decimals).
  const closed = (f.drawers || []).filter((d) => d.variance !== undefined);
  text("z_variance", closed.length + " drawer(s) closed");
  $("z_variance_detail").textContent = closed.map((d) => d.terminal_id + " " + d.variance).join(" · ");
}

let shownZ = -1;  // z_number on screen; -1: nothing yet
let busy = false;
let refreshes = 0;

// A refused token: say why, forget it, show no data.
function refuse(e) {
  token = "";
  sessionStorage.removeItem("machub_token");
  document.body.dataset.auth = "refused";
  text("msg", e.status === 403
    ? "That is not a manager token: the dashboard needs a manager token. (" + e.message + ")"
    : "That token is unknown or expired. (" + e.message + ")");
}

async function refresh() {
  if (!token) {
    if (document.body.dataset.auth !== "refused") text("msg", "Paste a manager token to see the store.");
    return;
  }
  if (busy) return;
  busy = true;
  try {
    const s = await get("/v1/status");
    document.body.dataset.auth = "ok";
    showStatus(s);
    showAlerts(s);
    showOffline(s);
    const x = await get("/v1/reports/x");
    showDay(x);
    if (s.offline !== undefined) {
      showDeclined(await get("/v1/offline-payments?state=declined").catch(() => undefined));
    } else {
      showDeclined(undefined);
    }
    // The last Z report changes once a day: fetched again only when its number does.
    const zNumber = x.last_z ? x.last_z.z_number : 0;
    if (zNumber !== shownZ) {
      const z = zNumber ? await get("/v1/reports/z/last").catch(() => null) : null;
      showLastZ(z);
      if (z || !zNumber) shownZ = zNumber;  // a failed read is tried again next time
    }
    const last = (s.journal && s.journal.last_seq) || 0;
    const page = await get("/v1/sales?after_seq=" + Math.max(0, last - 50) + "&limit=50");
    showSales(page.sales || []);
    $("msg").textContent = "";
    refreshes += 1;
    document.body.dataset.refreshes = String(refreshes);
    text("updated", "· updated " + new Date().toLocaleTimeString());
  } catch (e) {
    if (e instanceof HttpError && (e.status === 401 || e.status === 403)) refuse(e);
    else text("msg", e.message);
  } finally {
    busy = false;
  }
}

refresh();
setInterval(refresh, POLL_MS);
