#pragma once
// `machub serve`: runs the hub until SIGTERM or SIGINT.
//
// Order: blocks SIGTERM/SIGINT (before any thread starts, so that only sigwait sees them),
// creates data_dir (0700), opens the journal, gathers terminal tokens (configuration +
// <data_dir>/tokens; with none and demo_token, creates one for T01 and prints it once),
// starts the HTTP server, logs "listening", writes ready_file, then waits for a signal:
// stops the server (draining for drain_timeout_ms), closes the journal, logs "stopped".
//
// Returns the process exit code: 0 after a clean stop, 1 on a runtime failure (journal
// I/O, bind), 2 on a configuration problem found late (unreadable TLS files, a malformed
// tokens file, a store_id that does not match the journal's).

#include "app/config.h"

namespace machub::app {

int RunServe(const Config& config);

}  // namespace machub::app
