#pragma once
// The hub's configuration: one table of keys, four sources.
//
// Sources, in increasing precedence (a later source replaces a value, lists included):
//   1. built-in defaults (the member initializers of Config),
//   2. a TOML file: `--config FILE`, else the environment variable MACHUB_CONFIG,
//   3. environment variables MACHUB_<KEY> (upper-cased, '.' -> '_'),
//   4. command-line flags --<key> ('_' and '.' -> '-').
// Every key has all four forms, because a Greengrass recipe passes its configuration on
// the command line and a systemd unit through a file or the environment.
//
// Values arriving as text (environment, flags, and TOML strings) are converted to the
// key's type: integers accept "8080", "8080.0" and "1.0E7" when exactly integral (the
// Greengrass nucleus hands numbers back as strings or floats); booleans accept
// true/false/1/0/yes/no in any case; lists accept comma-separated items or a JSON array
// of strings (what `{configuration:/Key}` renders for an array); a list flag may also be
// repeated. A boolean flag given without a value means true.
//
// Errors: kInvalidArgument, message "<key>: <problem> (from <source>)", where source is
// "--flag", "MACHUB_VAR" or "config file PATH" — e.g.
// "listen: port 70000 out of range (from --listen)". Unknown TOML keys, wrong TOML types,
// out-of-range numbers, malformed token entries and tls_cert without tls_key are errors.
//
// Adding a key: a member in Config and one line in the table in config_keys.cc; flags,
// environment, TOML, `machub config keys` and `machub config show` follow from the table.
//
// Thread-safety: all functions are reentrant; ConfigKeys() is built once, thread-safely.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "app/tokens.h"
#include "core/status.h"

namespace machub::app {

struct Config {
  std::string store_id = "S001";
  std::string data_dir = "./machub-data";
  std::string listen = "127.0.0.1:8080";
  int threads = 2;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;  // mutual TLS: PEM CA of the terminals' client certificates
  bool tls_auto = false;      // no tls_cert: issue <data_dir>/tls/server.pem (machub tls init)
  std::string tls_hosts;      // tls_auto: comma-separated names/IPs; empty: host name etc.
  int64_t tls_reload_s = 60;  // how often tls_cert/tls_key are checked for renewal; 0: never
  int64_t body_limit_bytes = 256 * 1024;
  int64_t header_limit_bytes = 16 * 1024;
  int64_t read_timeout_ms = 15'000;
  int64_t write_timeout_ms = 15'000;
  int64_t idle_timeout_ms = 120'000;
  int64_t drain_timeout_ms = 5'000;
  int max_connections = 2048;
  int64_t first_request_timeout_ms = 5'000;
  int max_connections_per_address = 64;
  int reserved_connections = 64;
  double rate_per_terminal = 50.0;
  double rate_burst = 100.0;
  int64_t clock_skew_bound_s = 300;
  int max_group = 512;
  bool group_commit = true;
  int64_t checkpoint_wal_kb = 4096;
  int64_t checkpoint_max_age_s = 300;
  std::vector<TokenEntry> terminal_tokens;
  std::vector<TokenEntry> manager_tokens;  // role manager (TokenEntry::manager set)
  bool metrics_public = false;
  std::string log_level = "info";
  std::string ready_file;
  bool demo_token = true;
  // The store's day (docs/API.md): refuse cash on a terminal whose drawer is not open.
  bool drawer_required = false;
  // "HH:MM" local time after which a drawer still open raises drawer_open_past_close;
  // empty: no such alert.
  std::string drawer_close_time;
  // Trust the clock only once the kernel says it is synchronized (clock_untrusted alert
  // otherwise). Off by default: some hosts never clear the kernel's unsync flag.
  bool clock_require_sync = false;
  // Offline card payments (issue #9): table [offline]; mirrors journal::OfflineLimits
  // (amounts as decimal strings, empty = no limit) and the overdue-alert age.
  bool offline_enabled = true;
  std::string offline_card_max_amount;
  std::string offline_terminal_max_outstanding;
  std::string offline_store_max_outstanding;
  int offline_max_age_h = 24;

