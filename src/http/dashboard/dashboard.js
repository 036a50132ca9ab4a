"use strict";
const $ = (id) => document.getElementById(id);
const text = (id, v) => { $(id).textContent = (v === null || v === undefined) ? "–" : String(v); };
let token = sessionStorage.getItem("machub_token") || "";

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("token").value.trim();
  $("token").value = "";
  sessionStorage.setItem("machub_token", token);
  refresh();
});

async function get(path) {
  const r = await fetch(path, { headers: { "Authorization": "Bearer " + token }, cache: "no-store" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((body.error && body.error.message) || ("HTTP " + r.status));
  return body;
}

function showStatus(s) {
  text("store", s.store_id);
  text("version", "v" + s.version + " · up " + Math.floor(s.uptime_s / 60) + " min");
  const c = s.cloud || {};
  text("cloud", c.state);
  $("cloud").className = "big " + ({ online: "ok", degraded: "warn", offline: "bad" }[c.state] || "");
  text("cloud_detail", c.last_error ? "last error: " + c.last_error
                      : (c.last_success_at ? "last upload " + c.last_success_at : ""));
  const b = s.backlog || {};
  text("backlog", (b.sales ?? 0) + " sales");
  text("backlog_detail", b.oldest_sale_at ? "oldest " + b.oldest_sale_at : "nothing waiting");
  const j = s.journal || {};
  text("journal", (j.sales ?? "–") + " sales");
  $("journal").className = "big " + (j.healthy ? "ok" : "bad");
  text("journal_detail", (j.healthy ? "healthy" : "NOT WRITABLE") + " · " +
       Math.round((j.free_disk_bytes || 0) / 1048576) + " MiB free");
  const k = s.catalog || {};
  text("catalog", k.version || "none");
  text("catalog_detail", k.fetched_at ? "fetched " + k.fetched_at : "");
}

function showSales(list) {
  const tbody = $("sales");
  tbody.replaceChildren();
  for (const s of list.slice().reverse()) {
    const tr = document.createElement("tr");
    const cells = [s.seq, s.receipt_no, s.received_at, s.terminal_id, s.type,
                   (s.total ?? s.amount ?? s.counted ?? (s.figures && s.figures.net && s.figures.net.total) ?? "") + " " + (s.currency ?? ""),
                   s.uploaded ? "yes" : "no"];
    cells.forEach((v, i) => {
      const td = document.createElement("td");
      td.textContent = (v === null || v === undefined) ? "" : String(v);
      if (i === 5) td.className = "num";
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
  }
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
      td.textContent = (v === null || v === undefined) ? "–" : String(v);
      if (nums.includes(i)) td.className = "num";
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
  }
}

// GET /v1/reports/x: the open day's figures (everything since the last Z report).
function showDay(x) {
  const f = x.figures || {};
  const cur = " " + (x.currency || "");
  const sales = f.sales || {}, refunds = f.refunds || {}, voids = f.voids || {}, net = f.net || {};
  text("day_note", x.last_z ? "since Z" + x.last_z.z_number + " (seq " + x.last_z.seq + ")"
                            : "since the first entry");
  text("x_sales", sales.count ?? 0);
  text("x_sales_detail", f.entries + " journal entries");
  text("x_gross", (sales.total ?? "0") + cur);
  text("x_gross_detail", "before tax " + (sales.subtotal ?? "0"));
  text("x_tax", (sales.tax ?? "0") + cur);
  text("x_refunds", (refunds.count ?? 0) + (voids.count ?? 0));
  text("x_refunds_detail", "refunds " + (refunds.total ?? "0") + " · voids " + (voids.total ?? "0"));
  text("x_net", (net.total ?? "0") + cur);
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
      .forEach((id) => text(id, id === "z_number" ? "none yet" : ""));
    return;
  }
  const f = z.figures || {};
  text("z_number", z.receipt_no);
  text("z_detail", "closed " + z.received_at + " · seq " + z.first_seq + "–" + z.last_seq);
  text("z_net", ((f.net && f.net.total) ?? "0") + " " + z.currency);
  text("z_net_detail", ((f.sales && f.sales.count) ?? 0) + " sales");
  // Each closed drawer's counted minus expected, as the hub computed it (exact decimals).
  const closed = (f.drawers || []).filter((d) => d.variance !== undefined);
  text("z_variance", closed.length + " drawer(s) closed");
  text("z_variance_detail", closed.map((d) => d.terminal_id + " " + d.variance).join(" · "));
}

let shownZ = -1;  // z_number on screen; -1: nothing yet

async function refresh() {
  if (!token) { text("msg", "Paste a manager token to see the store."); return; }
  try {
    const s = await get("/v1/status");
    showStatus(s);
    const x = await get("/v1/reports/x");
    showDay(x);
    // The last Z report changes once a day: fetched again only when its number does.
    const zNumber = x.last_z ? x.last_z.z_number : 0;
    if (zNumber !== shownZ) {
      const z = zNumber ? await get("/v1/reports/z/last").catch(() => null) : null;
      showLastZ(z);
      if (z || !zNumber) shownZ = zNumber;  // a failed read is tried again next time
    }
    const last = (s.journal && s.journal.last_seq) || 0;
    const page = await get("/v1/sales?after_seq=" + Math.max(0, last - 20) + "&limit=20");
    showSales(page.sales || []);
    $("msg").textContent = "";
  } catch (e) {
    text("msg", e.message);
  }
}

refresh();
setInterval(refresh, 5000);
