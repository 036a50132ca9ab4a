// machub: the store hub's command line.
//
//   machub serve [--config FILE] [--<key> VALUE ...]
//   machub token create --terminal ID ... | --count N --prefix P  [--role terminal|manager]
//                       [--data-dir D] [--no-store]
//   machub token hash [TOKEN]
//   machub token rotate --terminal ID [--overlap 24h] [--data-dir D]
//   machub status [--url URL [--token T] [--cacert F] [--insecure]] [--data-dir D]
//   machub journal verify [--data-dir D] [--store-id S]
//   machub loadgen --tokens FILE --terminals N --duration S [...]
//   machub config keys | config show [--config FILE] [--<key> VALUE ...]
//   machub greengrass check RECIPE [CONFIG_UPDATE...] | greengrass render RECIPE [...]
//       (builds with MACHUB_GREENGRASS_TOOLS; elsewhere the host tool machub-greengrass)
//   machub version
//
// Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error (message on stderr).

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/config.h"
#include "app/config_cli.h"
#include "app/http_client.h"
#include "app/loadgen.h"
#include "app/serve.h"
#include "app/sync_wiring.h"
#include "app/tls_init.h"
#include "app/tokens.h"
#include "core/clock.h"
#include "core/time_format.h"
#if MACHUB_GREENGRASS_TOOLS
#include "greengrass/greengrass_check.h"
#endif
#include "journal/sqlite_journal.h"

namespace machub::app {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "machub: %s\n", message.c_str());
  return code;
}

int ExitCodeFor(const Status& st) {
  return st.code() == ErrorCode::kInvalidArgument ? kExitUsage : kExitFailure;
}

// The tool commands find the data folder (and store id) the way `serve` does: flags, then
// the environment, then the configuration file.
struct ToolFlags {
  std::string config_file;
  std::string data_dir;
  std::string store_id;

  void Register(CLI::App* app, bool with_store_id) {
    app->add_option("--config", config_file, "TOML configuration file (default: $MACHUB_CONFIG)")
        ->type_name("FILE");
    app->add_option("--data-dir", data_dir, "Data folder (default: from the configuration)")
        ->type_name("DIR");
    if (with_store_id) {
      app->add_option("--store-id", store_id, "Store id (default: from the configuration)");
    }
  }

  Result<Config> Load() const {
    ConfigInputs inputs;
    inputs.config_file = config_file;
    if (!data_dir.empty()) inputs.flags.emplace_back("data_dir", data_dir);
    if (!store_id.empty()) inputs.flags.emplace_back("store_id", store_id);
    return LoadConfig(inputs);
  }
};

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Opens the journal of an existing data folder. SqliteJournal::Open would create an empty one;
// a tool pointed at the wrong folder should say so instead.
Result<std::unique_ptr<journal::SqliteJournal>> OpenExistingJournal(const Config& config) {
  std::string path = config.data_dir + "/journal.db";
  if (!FileExists(path)) {
    return Status(ErrorCode::kInvalidArgument, "no journal at " + path + " (wrong --data-dir?)");
  }
  journal::JournalOptions options;
  options.path = path;
  options.store_id = config.store_id;
  options.clock_skew_bound_ms = config.clock_skew_bound_s * 1000;
  return journal::SqliteJournal::Open(options);
}

// --- token ---

