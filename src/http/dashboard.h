#pragma once
// The store dashboard (GET /), compiled into the binary: one self-contained HTML page.
//
// The page itself holds no data and needs no token. Its script asks the manager for a
// terminal token once, keeps it in sessionStorage (gone when the tab closes), and polls
// GET /v1/status and GET /v1/sales with it every 5 s. Every value is inserted with
// textContent, never as HTML, so sale fields cannot inject markup. Served with a strict
// Content-Security-Policy (kDashboardCsp).

#include <string_view>

namespace machub::http {

inline constexpr std::string_view kDashboardCsp =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

inline constexpr std::string_view kDashboardHtml = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>machub</title>
<style>
  :root { --fg:#1d2330; --muted:#6b7280; --line:#e5e7eb; --ok:#15803d; --warn:#b45309; --bad:#b91c1c; }
  * { box-sizing: border-box; }
  body { margin:0; font:15px/1.45 system-ui, sans-serif; color:var(--fg); background:#f8fafc; }
  header { display:flex; gap:1rem; align-items:center; padding:.8rem 1.2rem; background:#fff;
           border-bottom:1px solid var(--line); flex-wrap:wrap; }
  header h1 { font-size:1.1rem; margin:0; }
  header form { margin-left:auto; display:flex; gap:.4rem; }
  input, button { font:inherit; padding:.3rem .6rem; border:1px solid var(--line); border-radius:6px; }
  button { background:#1d2330; color:#fff; cursor:pointer; }
  main { padding:1.2rem; max-width:1100px; margin:auto; }
  .cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(200px,1fr)); gap:.8rem; }
  .card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:.8rem 1rem; }
  .card h2 { font-size:.8rem; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); margin:0 0 .3rem; }
  .big { font-size:1.4rem; font-weight:600; }
  .muted { color:var(--muted); }
  .ok { color:var(--ok); } .warn { color:var(--warn); } .bad { color:var(--bad); }
  table { width:100%; border-collapse:collapse; background:#fff; margin-top:1rem;
          border:1px solid var(--line); border-radius:8px; }
  th, td { text-align:left; padding:.4rem .6rem; border-bottom:1px solid var(--line); }
  th { font-size:.8rem; color:var(--muted); font-weight:600; }
  td.num { text-align:right; font-variant-numeric:tabular-nums; }
  #msg { color:var(--bad); margin:.6rem 0; min-height:1.2em; }
</style>
</head>
<body>
<header>
  <h1>machub <span id="store"></span></h1>
  <span id="version" class="muted"></span>
  <form id="login">
    <input id="token" type="password" placeholder="terminal token" autocomplete="off">
    <button>Connect</button>
  </form>
</header>
<main>
  <div id="msg"></div>
  <div class="cards">
    <div class="card"><h2>Cloud</h2><div id="cloud" class="big">–</div><div id="cloud_detail"></div></div>
    <div class="card"><h2>Backlog</h2><div id="backlog" class="big">–</div><div id="backlog_detail"></div></div>
    <div class="card"><h2>Journal</h2><div id="journal" class="big">–</div><div id="journal_detail"></div></div>
    <div class="card"><h2>Catalog</h2><div id="catalog" class="big">–</div><div id="catalog_detail"></div></div>
  </div>
  <table>
    <thead><tr><th>Seq</th><th>Receipt</th><th>Received</th><th>Terminal</th><th>Type</th>
      <th class="num">Total</th><th>Uploaded</th></tr></thead>
    <tbody id="sales"></tbody>
  </table>
</main>
<script>
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
  if (!token) { text("msg", "Paste a terminal token to see the store."); return; }
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
</script>
</body>
</html>
)html";

}  // namespace machub::http
