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
                   (s.total ?? "") + " " + (s.currency ?? ""), s.uploaded ? "yes" : "no"];
    cells.forEach((v, i) => {
      const td = document.createElement("td");
      td.textContent = (v === null || v === undefined) ? "" : String(v);
      if (i === 5) td.className = "num";
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
  }
}

async function refresh() {
  if (!token) { text("msg", "Paste a manager token to see the store."); return; }
  try {
    const s = await get("/v1/status");
    showStatus(s);
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
