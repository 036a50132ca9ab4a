#pragma once
// The store dashboard (GET /), compiled into the binary from src/http/dashboard/:
// index.html (the page, GET /) and dashboard.js (its script, GET /dashboard.js), embedded
// at build time by cmake/embed_file.cmake.
//
// The page and its script hold no data and need no token. The script asks the manager for
// a token once, keeps it in sessionStorage (gone when the tab closes), and polls with it
// every 5 s: GET /v1/status, GET /v1/reports/x (today's figures: sales, gross, tax,
// refunds, by payment method, per terminal, open drawers with their expected cash),
// GET /v1/reports/z/last (the last Z report; read again only when the X report names a
// new one) and the last entries (GET /v1/sales). Every value is inserted with
// textContent, never as HTML, so sale fields cannot inject markup. Both are served with a
// strict Content-Security-Policy (kDashboardCsp): scripts only from the hub itself, no
// inline script.

#include <string_view>

namespace machub::http {

inline constexpr std::string_view kDashboardCsp =
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

extern const std::string_view kDashboardHtml;  // dashboard/index.html
extern const std::string_view kDashboardJs;    // dashboard/dashboard.js

}  // namespace machub::http
