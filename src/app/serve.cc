#include "app/serve.h"

#include <fcntl.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "app/salegen.h"
#include "app/sync_wiring.h"
#include "app/tls_init.h"
#include "app/tokens.h"
#include "catalog/catalog.h"
#include "catalog/store_config.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/time_format.h"
#include "http/alerts.h"
#include "http/api.h"
#include "http/server.h"
#include "journal/sqlite_journal.h"
#include "sync/service.h"

namespace machub::app {
namespace {

// A shell word in single quotes: safe for any content, including quotes in the body.
std::string ShellQuote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  out.push_back('\'');
  return out;
}

std::string BaseUrl(const Config& config, uint16_t port) {
  std::string host = config.listen_host;
  // A wildcard address is not something to connect to; the local host is.
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return std::string(config.tls_cert.empty() ? "http://" : "https://") + host + ":" +
         std::to_string(port);
}

// The one place a token is ever written to stdout by `serve`: a human block (not a log
// line), printed once, when the token is created.
// The API's tokens: the configuration's (terminal_tokens, manager_tokens), then the
// tokens file's.
std::vector<http::TerminalToken> ApiTokens(const Config& config,
                                           const std::vector<TokenEntry>& file_entries) {
  std::vector<http::TerminalToken> tokens = config.terminal_tokens;
  tokens.insert(tokens.end(), config.manager_tokens.begin(), config.manager_tokens.end());
  tokens.insert(tokens.end(), file_entries.begin(), file_entries.end());
  return tokens;
}

// `tokens` plus the store configuration's (when there is one).
std::vector<http::TerminalToken> StoreTokens(std::vector<http::TerminalToken> tokens,
                                             const catalog::StoreConfig* store_config) {
  if (store_config == nullptr) return tokens;
  for (const catalog::StoreConfigToken& t : store_config->tokens) {
    tokens.push_back({t.terminal_id, t.sha256_hex, t.expires_at_ms,
                      t.manager ? http::Role::kManager : http::Role::kTerminal});
  }
  return tokens;
}

void PrintDemoBlock(const Config& config, uint16_t port, const std::string& token,
                    const std::string& tokens_file) {
  uint64_t seed = 0;
  for (char c : token) seed = seed * 131 + static_cast<unsigned char>(c);
  SaleGenerator ids("T01", "USD", 2, seed);
  // 2 x 3.50 = 7.00 net, tax round_half_up(7.00 x 0.0825 = 0.5775) = 0.58, total 7.58.
  std::string body = "{\"id\":\"" + ids.NextId() +
                     "\",\"terminal_id\":\"T01\",\"type\":\"sale\",\"created_at\":\"" +
                     core::FormatRfc3339(core::SystemClock().NowMs()) +
                     "\",\"currency\":\"USD\",\"lines\":[{\"sku\":\"0001\",\"name\":\"Coffee\","
                     "\"qty\":\"2\",\"unit_price\":\"3.50\",\"tax_rate\":\"0.0825\"}],"
                     "\"payments\":[{\"method\":\"cash\",\"amount\":\"10.00\"}],"
                     "\"total\":\"7.58\"}";
  std::string url = BaseUrl(config, port) + "/v1/sales";
  std::string tls_note;
  std::string insecure;
  if (!config.tls_cert.empty()) {
    insecure = " -k";
    tls_note = "  (-k: this demo does not check the hub's certificate; use --cacert in real use)\n";
  }
  std::string block =
      "\n"
      "==============================================================================\n"
      " machub: no token is configured, so a DEMO token was created: a manager\n"
      " token for terminal T01 (it records T01's sales and opens the dashboard).\n"
      " It is shown only this once; its hash is stored in\n"
      "   " +
      tokens_file +
      "\n"
      "\n"
      "   T01 manager token:  " +
      token +
      "\n"
      "\n"
      " Record a sale (run it twice: the second answer is 200 with the same receipt):\n"
      "\n"
      "   curl -sS -g" +
      insecure + " -X POST " + ShellQuote(url) +
      " \\\n"
      "     -H " +
      ShellQuote("Authorization: Bearer " + token) +
      " \\\n"
      "     -H 'Content-Type: application/json' \\\n"
      "     --data-raw " +
      ShellQuote(body) + "\n" + tls_note +
      "\n"
      " Dashboard: " +
      BaseUrl(config, port) +
      "/ (paste the token).\n"
      " Real terminals: `machub token create --terminal T02`; managers:\n"
      " `machub token create --terminal M01 --role manager`. No demo token: set\n"
      " demo_token = false (--demo-token false, MACHUB_DEMO_TOKEN=false).\n"
      "==============================================================================\n"
      "\n";
  std::fputs(block.c_str(), stdout);
  std::fflush(stdout);
}

Status WriteReadyFile(const std::string& path, uint16_t port) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::string content = std::to_string(port) + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status(ErrorCode::kIoError, "cannot create " + tmp + ": " + std::strerror(errno));
  }
  ssize_t n = ::write(fd, content.data(), content.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(content.size())) {
    ::unlink(tmp.c_str());
    return Status(ErrorCode::kIoError, "cannot write " + tmp + ": " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    ::unlink(tmp.c_str());
    return Status(ErrorCode::kIoError, "cannot rename " + tmp + ": " + std::strerror(err));
  }
  return Status::Ok();
}

