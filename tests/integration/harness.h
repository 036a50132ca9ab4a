#pragma once
// Helpers for integration tests that run the real machub binary as a child process and
// talk to it over real loopback sockets.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace machub::testing {

// A fresh folder under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Path of the machub binary under test.
std::string MachubBinary();

// Runs a command to completion; returns its exit status (-1 when killed) and stdout.
struct CommandResult {
  int exit_code = -1;
  std::string out;
};
CommandResult RunCommand(const std::vector<std::string>& argv, int timeout_s = 120);

// A child process whose stdout and stderr go to `log_path`.
class ChildProcess {
 public:
  // `env` entries are added to (or replace) the test's environment.
  ChildProcess(const std::vector<std::string>& argv, const std::string& log_path,
               const std::map<std::string, std::string>& env = {});
  ~ChildProcess();  // SIGKILLs a child still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool Running();
  void Signal(int sig);
  // Waits for exit; returns the exit code, 128+signal when killed, -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
  std::string log_path_;
};

// One terminal's credentials.
struct Terminal {
  std::string id;
  std::string token;
  std::string hash;      // sha256 hex of token
  bool manager = false;  // given to the hub with --manager-tokens (status, metrics, lists)
};
// Makes `n` terminals T01..Tnn with random tokens.
std::vector<Terminal> MakeTerminals(int n);
// Writes "ID TOKEN" lines (the loadgen's --tokens format).
void WriteTokensFile(const std::string& path, const std::vector<Terminal>& terminals);

// A running hub. Start() waits until it listens (its --ready-file appears).
class Hub {
 public:
  struct Options {
    std::string data_dir;
    uint16_t port = 0;  // 0: any; a restart passes the earlier port
    std::vector<Terminal> terminals;
    std::vector<std::string> extra_args;
    std::map<std::string, std::string> env;
    std::string log_path;  // default: <data_dir>/../hub-<n>.log
  };
  static std::unique_ptr<Hub> Start(const Options& options);
  ~Hub();

  uint16_t port() const { return port_; }
  std::string url() const;
  ChildProcess& process() { return *process_; }
  // SIGKILL and reap.
  void Kill();
  // SIGTERM and wait; returns the exit code.
  int Terminate();

 private:
  std::unique_ptr<ChildProcess> process_;
  uint16_t port_ = 0;
};

struct HttpResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

// A blocking HTTP/1.1 client on one keep-alive connection (reconnects when needed).
class HttpClient {
 public:
  explicit HttpClient(uint16_t port);
  ~HttpClient();
  HttpResponse Request(const std::string& method, const std::string& target,
                       const std::string& body = "",
                       const std::map<std::string, std::string>& headers = {});
  HttpResponse Get(const std::string& target, const std::string& token = "");
  HttpResponse Post(const std::string& target, const std::string& body, const std::string& token);
  // True while the current connection is open (false after the server closed it).
  bool connected() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A minimal valid sale body for terminal `terminal_id` with the given id.
std::string SaleBody(const std::string& id, const std::string& terminal_id,
                     const std::string& unit_price = "3.50");

// Wait until `pred` holds or the timeout passes.
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    struct timespec ts {
      0, 10'000'000
    };
    nanosleep(&ts, nullptr);
  }
  return pred();
}

}  // namespace machub::testing