int RunTokenCreate(const ToolFlags& tool, std::vector<std::string> terminals, int count,
                   const std::string& prefix, bool manager, bool no_store) {
  if (count > 0) {
    for (int i = 1; i <= count; ++i) {
      char num[16];
      std::snprintf(num, sizeof num, "%03d", i);
      terminals.push_back(prefix + num);
    }
  }
  if (terminals.empty()) return Fail(kExitUsage, "token create: give --terminal ID or --count N");
  for (const std::string& id : terminals) {
    if (!ValidTerminalId(id)) {
      return Fail(kExitUsage,
                  "token create: terminal id \"" + id + "\" must match [A-Za-z0-9._-]{1,32}");
    }
  }
  std::vector<std::pair<std::string, std::string>> created;  // id, token
  std::vector<TokenEntry> entries;
  for (const std::string& id : terminals) {
    auto token = GenerateToken();
    if (!token.ok()) return Fail(kExitFailure, token.status().message());
    entries.push_back(
        {id, HashTokenHex(*token), 0, manager ? http::Role::kManager : http::Role::kTerminal});
    created.emplace_back(id, *token);
  }
  std::string tokens_file;
  if (!no_store) {
    auto config = tool.Load();
    if (!config.ok()) return Fail(kExitUsage, config.status().message());
    if (Status st = EnsureDataDir(config->data_dir); !st.ok()) {
      return Fail(kExitFailure, st.message());
    }
    tokens_file = TokensFilePath(config->data_dir);
    if (Status st = AppendTokens(tokens_file, entries); !st.ok()) {
      return Fail(kExitFailure, st.message());
    }
  }
  // Tokens go to stdout only (the one time they are shown); everything else to stderr so
  // that `machub token create ... > terminals.txt` captures exactly the tokens.
  for (const auto& [id, token] : created) std::printf("%s %s\n", id.c_str(), token.c_str());
  std::fflush(stdout);
  std::string hint = "# The tokens above are shown only now; give each terminal its own.\n";
  if (!no_store) {
    hint += "# Their hashes were added to " + tokens_file +
            " (a running hub picks them up within a second).\n";
  }
  hint += manager ? "# Configuration form (manager_tokens, --manager-tokens, "
                    "MACHUB_MANAGER_TOKENS):\n"
                  : "# Configuration form (terminal_tokens, --terminal-tokens, "
                    "MACHUB_TERMINAL_TOKENS):\n";
  for (const TokenEntry& e : entries) hint += "#   " + TokenSpec(e) + "\n";
  std::fputs(hint.c_str(), stderr);
  return kExitOk;
}

int RunTokenHash(std::string token) {
  if (token.empty() || token == "-") {
    // Reading from stdin keeps the token out of the shell history and process list.
    if (!std::getline(std::cin, token)) return Fail(kExitUsage, "token hash: no token given");
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  }
  if (token.empty()) return Fail(kExitUsage, "token hash: empty token");
  std::printf("%s\n", HashTokenHex(token).c_str());
  return kExitOk;
}

// A new token for the terminal; its current tokens in the tokens file stay valid for
// `overlap` and are refused afterwards (the running hub re-reads the file by itself).
int RunTokenRotate(const ToolFlags& tool, const std::string& terminal, const std::string& overlap) {
  if (!ValidTerminalId(terminal)) {
    return Fail(kExitUsage,
                "token rotate: terminal id \"" + terminal + "\" must match [A-Za-z0-9._-]{1,32}");
  }
  auto overlap_ms = ParseDurationMs(overlap);
  if (!overlap_ms.ok())
    return Fail(kExitUsage, "token rotate: --overlap: " + overlap_ms.status().message());
  auto config = tool.Load();
  if (!config.ok()) return Fail(kExitUsage, config.status().message());
  if (Status st = EnsureDataDir(config->data_dir); !st.ok())
    return Fail(kExitFailure, st.message());
  auto token = GenerateToken();
  if (!token.ok()) return Fail(kExitFailure, token.status().message());
  // At least 1 ms so that "expires" is never the "never expires" value 0.
  const int64_t expires_at_ms = std::max<int64_t>(1, core::SystemClock().NowMs() + *overlap_ms);
  const std::string tokens_file = TokensFilePath(config->data_dir);
  int expired = 0;
  if (Status st = RotateTokens(tokens_file, terminal, {terminal, HashTokenHex(*token)},
                               expires_at_ms, &expired);
      !st.ok()) {
    return Fail(kExitFailure, st.message());
  }
  std::printf("%s %s\n", terminal.c_str(), token->c_str());
  std::fflush(stdout);
  std::string hint = "# The token above is shown only now. Its hash was added to " + tokens_file +
                     " (a running hub picks it up within a second).\n";
  hint += "# " + std::to_string(expired) + " earlier token(s) of " + terminal +
          " in that file expire at " + core::FormatRfc3339(expires_at_ms) + ".\n";
  if (expired == 0) {
    hint +=
        "# Tokens given in the configuration (terminal_tokens) are not changed: append\n"
        "# \":" +
        core::FormatRfc3339(expires_at_ms) + "\" to their entries by hand.\n";
  }
  std::fputs(hint.c_str(), stderr);
  return kExitOk;
}