// What identifies a version of the tokens file; it is replaced whole by rename, so a new
// version has a new inode (and usually a new mtime and size).
struct TokensFileStamp {
  bool exists = false;
  ino_t inode = 0;
  int64_t mtime_ns = 0;
  off_t size = 0;
  bool operator==(const TokensFileStamp&) const = default;
};

TokensFileStamp StampOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return {};
  return {true, st.st_ino,
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec, st.st_size};
}

const char* SignalName(int sig) {
  switch (sig) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    default:
      return "signal";
  }
}

// tls_auto: the names and addresses the server certificate is issued for. tls_hosts
// (comma-separated) when set; otherwise this machine's host name (and NAME.local, what
// mDNS resolves on a shop LAN), localhost, the loopback addresses and a specific listen
// address.
TlsInitOptions AutoTlsOptions(const Config& config) {
  TlsInitOptions o;
  o.dir = TlsDir(config.data_dir);
  auto add = [&o](std::string item) {
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (item.empty()) return;
    const bool ip = item.find(':') != std::string::npos ||
                    item.find_first_not_of("0123456789.") == std::string::npos;
    auto& list = ip ? o.ips : o.hosts;
    for (const std::string& have : list) {
      if (have == item) return;
    }
    list.push_back(std::move(item));
  };
  if (!config.tls_hosts.empty()) {
    size_t start = 0;
    for (;;) {
      const size_t comma = config.tls_hosts.find(',', start);
      add(config.tls_hosts.substr(start, comma == std::string::npos ? comma : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    return o;
  }
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) == 0 && name[0] != '\0') {
    std::string host = name;
    add(host);
    if (host.find('.') == std::string::npos) add(host + ".local");
  }
  add("localhost");
  add("127.0.0.1");
  add("::1");
  if (config.listen_host != "0.0.0.0" && config.listen_host != "::") add(config.listen_host);
  return o;
}

// A certificate with less than this left is renewed (at start and while running).
constexpr int64_t kTlsRenewBeforeS = 30 * 86400;

// tls_auto: issues <data_dir>/tls/server.pem when it is missing or due for renewal (the
// store CA is created once and kept). Returns false when that failed and no usable
// certificate exists.
bool EnsureAutoTls(const Config& config) {
  const TlsInitOptions options = AutoTlsOptions(config);
  const std::string cert = options.dir + "/server.pem";
  auto left = CertificateSecondsLeft(cert);
  const bool present = left.ok() && ::access((options.dir + "/server.key").c_str(), R_OK) == 0;
  if (present && *left > kTlsRenewBeforeS) return true;
  auto r = TlsInit(options);
  if (!r.ok()) {
    core::LogError("tls_init_failed", {{"error", r.status().message()}});
    return present && *left > 0;
  }
  core::LogInfo("tls_certificate_issued",
                {{"ca", r->ca_pem},
                 {"ca_created", r->ca_created},
                 {"ca_fingerprint_sha256", r->ca_fingerprint_sha256},
                 {"not_after", core::FormatRfc3339(r->server_not_after_unix * 1000)}});
  return true;
}

}  // namespace

