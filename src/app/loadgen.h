#pragma once
// `machub loadgen`: simulated POS terminals driving a hub over HTTP/1.1 keep-alive.
//
// Each terminal has its own connection and sends one sale at a time: back to back
// (closed loop), or with `rate` > 0 at that many sales per second in total, spread evenly
// over the terminals (open loop; exponential or fixed gaps). Bodies come from
// SaleGenerator (salegen.h): new sales, refunds of earlier acknowledged sales, and
// retries that resend the exact bytes of an earlier acknowledged sale (which must be
// answered 200 with the original body: "retry_ok").
//
// Failure handling mirrors a real terminal: after a connection error, a timeout (no
// complete answer within `timeout_ms`), a 429 or a 5xx, the terminal waits 50-200 ms,
// reconnects if needed and resends the same bytes (same id) until the run ends. With
// `stop_on_error`, the first connection error ends the whole run instead.
//
// Acknowledged ids (answers 201, or 200 to a first send or resend) are appended to
// `acked_file`, one per line, only after the whole answer was received; the file is
// written at least every 100 ms and at the end (also after SIGINT/SIGTERM, which end the
// run early when `handle_signals`).
//
// Threads: RunLoadgen blocks; it runs one io_context on `threads` threads (1 or 2).

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace machub::app {

struct LoadgenOptions {
  std::string url = "http://127.0.0.1:8080";
  std::string tokens_file;  // lines "TERMINAL_ID TOKEN" (the output of `machub token create`)
  int terminals = 1;        // uses the first N entries of tokens_file
  double duration_s = 10;
  double rate = 0;            // total sales/s; 0 = closed loop
  bool poisson = true;        // open loop: exponential gaps (else fixed)
  std::string acked_file;     // empty: none
  uint64_t seed = 0;          // 0: a random seed (reported), so two runs never reuse ids
  double retry_percent = 1;   // share of requests that resend an earlier acked sale
  double refund_percent = 2;  // share of requests that refund an earlier acked sale
  std::string currency = "USD";
  bool stop_on_error = false;
  int64_t timeout_ms = 10'000;  // one request, from the first byte sent to the last received
  int threads = 1;
  bool handle_signals = true;  // SIGINT/SIGTERM end the run early (normal report)
  int max_error_logs = 5;      // unexpected answers printed to stderr
};

struct LoadgenReport {
  int terminals = 0;
  uint64_t seed = 0;     // the seed used (pass it again to repeat the bodies)
  double elapsed_s = 0;  // start to the end of the sending period
  int64_t sent = 0;      // requests written (resends included)
  int64_t answered = 0;  // complete answers received, any status
  int64_t acked = 0;     // distinct sales acknowledged (201, or 200 on a first send/resend)
  int64_t created = 0;   // 201 answers
  int64_t refunds = 0;   // acknowledged refunds (included in acked)
  int64_t retries = 0;   // deliberate resends of acked sales
  int64_t retry_ok = 0;  // ... answered 200 with the original body
  int64_t retry_mismatch = 0;
  int64_t conn_errors = 0;  // failed connects, broken/closed connections, timeouts
  int64_t timeouts = 0;
  int64_t unexpected = 0;  // answers other than 200/201/429/5xx (400, 401, 409, ...)
  bool stopped_on_error = false;
  bool interrupted = false;  // SIGINT/SIGTERM
  std::map<int, int64_t> by_status;
  double throughput_per_s = 0;                            // acked / elapsed_s
  double p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0;  // over all answered requests

  // One JSON object on one line.
  std::string ToJson() const;
  // A human-readable table (several lines).
  std::string ToTable() const;
  // True when something went wrong that a script should notice: retry mismatches,
  // unexpected answers, or a stop on error.
  bool Failed() const;
};

// kInvalidArgument for bad options or a short/malformed tokens file, kIoError when the
// acked file cannot be opened, kUnavailable when the URL's host cannot be resolved.
// Everything after the start is counted in the report, not returned as an error.
Result<LoadgenReport> RunLoadgen(const LoadgenOptions& options);

// Parses "TERMINAL_ID TOKEN" lines (blank lines and '#' comments ignored).
struct TerminalCredential {
  std::string terminal_id;
  std::string token;
};
Result<std::vector<TerminalCredential>> LoadCredentialsFile(const std::string& path);

}  // namespace machub::app