// --- status / journal verify ---

struct StatusFlags {
  std::string url;
  std::string token;
  std::string ca_file;
  bool insecure = false;
  int64_t timeout_ms = 5000;
};

int RunStatus(const ToolFlags& tool, const StatusFlags& flags) {
  if (!flags.url.empty()) {
    auto url = ParseUrl(flags.url);
    if (!url.ok()) return Fail(kExitUsage, url.status().message());
    std::string token = flags.token;
    if (token.empty()) {
      const char* env = std::getenv("MACHUB_TOKEN");
      if (env != nullptr) token = env;
    }
    std::vector<std::pair<std::string, std::string>> headers;
    if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
    HttpClientOptions options;
    options.timeout_ms = flags.timeout_ms;
    options.ca_file = flags.ca_file;
    options.insecure = flags.insecure;
    auto answer = HttpGet(*url, "/v1/status", headers, options);
    if (!answer.ok()) return Fail(kExitFailure, answer.status().message());
    if (answer->status != 200) {
      return Fail(kExitFailure, "GET /v1/status answered " + std::to_string(answer->status) + ": " +
                                    answer->body.substr(0, 500));
    }
    std::string body = answer->body;
    if (body.empty() || body.back() != '\n') body.push_back('\n');
    std::fputs(body.c_str(), stdout);
    return kExitOk;
  }
  auto config = tool.Load();
  if (!config.ok()) return Fail(kExitUsage, config.status().message());
  auto journal = OpenExistingJournal(*config);
  if (!journal.ok()) return Fail(ExitCodeFor(journal.status()), journal.status().message());
  auto stats = (*journal)->Stats();
  (*journal)->Close();
  if (!stats.ok()) return Fail(kExitFailure, stats.status().message());
  nlohmann::ordered_json j = {{"journal",
                               {{"last_seq", stats->last_seq},
                                {"sales", stats->sales},
                                {"size_bytes", stats->size_bytes},
                                {"free_disk_bytes", stats->free_disk_bytes}}}};
  std::printf("%s\n", j.dump().c_str());
  return kExitOk;
}

int RunJournalVerify(const ToolFlags& tool) {
  auto config = tool.Load();
  if (!config.ok()) return Fail(kExitUsage, config.status().message());
  auto journal = OpenExistingJournal(*config);
  if (!journal.ok()) return Fail(ExitCodeFor(journal.status()), journal.status().message());
  nlohmann::ordered_json j;
  bool ok = true;
  auto chain = (*journal)->VerifyChain();
  j["sales"] = chain.ok() ? *chain : 0;
  auto stats = (*journal)->Stats();
  j["last_seq"] = stats.ok() ? stats->last_seq : 0;
  if (chain.ok()) {
    j["chain"] = "ok";
  } else {
    ok = false;
    j["chain"] = "failed";
    j["chain_error"] = chain.status().message();
  }
  Status integrity = (*journal)->IntegrityCheck();
  if (integrity.ok()) {
    j["integrity"] = "ok";
  } else {
    ok = false;
    j["integrity"] = "failed";
    j["integrity_error"] = integrity.message();
  }
  if (!stats.ok()) {
    ok = false;
    j["stats_error"] = stats.status().message();
  }
  (*journal)->Close();
  std::printf("%s\n", j.dump().c_str());
  if (!ok) {
    std::string msg = "journal verify failed:";
    if (!chain.ok()) msg += " chain: " + chain.status().message() + ";";
    if (!integrity.ok()) msg += " integrity: " + integrity.message() + ";";
    if (!stats.ok()) msg += " stats: " + stats.status().message() + ";";
    msg.pop_back();
    return Fail(kExitFailure, msg);
  }
  return kExitOk;
}

// --- tls ---