  // Sync to S3 (or a local folder standing in for it) and the catalog: table [sync].
  // Mirrors sync::SyncConfig (src/sync/service.h), which documents each field.
  bool sync_enabled = true;
  std::string sync_bucket;
  std::string sync_endpoint;
  std::string sync_region = "us-east-1";
  std::string sync_addressing = "auto";
  std::string sync_dir;  // empty with no bucket: <data_dir>/s3
  std::string sync_prefix;
  std::string sync_ca_file;
  std::string sync_access_key_id;
  std::string sync_secret_access_key;
  std::string sync_session_token;
  std::string sync_format = "jsonl";
  int64_t sync_gzip_level = 1;
  int64_t sync_batch_max_sales = 5000;
  int64_t sync_batch_max_bytes = 8LL << 20;
  int64_t sync_batch_max_age_s = 60;
  std::string sync_conditional_put = "auto";
  int64_t sync_bandwidth_limit_bytes_per_s = 0;
  int64_t sync_probe_interval_ms = 2000;
  int64_t sync_backoff_cap_ms = 60000;
  int64_t sync_degraded_retry_s = 60;
  int64_t sync_request_timeout_ms = 120000;
  int64_t sync_retention_days = 30;
  int64_t sync_min_free_disk_mb = 256;
  int64_t sync_min_free_disk_percent = 5;
  int64_t sync_catalog_interval_s = 300;
  // The DynamoDB sink (docs/DYNAMODB.md): table [sync.dynamodb]; off by default. Uses the
  // same credentials as S3 (sync.access_key_id ... or the default chain).
  bool dynamodb_enabled = false;
  std::string dynamodb_endpoint;  // empty: AWS for dynamodb.region
  std::string dynamodb_region = "us-east-1";
  std::string dynamodb_sales_table = "machub-sales";
  std::string dynamodb_stores_table = "machub-stores";
  int64_t dynamodb_stores_interval_s = 60;
  int64_t dynamodb_request_timeout_ms = 30000;

  // Derived from `listen` (kept in step by LoadConfig): the IP literal without brackets
  // ("::1") and the port (0: any free port).
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;

  // Where each key's effective value came from: "--listen", "MACHUB_LISTEN",
  // "config file /etc/machub.toml"; keys left at their default are absent.
  std::map<std::string, std::string> sources;
};

enum class KeyType { kString, kInt, kFloat, kBool, kStringList };
// "string" | "integer" | "float" | "boolean" | "list of strings"
std::string_view KeyTypeName(KeyType type);

// A value converted to its key's type: kString -> std::string, kInt -> int64_t,
// kFloat -> double, kBool -> bool, kStringList -> std::vector<std::string>.
using ConfigValue = std::variant<std::string, int64_t, double, bool, std::vector<std::string>>;

struct ConfigKey {
  std::string name;  // snake_case TOML key; a '.' means a nested table ("sync.bucket")
  KeyType type = KeyType::kString;
  std::string help;
  bool secret = false;  // `config show` prints "<redacted>" instead of the value
  // Validates a converted value and stores it. The message names neither the key nor the
  // source (the loader adds both).
  std::function<Status(Config&, const ConfigValue&)> set;
  // The current value, for `config show` and the defaults column of `config keys`.
  std::function<ConfigValue(const Config&)> get;

  std::string FlagName() const;  // "--body-limit-bytes"
  std::string EnvName() const;   // "MACHUB_BODY_LIMIT_BYTES"
};

// All keys, in documentation order.
const std::vector<ConfigKey>& ConfigKeys();
// Null when unknown.
const ConfigKey* FindConfigKey(std::string_view name);

struct ConfigInputs {
  // --config; when empty, the environment variable MACHUB_CONFIG; when empty too, no file.
  // A named file that cannot be read is an error.
  std::string config_file;
  // Environment lookup; null means the process environment (getenv).
  std::function<std::optional<std::string>(const std::string& name)> getenv;
  // Command-line values as (snake_case key, raw text); the order matters only among the
  // values of one key. Scalar keys: the last occurrence wins. List keys: the items of all
  // occurrences, in order. A boolean key with the text "" (flag given without a value) means true.
  std::vector<std::pair<std::string, std::string>> flags;
};

// Merges defaults < file < environment < flags and validates the result.
Result<Config> LoadConfig(const ConfigInputs& inputs);

// "host:port" or "[v6]:port" -> (IP literal without brackets, port). Port 0..65535.
// kInvalidArgument with a message without key/source.
Result<std::pair<std::string, uint16_t>> ParseHostPort(std::string_view text);

// Text -> integer, accepting "12", "-3", "8080.0", "1.0E7" when exactly integral.
Result<int64_t> ParseIntegerText(std::string_view text);
// true/false/1/0/yes/no, case-insensitive.
Result<bool> ParseBoolText(std::string_view text);

// The key table as a Markdown table (key, flag, environment, type, default, description).
std::string ConfigKeysMarkdown();
// The effective configuration as TOML, one `key = value` per key in table order, with a
// comment naming the source of each non-default value. Secret keys are redacted; terminal
// tokens are hashes, which are not secret.
std::string ConfigToToml(const Config& config);

}  // namespace machub::app
