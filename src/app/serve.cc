#include "app/serve.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "app/salegen.h"
#include "app/tokens.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/time_format.h"
#include "http/api.h"
#include "http/server.h"
#include "journal/journal.h"

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
      " machub: no terminal token is configured, so a DEMO token was created for\n"
      " terminal T01. It is shown only this once; its hash is stored in\n"
      "   " +
      tokens_file +
      "\n"
      "\n"
      "   Terminal T01 token:  " +
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
      " Real terminals: `machub token create --terminal T02`. No demo token: set\n"
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

}  // namespace

int RunServe(const Config& config) {
  // A file-size limit (systemd LimitFSIZE=, ulimit -f) must turn into EFBIG for SQLite,
  // hence 503 storage_unavailable, not a process killed by SIGXFSZ. Likewise a terminal
  // that hangs up must not kill the hub with SIGPIPE.
  std::signal(SIGXFSZ, SIG_IGN);
  std::signal(SIGPIPE, SIG_IGN);
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

  core::MetricsRegistry metrics;
  journal::JournalOptions jopts;
  jopts.path = config.data_dir + "/journal.db";
  jopts.store_id = config.store_id;
  jopts.clock_skew_bound_ms = config.clock_skew_bound_s * 1000;
  jopts.max_group = config.max_group;
  jopts.group_commit = config.group_commit;
  jopts.metrics = &metrics;
  auto journal = journal::Journal::Open(jopts);
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
  for (const TokenEntry& e : config.terminal_tokens) {
    api_options.tokens.push_back({e.terminal_id, e.sha256_hex});
  }
  const std::string tokens_file = TokensFilePath(config.data_dir);
  auto file_tokens = LoadTokensFile(tokens_file);
  if (!file_tokens.ok()) {
    core::LogError("tokens_file_invalid", {{"error", file_tokens.status().message()}});
    (*journal)->Close();
    return 2;
  }
  for (const TokenEntry& e : *file_tokens)
    api_options.tokens.push_back({e.terminal_id, e.sha256_hex});

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
    api_options.tokens.push_back({"T01", HashTokenHex(demo_token)});
  }
  if (api_options.tokens.empty()) {
    core::LogWarn("no_terminal_tokens", {{"hint",
                                          "every sale will be refused with 401; create tokens with "
                                          "`machub token create`"}});
  }
  core::LogInfo("tokens_loaded", {{"terminals", api_options.tokens.size()}});

  http::ApiHandler api(api_options, journal->get(), &metrics, &core::SystemClock());

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
    if (Status st = AppendTokens(tokens_file, {{"T01", HashTokenHex(demo_token)}}); !st.ok()) {
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

  int sig = 0;
  while (sigwait(&signals, &sig) != 0) {
  }
  core::LogInfo("stopping", {{"signal", SignalName(sig)}, {"drain_ms", config.drain_timeout_ms}});
  (*server)->Stop(config.drain_timeout_ms);
  api.SetConnectionsSource({});
  (*journal)->Close();
  if (!config.ready_file.empty()) ::unlink(config.ready_file.c_str());
  core::LogInfo("stopped");
  return 0;
}

}  // namespace machub::app