int RunTlsInit(const ToolFlags& tool, TlsInitOptions options, const std::string& out_dir) {
  if (out_dir.empty()) {
    auto config = tool.Load();
    if (!config.ok()) return Fail(kExitUsage, config.status().message());
    if (Status st = EnsureDataDir(config->data_dir); !st.ok()) {
      return Fail(kExitFailure, st.message());
    }
    options.dir = TlsDir(config->data_dir);
  } else {
    options.dir = out_dir;
  }
  auto r = TlsInit(options);
  if (!r.ok()) {
    return Fail(r.status().code() == ErrorCode::kInvalidArgument ? kExitUsage : kExitFailure,
                r.status().message());
  }
  std::printf("ca_fingerprint_sha256 %s\n", r->ca_fingerprint_sha256.c_str());
  std::printf("ca_pem %s\n", r->ca_pem.c_str());
  std::printf("tls_cert %s\n", r->server_pem.c_str());
  std::printf("tls_key %s\n", r->server_key.c_str());
  std::fprintf(stderr,
               "machub tls init: %s; server certificate valid until %s (Unix %lld).\n"
               "Terminals trust %s (compare its SHA-256 fingerprint above); the hub serves\n"
               "HTTPS with tls_cert = \"%s\" and tls_key = \"%s\".\n",
               r->ca_created ? "new store CA" : "existing store CA kept",
               core::FormatRfc3339(r->server_not_after_unix * 1000).c_str(),
               static_cast<long long>(r->server_not_after_unix), r->ca_pem.c_str(),
               r->server_pem.c_str(), r->server_key.c_str());
  return kExitOk;
}

// --- loadgen ---

int RunLoadgenCommand(const LoadgenOptions& options) {
  auto report = RunLoadgen(options);
  if (!report.ok()) return Fail(ExitCodeFor(report.status()), report.status().message());
  // The table is for people (stderr), the JSON line for scripts (stdout).
  std::fputs(report->ToTable().c_str(), stderr);
  std::printf("%s\n", report->ToJson().c_str());
  return report->Failed() ? kExitFailure : kExitOk;
}