int RunServe(const Config& given) {
  // tls_auto fills in tls_cert and tls_key below.
  Config config = given;
  // A file-size limit (systemd LimitFSIZE=, ulimit -f) must turn into EFBIG for SQLite,
  // hence 503 storage_unavailable, not a process killed by SIGXFSZ. Likewise a terminal
  // that hangs up must not kill the hub with SIGPIPE.
  std::signal(SIGXFSZ, SIG_IGN);
  std::signal(SIGPIPE, SIG_IGN);
#if defined(__GLIBC__)
  // glibc raises its mmap threshold each time a large block is freed, so the upload's
  // batch buffers (one to a few MB each) soon come from the malloc arenas and their pages
  // stay resident after they are freed. Setting the thresholds, here to glibc's own
  // defaults, turns that adaptation off: blocks of 128 KiB or more are mmap'd and go back
  // to the kernel when freed. Peak RSS at 64 loadgen terminals 29.4-30.4 -> 24.6-26.6 MB,
  // same sales/s (docs/BENCHMARKS.md "The hot path").
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);
#endif
  // Block before any thread exists: threads inherit the mask, so the signals stay pending
  // for sigwait below instead of killing the process or landing on an I/O thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  core::LogLevel level = core::LogLevel::kInfo;
  core::ParseLogLevel(config.log_level, &level);  // validated by LoadConfig
  core::SetLogLevel(level);

  if (!config.ready_file.empty()) ::unlink(config.ready_file.c_str());  // never a stale port

  core::LogInfo("starting", {{"version", MACHUB_VERSION},
                             {"store_id", config.store_id},
                             {"data_dir", config.data_dir},
                             {"listen", config.listen},
                             {"tls", !config.tls_cert.empty()},
                             {"group_commit", config.group_commit}});

  if (Status st = EnsureDataDir(config.data_dir); !st.ok()) {
    core::LogError("data_dir_failed", {{"error", st.message()}});
    return 1;
  }
  auto data_lock = DataDirLock::Acquire(config.data_dir);
  if (!data_lock.ok()) {
    core::LogError("data_dir_locked", {{"error", data_lock.status().message()}});
    return 1;
  }
  const bool auto_tls = config.tls_auto && config.tls_cert.empty();
  if (auto_tls) {
    if (!EnsureAutoTls(config)) return 1;
    config.tls_cert = TlsDir(config.data_dir) + "/server.pem";
    config.tls_key = TlsDir(config.data_dir) + "/server.key";
  }

  core::MetricsRegistry metrics;
  journal::JournalOptions jopts;
  jopts.path = config.data_dir + "/journal.db";
  jopts.store_id = config.store_id;
  jopts.clock_skew_bound_ms = config.clock_skew_bound_s * 1000;
  jopts.max_group = config.max_group;
  jopts.group_commit = config.group_commit;
  jopts.cash_requires_open_drawer = config.drawer_required;
  jopts.offline.enabled = config.offline_enabled;
  jopts.offline.card_max_amount = config.offline_card_max_amount;
  jopts.offline.terminal_max_outstanding = config.offline_terminal_max_outstanding;
  jopts.offline.store_max_outstanding = config.offline_store_max_outstanding;
  jopts.metrics = &metrics;
  // 500 ms: with 1 KiB pages it halves the bytes written per sale against 100 ms and
  // 4 KiB pages, with the same p50/p99 at 1, 8 and 64 terminals (docs/BENCHMARKS.md,
  // "SD-card wear"); docs/JOURNAL.md has the commit-stall measurement.
  jopts.checkpoint_interval_ms = 500;
  // ... but only once 4 MiB of WAL (by default) or 5 minutes piled up: at a store's real
  // rate that halves the bytes written per sale; under load nothing changes (BENCHMARKS).
  jopts.checkpoint_min_wal_bytes = config.checkpoint_wal_kb * 1024;
  jopts.checkpoint_max_age_ms = config.checkpoint_max_age_s * 1000;
  // Entries committed while the kernel reports its clock unsynchronized are marked
  // clock_untrusted when the configuration asks for a synchronized clock (held entries
  // are marked by the journal itself): docs/JOURNAL.md.
  if (config.clock_require_sync) {
    jopts.clock_untrusted = [] { return core::KernelClockSynchronized() == false; };
  }
  auto journal = journal::SqliteJournal::Open(jopts);
  if (!journal.ok()) {
    core::LogError("journal_open_failed",
                   {{"path", jopts.path}, {"error", journal.status().message()}});
    // kInvalidArgument: the configuration does not fit the journal (another store_id).
    return journal.status().code() == ErrorCode::kInvalidArgument ? 2 : 1;
  }

  // Tokens: configuration first, then the tokens file; both are hashes only.
  http::ApiOptions api_options;
  api_options.store_id = config.store_id;
  api_options.rate_per_terminal = config.rate_per_terminal;
  api_options.rate_burst = config.rate_burst;
  api_options.metrics_public = config.metrics_public;
  api_options.offline_max_age_ms = int64_t{config.offline_max_age_h} * 3600 * 1000;
  if (!config.drawer_close_time.empty()) {
    api_options.drawer_close_minute = core::ParseTimeOfDay(config.drawer_close_time).value_or(-1);
  }
  const std::string tokens_file = TokensFilePath(config.data_dir);
  TokensFileStamp tokens_stamp = StampOf(tokens_file);
  auto file_tokens = LoadTokensFile(tokens_file);
  if (!file_tokens.ok()) {
    core::LogError("tokens_file_invalid", {{"error", file_tokens.status().message()}});
    (*journal)->Close();
    return 2;
  }

  // Sync: S3, or the local folder standing in for it (<data_dir>/s3 by default).
  sync::SyncConfig sync_config = MakeSyncConfig(config);
