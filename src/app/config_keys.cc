// The one table of configuration keys (BuildKeys: name, type, default, help, parse and
// print for each of ~70 keys), built from small factories so that a key is one entry, and
// its lookups (config.h ConfigKeys, FindConfigKey). Loading is in config.cc.

#include <sstream>

#include "app/config.h"
#include "app/config_internal.h"
#include "core/log.h"
#include "core/money.h"
#include "core/time_format.h"

namespace machub::app {
namespace {

using config_internal::CheckStoreId;
using config_internal::Invalid;
using config_internal::Quote;

// --- Key factories. Each takes a member pointer so that a key is one line in the table. ---

template <typename T>
ConfigKey IntKey(std::string name, T Config::*member, int64_t lo, int64_t hi, std::string help) {
  ConfigKey key;
  key.name = std::move(name);
  key.type = KeyType::kInt;
  key.help = std::move(help);
  key.set = [member, lo, hi](Config& c, const ConfigValue& v) -> Status {
    int64_t x = std::get<int64_t>(v);
    if (x < lo || x > hi) {
      return Invalid(std::to_string(x) + " out of range " + std::to_string(lo) + ".." +
                     std::to_string(hi));
    }
    c.*member = static_cast<T>(x);
    return Status::Ok();
  };
  key.get = [member](const Config& c) -> ConfigValue { return static_cast<int64_t>(c.*member); };
  return key;
}

ConfigKey FloatKey(std::string name, double Config::*member, double lo, double hi,
                   std::string help) {
  ConfigKey key;
  key.name = std::move(name);
  key.type = KeyType::kFloat;
  key.help = std::move(help);
  key.set = [member, lo, hi](Config& c, const ConfigValue& v) -> Status {
    double x = std::get<double>(v);
    if (!(x >= lo && x <= hi)) {  // also rejects NaN
      std::ostringstream msg;
      msg << x << " out of range " << lo << ".." << hi;
      return Invalid(msg.str());
    }
    c.*member = x;
    return Status::Ok();
  };
  key.get = [member](const Config& c) -> ConfigValue { return c.*member; };
  return key;
}

ConfigKey BoolKey(std::string name, bool Config::*member, std::string help) {
  ConfigKey key;
  key.name = std::move(name);
  key.type = KeyType::kBool;
  key.help = std::move(help);
  key.set = [member](Config& c, const ConfigValue& v) -> Status {
    c.*member = std::get<bool>(v);
    return Status::Ok();
  };
  key.get = [member](const Config& c) -> ConfigValue { return c.*member; };
  return key;
}

using StringCheck = std::function<Status(std::string_view)>;

ConfigKey StringKey(std::string name, std::string Config::*member, std::string help,
                    const StringCheck& check = nullptr) {
  ConfigKey key;
  key.name = std::move(name);
  key.type = KeyType::kString;
  key.help = std::move(help);
  key.set = [member, check](Config& c, const ConfigValue& v) -> Status {
    const std::string& s = std::get<std::string>(v);
    if (check) RETURN_IF_ERROR(check(s));
    c.*member = s;
    return Status::Ok();
  };
  key.get = [member](const Config& c) -> ConfigValue { return c.*member; };
  return key;
}

ConfigKey SecretKey(ConfigKey key) {
  key.secret = true;
  return key;
}

Status CheckNonEmpty(std::string_view s) {
  if (s.empty()) return Invalid("must not be empty");
  return Status::Ok();
}

Status CheckLogLevel(std::string_view s) {
  core::LogLevel level;
  if (!core::ParseLogLevel(s, &level)) {
    return Invalid(Quote(s) + " is not one of debug, info, warn, error");
  }
  return Status::Ok();
}

// An offline limit: empty, or a non-negative decimal with at most 3 decimals.
Status CheckTimeOfDay(std::string_view s) {
  if (s.empty()) return Status::Ok();
  if (!core::ParseTimeOfDay(s).ok()) {
    return Invalid(Quote(s) + " is not a time of day: \"HH:MM\" on a 24-hour clock such as " +
                   "\"22:00\", or empty for none");
  }
  return Status::Ok();
}

Status CheckOfflineAmount(std::string_view s) {
  if (s.empty()) return Status::Ok();
  if (!core::ParseDecimal(s, 3).ok()) {
    return Invalid(Quote(s) +
                   " is not an amount: a decimal with at most 3 decimals such as \"500.00\", "
                   "or empty for no limit");
  }
  return Status::Ok();
}

ConfigKey ListenKey() {
  ConfigKey key;
  key.name = "listen";
  key.type = KeyType::kString;
  key.help =
      "Address and port to listen on, HOST:PORT with an IP literal (\"0.0.0.0:8080\" for "
      "the store LAN, \"[::]:8080\" for IPv6); port 0 picks a free port";
  key.set = [](Config& c, const ConfigValue& v) -> Status {
    const std::string& s = std::get<std::string>(v);
    ASSIGN_OR_RETURN(auto host_port, ParseHostPort(s));
    c.listen = s;
    c.listen_host = host_port.first;
    c.listen_port = host_port.second;
    return Status::Ok();
  };
  key.get = [](const Config& c) -> ConfigValue { return c.listen; };
  return key;
}

// terminal_tokens and manager_tokens: the same "ID:SHA256HEX[:EXPIRES]" form, one role each.
ConfigKey TokensKey(bool manager) {
  ConfigKey key;
  key.name = manager ? "manager_tokens" : "terminal_tokens";
  key.type = KeyType::kStringList;
  key.help = manager
                 ? "Manager tokens (role manager: may also read /v1/status, /metrics and the list "
                   "of all sales, and use the dashboard), in the form of terminal_tokens; added to "
                   "those in <data_dir>/tokens"
                 : "Terminal tokens as \"TERMINAL_ID:SHA256HEX\" (the SHA-256 of the token, from "
                   "`machub token create` or `machub token hash`), optionally \":EXPIRES_RFC3339\" "
                   "after the hash (refused from then on: rotation overlap); added to those in "
                   "<data_dir>/tokens";
  key.set = [manager](Config& c, const ConfigValue& v) -> Status {
    std::vector<TokenEntry> entries;
    const auto& items = std::get<std::vector<std::string>>(v);
    for (size_t i = 0; i < items.size(); ++i) {
      auto entry = ParseTokenSpec(items[i], manager ? http::Role::kManager : http::Role::kTerminal);
      if (!entry.ok()) {
        return Invalid("item " + std::to_string(i + 1) + ": " + entry.status().message());
      }
      entries.push_back(std::move(entry).value());
    }
    (manager ? c.manager_tokens : c.terminal_tokens) = std::move(entries);
    return Status::Ok();
  };
  key.get = [manager](const Config& c) -> ConfigValue {
    std::vector<std::string> out;
    for (const TokenEntry& e : manager ? c.manager_tokens : c.terminal_tokens) {
      out.push_back(TokenSpec(e));
    }
    return out;
  };
  return key;
}

std::vector<ConfigKey> BuildKeys() {
  constexpr int64_t kHour = 3'600'000;
  std::vector<ConfigKey> keys;
  keys.push_back(StringKey("store_id", &Config::store_id,
                           "Store identifier; seeds the journal's hash chain and names S3 keys",
                           CheckStoreId));
  keys.push_back(StringKey("data_dir", &Config::data_dir,
                           "Folder for the journal and the tokens file (created with mode 0700)",
                           CheckNonEmpty));
  keys.push_back(ListenKey());
  keys.push_back(IntKey("threads", &Config::threads, 1, 64, "HTTP I/O threads"));
  keys.push_back(StringKey("tls_cert", &Config::tls_cert,
                           "PEM certificate chain file; with tls_key, the API is served over "
                           "HTTPS only"));
  keys.push_back(StringKey("tls_key", &Config::tls_key, "PEM private key file for tls_cert"));
  keys.push_back(StringKey("tls_client_ca", &Config::tls_client_ca,
                           "PEM CA file; when set (with tls_cert), every client must present a "
                           "certificate signed by it, and a terminal's token is accepted only "
                           "with a certificate whose subject CN or a DNS/URI SAN is its "
                           "terminal id (else 403)"));
  keys.push_back(BoolKey("tls_auto", &Config::tls_auto,
                         "Without tls_cert: serve HTTPS with <data_dir>/tls/server.pem, issued "
                         "by a store CA kept in <data_dir>/tls (as machub tls init does) and "
                         "renewed 30 days before it expires; terminals trust tls/ca.pem"));
  keys.push_back(StringKey("tls_hosts", &Config::tls_hosts,
                           "tls_auto: comma-separated host names and IP addresses for the "
                           "certificate; empty: the host name, NAME.local, localhost, "
                           "loopback and a specific listen address"));
  keys.push_back(IntKey("tls_reload_s", &Config::tls_reload_s, 0, 86400,
                        "How often (seconds, on a new connection) tls_cert and tls_key are "
                        "checked; a renewed pair is used for new connections without a "
                        "restart. 0: read once at start"));
  keys.push_back(IntKey("body_limit_bytes", &Config::body_limit_bytes, 1024, 64 << 20,
                        "Largest request body; larger gets 413 payload_too_large"));
  keys.push_back(IntKey("header_limit_bytes", &Config::header_limit_bytes, 1024, 1 << 20,
                        "Largest request header block; larger gets 431"));
  keys.push_back(IntKey("read_timeout_ms", &Config::read_timeout_ms, 100, kHour,
                        "Time allowed to receive one whole request"));
  keys.push_back(IntKey("write_timeout_ms", &Config::write_timeout_ms, 100, kHour,
                        "Time allowed to send one whole answer"));
  keys.push_back(IntKey("idle_timeout_ms", &Config::idle_timeout_ms, 100, 24 * kHour,
                        "A kept-alive connection without a request is closed after this"));
  keys.push_back(IntKey("drain_timeout_ms", &Config::drain_timeout_ms, 0, 10 * 60'000,
                        "On SIGTERM/SIGINT, time given to in-flight requests before closing"));
  keys.push_back(IntKey("max_connections", &Config::max_connections, 1, 1'000'000,
                        "Most simultaneous connections; more are refused"));
  keys.push_back(IntKey("first_request_timeout_ms", &Config::first_request_timeout_ms, 100, kHour,
                        "A new connection must start its first request within this"));
  keys.push_back(IntKey("max_connections_per_address", &Config::max_connections_per_address, 1,
                        1'000'000, "Most simultaneous connections from one remote address"));
  keys.push_back(IntKey("reserved_connections", &Config::reserved_connections, 0, 1'000'000,
                        "Connections kept for terminals that authenticated; connections "
                        "without an authenticated request get max_connections minus this"));
  keys.push_back(FloatKey("rate_per_terminal", &Config::rate_per_terminal, 0, 1e6,
                          "Sustained requests per second per terminal (0: unlimited); above "
                          "it 429 rate_limited"));
  keys.push_back(FloatKey("rate_burst", &Config::rate_burst, 1, 1e6,
                          "Requests a terminal may send at once above the sustained rate"));
  keys.push_back(IntKey("clock_skew_bound_s", &Config::clock_skew_bound_s, 1, 366LL * 86400,
                        "A sale whose created_at differs from the hub clock by more than this "
                        "is flagged clock_skew (still stored)"));
  keys.push_back(IntKey("max_group", &Config::max_group, 1, 100'000,
                        "Most sales committed in one journal transaction (one fsync)"));
  keys.push_back(BoolKey("group_commit", &Config::group_commit,
                         "Commit many sales per fsync; false = one transaction per sale "
                         "(benchmark baseline)"));
  keys.push_back(IntKey("checkpoint_wal_kb", &Config::checkpoint_wal_kb, 0, 1 << 20,
                        "The journal copies its WAL into the database file once the commits "
                        "since the last copy wrote this many KiB of it (0: every 500 ms), "
                        "so pages many sales change are written to the card once"));
  keys.push_back(IntKey("checkpoint_max_age_s", &Config::checkpoint_max_age_s, 1, 86400,
                        "With checkpoint_wal_kb above 0, the WAL is also copied once the oldest "
                        "commit not yet copied is this old"));
  keys.push_back(TokensKey(false));
  keys.push_back(TokensKey(true));
  keys.push_back(BoolKey("metrics_public", &Config::metrics_public,
                         "Serve /metrics without a token (to the LAN)"));
  keys.push_back(StringKey("log_level", &Config::log_level,
                           "debug, info, warn or error (JSON lines on stdout)", CheckLogLevel));
  keys.push_back(StringKey("ready_file", &Config::ready_file,
                           "When set, after listening write the bound port and a newline to "
                           "this file (atomically); removed on clean stop"));
  keys.push_back(BoolKey("demo_token", &Config::demo_token,
                         "With no token configured at all, create one for terminal T01 and "
                         "print it once with a curl example"));
  keys.push_back(BoolKey("drawer.required", &Config::drawer_required,
                         "Refuse a sale, refund or void paid (partly) in cash on a terminal "
                         "whose cash drawer is not open (409 drawer_closed); false: allow it, "
                         "its cash is reported as cash_without_drawer"));
  keys.push_back(StringKey("drawer.close_time", &Config::drawer_close_time,
                           "The store's closing time, \"HH:MM\" in the hub's local time zone: a "
                           "drawer opened before the last such time and still open raises the "
                           "alert drawer_open_past_close; empty: no such alert",
                           CheckTimeOfDay));
  keys.push_back(BoolKey("clock.require_sync", &Config::clock_require_sync,
                         "Trust the hub's clock only while the kernel reports it synchronized "
                         "(an NTP client has set it); otherwise raise clock_untrusted. Off: "
                         "only a clock behind the journal's newest entry is untrusted"));
  // [offline]: offline (store-and-forward) card payments, issue #9.
  keys.push_back(BoolKey("offline.enabled", &Config::offline_enabled,
                         "Accept card payments marked offline (taken without authorization); "
                         "false refuses them with 422 offline_limit_exceeded"));
  keys.push_back(StringKey("offline.card_max_amount", &Config::offline_card_max_amount,
                           "Largest single offline card payment, a decimal amount in the "
                           "sale's currency such as \"150.00\"; empty: no limit",
                           CheckOfflineAmount));
  keys.push_back(StringKey("offline.terminal_max_outstanding",
                           &Config::offline_terminal_max_outstanding,
                           "Most money in outstanding offline card payments per terminal "
                           "(decimal); empty: no limit",
                           CheckOfflineAmount));
  keys.push_back(StringKey("offline.store_max_outstanding", &Config::offline_store_max_outstanding,
                           "Most money in outstanding offline card payments in the whole store "
                           "(decimal); empty: no limit",
                           CheckOfflineAmount));
  keys.push_back(IntKey("offline.max_age_h", &Config::offline_max_age_h, 1, 24 * 366,
                        "An offline card payment without an outcome for longer than this "
                        "(hours) raises the alert offline_payment_overdue"));
  // [sync]: uploads to S3 (or a local folder standing in for it) and the catalog download.
  keys.push_back(
      BoolKey("sync.enabled", &Config::sync_enabled,
              "Upload the journal (false: keep everything local, backlog still reported)"));
  keys.push_back(StringKey("sync.bucket", &Config::sync_bucket,
                           "S3 bucket; empty: upload to the local folder sync.dir instead"));
  keys.push_back(StringKey("sync.endpoint", &Config::sync_endpoint,
                           "S3 endpoint URL for S3-compatible stores; empty: AWS for sync.region"));
  keys.push_back(StringKey("sync.region", &Config::sync_region, "AWS region of the bucket"));
  keys.push_back(StringKey("sync.addressing", &Config::sync_addressing,
                           "auto, path or virtual (bucket in the host name)"));
  keys.push_back(
      StringKey("sync.dir", &Config::sync_dir,
                "Local folder standing in for S3 when no bucket is set; empty: <data_dir>/s3"));
  keys.push_back(StringKey("sync.prefix", &Config::sync_prefix,
                           "Key prefix: <prefix>/sales/store=<store_id>/... (may be empty)"));
  keys.push_back(StringKey("sync.ca_file", &Config::sync_ca_file,
                           "PEM CA bundle for https endpoints; empty: the system's"));
  keys.push_back(StringKey("sync.access_key_id", &Config::sync_access_key_id,
                           "Explicit AWS access key id; empty: environment, shared files, or "
                           "container (Greengrass TES) credentials"));
  keys.push_back(SecretKey(StringKey("sync.secret_access_key", &Config::sync_secret_access_key,
                                     "Explicit AWS secret access key (never logged)")));
  keys.push_back(SecretKey(StringKey("sync.session_token", &Config::sync_session_token,
                                     "Explicit AWS session token (never logged)")));
  keys.push_back(StringKey("sync.format", &Config::sync_format, "Object format: jsonl or csv"));
  keys.push_back(
      IntKey("sync.gzip_level", &Config::sync_gzip_level, 1, 9, "gzip level of uploaded objects"));
  keys.push_back(IntKey("sync.batch_max_sales", &Config::sync_batch_max_sales, 1, 1'000'000,
                        "Most sales in one S3 object"));
  keys.push_back(IntKey("sync.batch_max_bytes", &Config::sync_batch_max_bytes, 1024, 15LL << 20,
                        "Most raw (uncompressed) bytes in one S3 object"));
  keys.push_back(IntKey("sync.batch_max_age_s", &Config::sync_batch_max_age_s, 0, 86400,
                        "A batch is cut when its oldest sale is this old"));
  keys.push_back(
      StringKey("sync.conditional_put", &Config::sync_conditional_put,
                "auto, on or off: whether the store honours If-None-Match (off: HEAD before PUT)"));
  keys.push_back(IntKey("sync.bandwidth_limit_bytes_per_s",
                        &Config::sync_bandwidth_limit_bytes_per_s, 0, 1LL << 40,
                        "Upload bandwidth cap (0: none)"));
  keys.push_back(IntKey("sync.probe_interval_ms", &Config::sync_probe_interval_ms, 100, 60'000,
                        "While offline or stalled, how often a cheap probe checks the store"));
  keys.push_back(IntKey("sync.backoff_cap_ms", &Config::sync_backoff_cap_ms, 100, kHour,
                        "Cap of the exponential backoff (full jitter) between failed uploads"));
  keys.push_back(IntKey("sync.degraded_retry_s", &Config::sync_degraded_retry_s, 1, 86400,
                        "Retry period after a non-retryable error (auth, configuration)"));
  keys.push_back(IntKey("sync.request_timeout_ms", &Config::sync_request_timeout_ms, 1000, kHour,
                        "Longest one S3 request may take"));
  keys.push_back(IntKey(
      "sync.retention_days", &Config::sync_retention_days, 0, 3650,
      "Uploaded sales older than this are pruned (0: keep forever); unsynced sales never are"));
  keys.push_back(
      IntKey("sync.min_free_disk_mb", &Config::sync_min_free_disk_mb, 0, 1LL << 30,
             "Below this much free disk, uploaded sales are pruned first, whatever their age"));
  keys.push_back(IntKey("sync.min_free_disk_percent", &Config::sync_min_free_disk_percent, 0, 90,
                        "Same, as a percentage of the filesystem"));
  keys.push_back(
      IntKey("sync.catalog_interval_s", &Config::sync_catalog_interval_s, 0, 86400,
             "How often the catalog and the store configuration (store.json) are fetched "
             "(conditional GET); 0: never, use the local copies"));
  // [sync.dynamodb]: the second sink (docs/DYNAMODB.md).
  keys.push_back(
      BoolKey("sync.dynamodb.enabled", &Config::dynamodb_enabled,
              "Also copy every journal entry into DynamoDB (own progress, independent of S3)"));
  keys.push_back(StringKey("sync.dynamodb.endpoint", &Config::dynamodb_endpoint,
                           "DynamoDB endpoint URL; empty: AWS for sync.dynamodb.region"));
  keys.push_back(StringKey("sync.dynamodb.region", &Config::dynamodb_region,
                           "AWS region of the DynamoDB tables"));
  keys.push_back(StringKey("sync.dynamodb.sales_table", &Config::dynamodb_sales_table,
                           "Sales table: one item per journal entry (PK store_id, SK seq)"));
  keys.push_back(StringKey("sync.dynamodb.stores_table", &Config::dynamodb_stores_table,
                           "Stores table: one item per store, the fleet's dashboard data"));
  keys.push_back(IntKey("sync.dynamodb.stores_interval_s", &Config::dynamodb_stores_interval_s, 1,
                        86400, "The stores item is updated at most this often"));
  keys.push_back(IntKey("sync.dynamodb.request_timeout_ms", &Config::dynamodb_request_timeout_ms,
                        1000, kHour, "Longest one DynamoDB request may take"));
  return keys;
}

}  // namespace

Status config_internal::CheckStoreId(std::string_view s) {
  if (s.empty() || s.size() > 64) return Invalid("must be 1..64 characters");
  for (char c : s) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return Invalid(Quote(s) + " must match [A-Za-z0-9._-]{1,64}");
  }
  return Status::Ok();
}

const std::vector<ConfigKey>& ConfigKeys() {
  static const std::vector<ConfigKey> keys = BuildKeys();
  return keys;
}

const ConfigKey* FindConfigKey(std::string_view name) {
  for (const ConfigKey& key : ConfigKeys()) {
    if (key.name == name) return &key;
  }
  return nullptr;
}

}  // namespace machub::app