int Main(int argc, char** argv) {
  // Greengrass reads stdout through a pipe: without line buffering, lines would appear
  // in its log only when a 4 KiB block fills.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  // A peer closing a socket must surface as an error code, not kill the process.
  std::signal(SIGPIPE, SIG_IGN);

  // On the heap so that it can be freed before the command runs: CLI11's option tables are
  // about 260 KB that `serve` would otherwise carry for its whole life (docs/BENCHMARKS.md,
  // "Memory at 64 terminals"). The commands read only the plain variables the options fill
  // and the ConfigInputs their callbacks copied while the parser was alive.
  auto app_owner = std::make_unique<CLI::App>("machub: the store hub that never loses a sale");
  CLI::App& app = *app_owner;
  app.name("machub");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("machub ") + MACHUB_VERSION);
  std::function<int()> run;

  // serve
  ConfigFlags serve_flags;
  CLI::App* serve = app.add_subcommand("serve", "Run the hub until SIGTERM/SIGINT");
  serve_flags.Register(serve);
  serve->callback([&] {
    run = [&, inputs = serve_flags.Inputs()]() -> int {
      auto config = LoadConfig(inputs);
      if (!config.ok()) return Fail(kExitUsage, config.status().message());
      return RunServe(*config);
    };
  });

  // token
  CLI::App* token = app.add_subcommand("token", "Create terminal tokens or hash one");
  token->require_subcommand(1);
  ToolFlags token_tool;
  std::vector<std::string> token_terminals;
  int token_count = 0;
  std::string token_prefix = "T";
  bool token_no_store = false;
  std::string token_role = "terminal";
  CLI::App* token_create = token->add_subcommand(
      "create", "Generate tokens; print `TERMINAL_ID TOKEN` lines; store their hashes");
  token_create->add_option("--terminal", token_terminals, "Terminal id (repeatable)")
      ->allow_extra_args(false);
  CLI::Option* count_opt =
      token_create->add_option("--count", token_count, "Create N terminals PREFIX001..PREFIX00N")
          ->check(CLI::Range(1, 9999));
  token_create->add_option("--prefix", token_prefix, "Id prefix for --count (default T)")
      ->needs(count_opt);
  token_create
      ->add_option("--role", token_role,
                   "terminal (posts its own entries) or manager (also status, metrics, all "
                   "sales, dashboard)")
      ->check(CLI::IsMember({"terminal", "manager"}));
  token_create->add_flag("--no-store", token_no_store,
                         "Do not add the hashes to <data_dir>/tokens (print only)");
  token_tool.Register(token_create, /*with_store_id=*/false);
  token_create->callback([&] {
    run = [&] {
      return RunTokenCreate(token_tool, token_terminals, token_count, token_prefix,
                            token_role == "manager", token_no_store);
    };
  });
  std::string token_to_hash;
  CLI::App* token_hash =
      token->add_subcommand("hash", "Print the SHA-256 hex of a token (reads stdin without TOKEN)");
  token_hash->add_option("token", token_to_hash, "The token (or '-' for stdin)");
  token_hash->callback([&] { run = [&] { return RunTokenHash(token_to_hash); }; });
  ToolFlags rotate_tool;
  std::string rotate_terminal;
  std::string rotate_overlap = "24h";
  CLI::App* token_rotate = token->add_subcommand(
      "rotate",
      "New token for a terminal (printed once); its current tokens expire after --overlap");
  token_rotate->add_option("--terminal", rotate_terminal, "Terminal id")->required();
  token_rotate->add_option("--overlap", rotate_overlap,
                           "How long the old tokens stay valid: 24h, 30m, 2s... (default 24h)");
  rotate_tool.Register(token_rotate, /*with_store_id=*/false);
  token_rotate->callback(
      [&] { run = [&] { return RunTokenRotate(rotate_tool, rotate_terminal, rotate_overlap); }; });

  // status
  ToolFlags status_tool;
  StatusFlags status_flags;
  CLI::App* status = app.add_subcommand(
      "status", "Print the hub's status (from a running hub with --url, else from the journal)");
  status->add_option("--url", status_flags.url,
                     "Base URL of a running hub, e.g. http://127.0.0.1:8080");
  status->add_option("--token", status_flags.token, "Bearer token (default: $MACHUB_TOKEN)");
  status->add_option("--cacert", status_flags.ca_file, "https: trust this PEM file");
  status->add_flag("--insecure", status_flags.insecure, "https: do not verify the certificate");
  status->add_option("--timeout-ms", status_flags.timeout_ms, "Request timeout")
      ->check(CLI::Range(int64_t{1}, int64_t{600'000}));
  status_tool.Register(status, /*with_store_id=*/false);
  status->callback([&] { run = [&] { return RunStatus(status_tool, status_flags); }; });

  // journal
  CLI::App* journal_cmd = app.add_subcommand("journal", "Journal maintenance");
  journal_cmd->require_subcommand(1);
  ToolFlags verify_tool;
  CLI::App* verify = journal_cmd->add_subcommand(
      "verify", "Check the hash chain and SQLite integrity; exit 1 on any failure");
  verify_tool.Register(verify, /*with_store_id=*/true);
  verify->callback([&] { run = [&] { return RunJournalVerify(verify_tool); }; });

  // loadgen
  LoadgenOptions lg;
  std::string arrival = "poisson";
  CLI::App* loadgen = app.add_subcommand("loadgen", "Simulate POS terminals against a hub");
  loadgen->add_option("--url", lg.url, "Hub base URL (http only)")->capture_default_str();
  loadgen->add_option("--tokens", lg.tokens_file, "File of `TERMINAL_ID TOKEN` lines")->required();
  loadgen->add_option("--terminals", lg.terminals, "Simulated terminals (first N of --tokens)")
      ->capture_default_str();
  loadgen->add_option("--duration", lg.duration_s, "Seconds to run")->capture_default_str();
  loadgen->add_option("--rate", lg.rate, "Total sales/s (open loop); 0 = closed loop")
      ->capture_default_str();
  loadgen->add_option("--arrival", arrival, "Open-loop gaps: poisson or fixed")
      ->check(CLI::IsMember({"poisson", "fixed"}))
      ->capture_default_str();
  loadgen->add_option("--acked", lg.acked_file, "Append every acknowledged sale id to FILE");
  loadgen->add_option("--seed", lg.seed,
                      "PRNG seed for bodies, ids and choices (default 0: random, reported)");
  loadgen
      ->add_option("--retry-percent", lg.retry_percent,
                   "Share of requests resending an earlier acked sale")
      ->capture_default_str();
  loadgen
      ->add_option("--refund-percent", lg.refund_percent,
                   "Share of requests refunding an earlier acked sale")
      ->capture_default_str();
  loadgen->add_option("--currency", lg.currency, "ISO 4217 currency")->capture_default_str();
  loadgen->add_flag("--stop-on-error", lg.stop_on_error,
                    "End the run at the first connection error or unexpected answer "
                    "(default: retry like a terminal)");
  loadgen->add_option("--timeout-ms", lg.timeout_ms, "Per-request timeout")->capture_default_str();
  loadgen->add_option("--threads", lg.threads, "I/O threads (1-2 recommended)")
      ->capture_default_str();
  loadgen->callback([&] {
    run = [&] {
      lg.poisson = arrival == "poisson";
      return RunLoadgenCommand(lg);
    };
  });

  // tls
  CLI::App* tls = app.add_subcommand("tls", "The store's TLS certificates");
  tls->require_subcommand(1);
  ToolFlags tls_tool;
  TlsInitOptions tls_options;
  std::string tls_out;
  CLI::App* tls_init = tls->add_subcommand(
      "init", "Create a store CA (kept if present) and a new server certificate in <data_dir>/tls");
  tls_init->add_option("--host", tls_options.hosts, "DNS name terminals use (repeatable)");
  tls_init->add_option("--ip", tls_options.ips, "IP address terminals use (repeatable)");
  tls_init->add_option("--days", tls_options.server_days, "Server certificate validity in days")
      ->capture_default_str()
      ->check(CLI::Range(1, 3650));
  tls_init->add_flag("--new-ca", tls_options.new_ca,
                     "Replace an existing CA (every terminal must then trust the new ca.pem)");
  tls_init->add_option("--out", tls_out, "Output folder instead of <data_dir>/tls")
      ->type_name("DIR");
  tls_tool.Register(tls_init, /*with_store_id=*/false);
  tls_init->callback([&] { run = [&] { return RunTlsInit(tls_tool, tls_options, tls_out); }; });

  // config
  CLI::App* config_cmd = app.add_subcommand("config", "Configuration keys and values");
  config_cmd->require_subcommand(1);
  CLI::App* keys = config_cmd->add_subcommand("keys", "Print every key as a Markdown table");
  keys->callback([&] {
    run = [] {
      std::fputs(ConfigKeysMarkdown().c_str(), stdout);
      return kExitOk;
    };
  });
  ConfigFlags show_flags;
  CLI::App* show = config_cmd->add_subcommand(
      "show", "Print the effective configuration as TOML (accepts the same flags as serve)");
  show_flags.Register(show);
  show->callback([&] {
    run = [&, inputs = show_flags.Inputs()]() -> int {
      auto config = LoadConfig(inputs);
      if (!config.ok()) return Fail(kExitUsage, config.status().message());
      std::fputs(ConfigToToml(*config).c_str(), stdout);
      return kExitOk;
    };
  });

  // sync --once: upload the backlog and exit
  ConfigFlags sync_flags;
  bool sync_once = false;
  bool requeue_quarantined = false;
  int64_t give_up_after_ms = 60000;
  CLI::App* sync_cmd = app.add_subcommand(
      "sync",
      "Upload the journal's backlog (accepts the same flags as serve; not while serve runs)");
  sync_flags.Register(sync_cmd);
  sync_cmd->add_flag("--once", sync_once, "Upload everything not yet uploaded, then exit");
  sync_cmd->add_flag("--requeue-quarantined", requeue_quarantined,
                     "First put quarantined batches back in the queue (after the operator "
                     "removed the conflicting objects)");
  sync_cmd->add_option("--give-up-after-ms", give_up_after_ms,
                       "Exit 1 after this long without progress on a network error");
  sync_cmd->callback([&] {
    run = [&, inputs = sync_flags.Inputs()]() -> int {
      if (!sync_once) return Fail(kExitUsage, "machub sync: only --once is supported");
      auto config = LoadConfig(inputs);
      if (!config.ok()) return Fail(kExitUsage, config.status().message());
      return RunSyncOnce(*config, requeue_quarantined, give_up_after_ms);
    };
  });

  // verify: read every uploaded object back and check it
  ConfigFlags verify_store_flags;
  std::string verify_bucket, verify_dir;
  CLI::App* verify_store = app.add_subcommand(
      "verify", "Check every object in S3 or a folder: hashes, gapless seqs, the chain");
  verify_store_flags.Register(verify_store);
  verify_store->add_option("--bucket", verify_bucket, "S3 bucket (same as --sync-bucket)");
  verify_store->add_option("--dir", verify_dir, "Local folder (same as --sync-dir)");
  verify_store->callback([&] {
    run = [&, inputs = verify_store_flags.Inputs()]() -> int {
      auto config = LoadConfig(inputs);
      if (!config.ok()) return Fail(kExitUsage, config.status().message());
      if (!verify_bucket.empty()) config->sync_bucket = verify_bucket;
      if (!verify_dir.empty()) config->sync_dir = verify_dir;
      return RunVerify(*config);
    };
  });

  // dynamodb create-tables: the two tables of the DynamoDB sink (docs/DYNAMODB.md)
  ConfigFlags dynamo_flags;
  CLI::App* dynamo_cmd = app.add_subcommand("dynamodb", "DynamoDB sink administration");
  dynamo_cmd->require_subcommand(1);
  CLI::App* create_tables = dynamo_cmd->add_subcommand(
      "create-tables",
      "Create the sales and stores tables (on-demand billing) and wait until they are ACTIVE");
  dynamo_flags.Register(create_tables);
  create_tables->callback([&] {
    run = [&, inputs = dynamo_flags.Inputs()]() -> int {
      auto config = LoadConfig(inputs);
      if (!config.ok()) return Fail(kExitUsage, config.status().message());
      return RunDynamoCreateTables(*config);
    };
  });

  // greengrass: the recipe tools (tools/greengrass/greengrass_check.h) where this build has
  // them; the device build (MACHUB_GREENGRASS_TOOLS=OFF) points at the host tool instead.
#if MACHUB_GREENGRASS_TOOLS
  greengrass::AddGreengrassCommand(app, run);
#else
  CLI::App* greengrass_cmd = app.add_subcommand(
      "greengrass", "Greengrass recipe tools: not in this build (use machub-greengrass)");
  greengrass_cmd->set_help_flag();
  greengrass_cmd->allow_extras();
  greengrass_cmd->prefix_command();
  greengrass_cmd->callback([&] {
    run = [] {
      return Fail(kExitUsage,
                  "this machub was built without the Greengrass recipe tools (the device "
                  "build leaves them out); run `machub-greengrass check|render ...` on a host "
                  "(built from tools/greengrass; see docs/DEPLOY_GREENGRASS.md)");
    };
  });
#endif

  // version
  CLI::App* version = app.add_subcommand("version", "Print the version");
  version->callback([&] {
    run = [] {
      std::printf("machub %s\n", MACHUB_VERSION);
      return kExitOk;
    };
  });

  std::vector<std::string> args = SplitEmptyFlagValues(argc, argv);
  std::vector<std::string> reversed(args.rbegin(), args.rend() - 1);  // CLI11 wants reversed
  try {
    app.parse(std::move(reversed));
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  if (!run) return Fail(kExitUsage, "no command given (see --help)");
  app_owner.reset();
  return run();
}

}  // namespace
}  // namespace machub::app

int main(int argc, char** argv) {
  try {
    return machub::app::Main(argc, argv);
  } catch (const std::exception& e) {
    // Nothing is expected to throw this far (errors are Status values); if something
    // does, say what and exit non-zero instead of std::terminate's abort.
    std::fprintf(stderr, "machub: fatal: %s\n", e.what());
    return 1;
  }
}