#if defined(__GLIBC__)
  // A batch's rows, records and gzip state are freed in the arenas of the threads that
  // encoded it (the upload thread and its helpers), where glibc keeps the pages for
  // reuse; the next batch may come from another arena. Trimming after each batch keeps
  // one batch's worth resident instead of one per arena: peak RSS at 64 loadgen
  // terminals about 1 MB lower (docs/BENCHMARKS.md "The hot path"); a few hundred µs on
  // the upload thread once per batch.
  sync_config.after_batch = [] { malloc_trim(0); };
#endif
  // The DynamoDB sink (off by default) has its own cursor in the ledger, registered here,
  // before the uploader (which prunes) starts.
  auto dynamo = MakeDynamoWiring(config, journal->get());
  if (!dynamo.ok()) {
    core::LogError("dynamodb_config_invalid", {{"error", dynamo.status().message()}});
    (*journal)->Close();
    return 2;
  }
  auto sync_service = sync::SyncService::Create(sync_config, config.store_id, journal->get(),
                                                &metrics, &core::SystemClock());
  if (!sync_service.ok()) {
    core::LogError("sync_config_invalid", {{"error", sync_service.status().message()}});
    (*journal)->Close();
    return 2;
  }
  // The catalog gets its own store client: an S3 client runs one request at a time, and a
  // catalog download must not queue behind an upload (or the other way round).
  std::unique_ptr<cloud::CredentialsProvider> catalog_credentials;
  std::unique_ptr<cloud::ObjectStore> catalog_store;
  std::unique_ptr<catalog::CatalogFetcher> catalog;
  if ((*sync_service)->enabled()) {
    auto store = sync::OpenTarget(sync_config, &catalog_credentials);
    if (store.ok()) catalog_store = std::move(*store);
  }
  {
    catalog::CatalogFetcherOptions copts;
    copts.key = catalog::CatalogKey(config.sync_prefix, config.store_id);
    copts.db_path = config.data_dir + "/catalog.db";
    auto fetcher =
        catalog::CatalogFetcher::Open(catalog_store.get(), copts, &core::SystemClock(), &metrics);
    if (fetcher.ok()) {
      catalog = std::move(*fetcher);
    } else {
      core::LogError("catalog_open_failed", {{"error", fetcher.status().message()}});
    }
  }
  // The per-store configuration (issue #11): store.json next to the catalog, with its
  // last good copy in the data folder; its tokens and offline limits join the configured
  // ones now and whenever a new document is applied (polled with the tokens file below).
  std::unique_ptr<catalog::StoreConfigFetcher> store_config;
  {
    catalog::StoreConfigFetcherOptions sopts;
    sopts.key = catalog::StoreConfigKey(config.sync_prefix, config.store_id);
    sopts.local_path = config.data_dir + "/store-config.json";
    auto fetcher = catalog::StoreConfigFetcher::Open(catalog_store.get(), sopts,
                                                     &core::SystemClock(), &metrics);
    if (fetcher.ok()) {
      store_config = std::move(*fetcher);
    } else {
      core::LogError("store_config_open_failed", {{"error", fetcher.status().message()}});
    }
  }
  std::vector<TokenEntry> file_token_entries = std::move(*file_tokens);
  int64_t store_config_generation = -1;
  // Hands the journal its offline limits (the configuration's, overridden by the store
  // configuration's) and returns the API's tokens (configuration, tokens file, store
  // configuration); remembers which store configuration it applied.
  auto apply_store_config = [&]() {
    std::shared_ptr<const catalog::StoreConfig> sc;
    if (store_config) {
      store_config_generation = store_config->generation();
      sc = store_config->Snapshot();
    }
    journal::OfflineLimits limits = jopts.offline;
    if (sc != nullptr) {
      const catalog::StoreOfflineOverrides& o = sc->offline;
      if (o.enabled) limits.enabled = *o.enabled;
      if (o.card_max_amount) limits.card_max_amount = *o.card_max_amount;
      if (o.terminal_max_outstanding) limits.terminal_max_outstanding = *o.terminal_max_outstanding;
      if (o.store_max_outstanding) limits.store_max_outstanding = *o.store_max_outstanding;
    }
    if (Status st = (*journal)->SetOfflineLimits(limits); !st.ok()) {
      core::LogError("offline_limits_invalid", {{"error", st.message()}});
    }
    return StoreTokens(ApiTokens(config, file_token_entries), sc.get());
  };
  api_options.tokens = apply_store_config();

  // The demo token lives only in memory until the server listens: were it stored first and
  // the bind then failed, the next start would find a token nobody was ever shown.
  std::string demo_token;
  if (api_options.tokens.empty() && config.demo_token) {
    auto token = GenerateToken();
    if (!token.ok()) {
      core::LogError("demo_token_failed", {{"error", token.status().message()}});
      (*journal)->Close();
      return 1;
    }
    demo_token = *token;
    api_options.tokens.push_back({"T01", HashTokenHex(demo_token), 0, http::Role::kManager});
  }
  if (api_options.tokens.empty()) {
    core::LogWarn("no_terminal_tokens", {{"hint",
                                          "every sale will be refused with 401; create tokens with "
                                          "`machub token create`"}});
  }
  core::LogInfo("tokens_loaded", {{"terminals", api_options.tokens.size()}});

  http::StatusProviders providers;
  sync::SyncService* sync_ptr = sync_service->get();
  sync::DynamoSink* dynamo_sink = *dynamo ? (*dynamo)->sink.get() : nullptr;
  providers.cloud = [sync_ptr, dynamo_sink] {
    nlohmann::json cloud = sync_ptr->CloudStatusJson();
    if (dynamo_sink == nullptr) return cloud;
    // The S3 state as before, plus a "dynamodb" member with the second sink's progress.
    const sync::DynamoSinkStatus d = dynamo_sink->CurrentStatus();  // backlog exact now
    cloud["dynamodb"] = {{"state", d.state},
                         {"cursor", d.cursor},
                         {"last_seq", d.last_seq},
                         {"backlog", d.backlog()},
                         {"written", d.written},
                         {"replayed", d.replayed},
                         {"throttled", d.throttled},
                         {"retryable_errors", d.retryable_errors},
                         {"unprocessed", d.unprocessed},
                         {"oversized", d.oversized},
                         {"last_success_ms", d.last_success_ms},
                         {"stores_updated_ms", d.stores_updated_ms},
                         {"last_error", d.last_error}};
    return cloud;
  };
  providers.backlog = [sync_ptr] { return sync_ptr->BacklogJson(); };
  // The alerts of uploads, backlog and disk (docs/OPERATIONS.md); the API adds the
  // offline ones and keeps each alert's since-time.
  journal::SqliteJournal* journal_ptr = journal->get();
  const int64_t min_free_disk = config.sync_min_free_disk_mb << 20;
  const int64_t serve_start_ms = core::SystemClock().NowMs();
  // The hub's clock (issue #11): the kernel's sync flag, the journal's newest entry, the
  // S3 endpoint's clock.
  const bool require_sync = config.clock_require_sync;
  const int64_t skew_bound_ms = config.clock_skew_bound_s * 1000;
  auto clock_inputs = [sync_ptr, journal_ptr, require_sync, skew_bound_ms] {
    http::ClockInputs c;
    c.kernel_synchronized = core::KernelClockSynchronized();
    c.require_sync = require_sync;
    c.newest_received_at_ms = journal_ptr->newest_received_at_ms();
    c.held_entries = journal_ptr->clock_held();
    c.cloud_offset_ms = sync_ptr->CloudClockOffsetMs();
    c.skew_bound_ms = skew_bound_ms;
    c.now_ms = core::SystemClock().NowMs();
    return c;
  };
  providers.clock = [clock_inputs] { return http::ClockStatusJson(clock_inputs()); };
  providers.alerts = [sync_ptr, journal_ptr, min_free_disk, serve_start_ms, clock_inputs] {
    http::ServiceAlertInputs in;
    in.cloud_json = sync_ptr->CloudStatusJson();
    in.backlog_json = sync_ptr->BacklogJson();
    Result<journal::JournalStats> stats = journal_ptr->Stats();
    if (stats.ok()) in.free_disk_bytes = stats->free_disk_bytes;
    in.min_free_disk_bytes = min_free_disk;
    in.started_at_ms = serve_start_ms;
    in.now_ms = core::SystemClock().NowMs();
    in.clock = clock_inputs();
    return http::ServiceAlertsJson(in);
  };
  if (catalog) {
    catalog::CatalogFetcher* c = catalog.get();
    providers.catalog = [c] { return c->StatusJson(); };
    providers.catalog_body = [c]() -> std::optional<std::pair<std::string, std::string>> {
      auto view = c->Snapshot();
      if (!view) return std::nullopt;
      return std::make_pair(view->etag, view->body);
    };
    providers.product = [c](const std::string& sku) { return c->Product(sku); };
  }
  if (store_config) {
    catalog::StoreConfigFetcher* sc = store_config.get();
    providers.store_config = [sc] { return sc->StatusJson(); };
  }

  http::ApiHandler api(api_options, journal->get(), &metrics, &core::SystemClock(), providers);

  http::ServerOptions sopts;
  sopts.address = config.listen_host;
  sopts.port = config.listen_port;
  sopts.threads = config.threads;
  sopts.body_limit = static_cast<size_t>(config.body_limit_bytes);
  sopts.header_limit = static_cast<size_t>(config.header_limit_bytes);
  sopts.read_timeout_ms = config.read_timeout_ms;
  sopts.write_timeout_ms = config.write_timeout_ms;
  sopts.idle_timeout_ms = config.idle_timeout_ms;
  sopts.max_connections = config.max_connections;
  sopts.tls_cert_file = config.tls_cert;
  sopts.tls_key_file = config.tls_key;
  sopts.tls_client_ca_file = config.tls_client_ca;
  sopts.tls_reload_check_ms = config.tls_reload_s * 1000;
  sopts.first_request_timeout_ms = config.first_request_timeout_ms;
  sopts.max_connections_per_address = config.max_connections_per_address;
  sopts.reserved_connections = config.reserved_connections;
  sopts.header_check = [&api](const http::Request& header) { return api.CheckHeader(header); };
  sopts.on_early_answer = [&api](int status) { api.CountServerAnswer(status); };
  sopts.on_refused = [&metrics](std::string_view reason) {
    metrics
        .GetCounter("machub_http_connections_refused_total",
                    "Connections refused at accept, by reason (max_connections, per_address, "
                    "anonymous)",
                    {{"reason", std::string(reason)}})
        .Inc();
  };
  auto server = http::Server::Start(sopts, [&api](http::Request&& request, http::Respond respond) {
    api.Handle(std::move(request), std::move(respond));
  });
  if (!server.ok()) {
    core::LogError("listen_failed",
                   {{"address", config.listen}, {"error", server.status().message()}});
    (*journal)->Close();
    return server.status().code() == ErrorCode::kInvalidArgument ? 2 : 1;
  }
  http::Server* server_ptr = server->get();
  api.SetConnectionsSource([server_ptr] { return server_ptr->connections(); });
  const uint16_t port = (*server)->port();
  core::LogInfo(
      "listening",
      {{"address", config.listen_host}, {"port", port}, {"tls", !config.tls_cert.empty()}});
  if (!demo_token.empty()) {
    if (Status st =
            AppendTokens(tokens_file, {{"T01", HashTokenHex(demo_token), 0, http::Role::kManager}});
        !st.ok()) {
      core::LogError("demo_token_failed", {{"error", st.message()}});
      (*server)->Stop(0);
      api.SetConnectionsSource({});
      (*journal)->Close();
      return 1;
    }
    core::LogInfo("demo_token_created", {{"terminal_id", "T01"}, {"tokens_file", tokens_file}});
    PrintDemoBlock(config, port, demo_token, tokens_file);
    demo_token.assign(demo_token.size(), '\0');
  }
  if (!config.ready_file.empty()) {
    if (Status st = WriteReadyFile(config.ready_file, port); !st.ok()) {
      core::LogError("ready_file_failed", {{"error", st.message()}});
      (*server)->Stop(0);
      api.SetConnectionsSource({});
      (*journal)->Close();
      return 1;
    }
  }

  (*sync_service)->Start();
  if (*dynamo) {
    AttachStoreAttributes(dynamo->get(), sync_ptr, journal->get(),
                          [&api] { return api.RaisedAlertCodes(); });
    (*dynamo)->sink->Start();
  }
  if (catalog && catalog_store && config.sync_catalog_interval_s > 0) {
    if (Status st = catalog->Start(config.sync_catalog_interval_s * 1000); !st.ok()) {
      core::LogError("catalog_start_failed", {{"error", st.message()}});
    }
  }
  if (store_config && catalog_store && config.sync_catalog_interval_s > 0) {
    if (Status st = store_config->Start(config.sync_catalog_interval_s * 1000); !st.ok()) {
      core::LogError("store_config_start_failed", {{"error", st.message()}});
    }
  }

  // Wait for SIGTERM/SIGINT; meanwhile pick up changes of the tokens file (a `machub
  // token create` or `token rotate` next to the running hub) and newly applied store
  // configurations without a restart.
  int sig = 0;
  const struct timespec kTokensPoll = {0, 500'000'000};
  // tls_auto: the certificate's remaining validity is checked hourly; a renewed one is
  // picked up by the server (tls_reload_s) for new connections.
  auto next_tls_check = std::chrono::steady_clock::now() + std::chrono::hours(1);
  for (;;) {
    sig = sigtimedwait(&signals, nullptr, &kTokensPoll);
    if (sig > 0) break;
    if (auto_tls && std::chrono::steady_clock::now() >= next_tls_check) {
      next_tls_check = std::chrono::steady_clock::now() + std::chrono::hours(1);
      EnsureAutoTls(config);
    }
    const TokensFileStamp stamp = StampOf(tokens_file);
    const bool file_changed = stamp != tokens_stamp;
    const bool config_changed =
        store_config && store_config->generation() != store_config_generation;
    if (!file_changed && !config_changed) continue;
    if (file_changed) {
      tokens_stamp = stamp;
      auto reloaded = LoadTokensFile(tokens_file);
      if (reloaded.ok()) {
        file_token_entries = std::move(*reloaded);
      } else {
        // Keep serving with the tokens we have; the operator fixes the file.
        core::LogError("tokens_file_invalid", {{"error", reloaded.status().message()}});
        if (!config_changed) continue;
      }
    }
    std::vector<http::TerminalToken> tokens = apply_store_config();
    core::LogInfo("tokens_reloaded", {{"tokens", tokens.size()}});
    api.SetTokens(std::move(tokens));
  }
  core::LogInfo("stopping", {{"signal", SignalName(sig)}, {"drain_ms", config.drain_timeout_ms}});
  (*server)->Stop(config.drain_timeout_ms);
  api.SetConnectionsSource({});
  if (catalog) catalog->Stop();
  if (store_config) store_config->Stop();
  (*sync_service)->Stop();  // before the journal closes: the uploader writes through it
  dynamo->reset();          // stops the DynamoDB sink (a request in flight is cancelled)
  (*journal)->Close();
  if (!config.ready_file.empty()) ::unlink(config.ready_file.c_str());
  core::LogInfo("stopped");
  return 0;
}

}  // namespace machub::app
