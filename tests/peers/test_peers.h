#pragma once
// Test-only helpers that start and drive the peers of tests/peers/ from C++ tests:
//   RgwPeer     a throw-away Ceph cluster with radosgw (rgw.sh), stopped by its destructor;
//   DynalitePeer  dynalite, a DynamoDB implementation (dynalite.sh), stopped by its destructor;
//   FaultProxy  the fault-injecting TCP proxy (fault_proxy), killed by its destructor.
// Link the INTERFACE target machub_test_peers (it defines the paths below). Header-only;
// POSIX; not thread-safe (drive each peer from one thread).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#if !defined(MACHUB_PEERS_RGW_SH) || !defined(MACHUB_PEERS_FAULT_PROXY) || \
    !defined(MACHUB_PEERS_DYNALITE_SH)
#error "link machub_test_peers (it defines MACHUB_PEERS_RGW_SH, _DYNALITE_SH, _FAULT_PROXY)"
#endif

extern char** environ;

namespace machub::testing {

// Runs `command` with /bin/sh, returns its exit status (-1 when it could not run) and
// its stdout in *out. Stderr passes through to the test's stderr.
inline int RunShell(const std::string& command, std::string* out) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  size_t n;
  if (out != nullptr) out->clear();
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) {
    if (out != nullptr) out->append(buf, n);
  }
  int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Reaps `pid` if it is a (zombie) child of ours. The daemons of rgw.sh are reparented to
// us (we are a child subreaper) because the init of some containers never reaps.
// Runs this test executable again with one --gtest_filter, the `env` entries and every
// variable of ours except MACHUB_* ones (the child must not inherit a parent's failpoint);
// returns the child's wait status, or -1 when it could not be started.
inline int RunSelfAsChild(const std::string& gtest_filter, std::vector<std::string> env) {
  std::vector<std::string> args = {"/proc/self/exe", "--gtest_filter=" + gtest_filter};
  for (char** e = environ; *e != nullptr; ++e) {
    if (!std::string_view(*e).starts_with("MACHUB_")) env.emplace_back(*e);
  }
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), envp.data()) != 0) {
    return -1;
  }
  int wstatus = 0;
  return waitpid(pid, &wstatus, 0) == pid ? wstatus : -1;
}

inline void ReapIfChild(pid_t pid) {
  if (pid > 0) waitpid(pid, nullptr, WNOHANG);
}

class RgwPeer {
 public:
  // Starts a cluster under `dir` (created). Null with *why set when rgw.sh fails (binaries
  // missing, no permission to install them, a daemon that does not come up).
  static std::unique_ptr<RgwPeer> Start(const std::string& dir, std::string* why) {
    // Orphaned daemons become our children instead of init's, so we can reap them.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    std::unique_ptr<RgwPeer> peer(new RgwPeer(dir));
    std::string out;
    auto t0 = std::chrono::steady_clock::now();
    int rc = RunShell("RGW_WATCH_PID=" + std::to_string(getpid()) + " " +
                          ShellQuote(MACHUB_PEERS_RGW_SH) + " start " + ShellQuote(dir),
                      &out);
    peer->start_ms_ =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    if (rc != 0) {
      *why = "rgw.sh start failed (exit " + std::to_string(rc) + "): " + out;
      peer->started_ = false;
      return nullptr;
    }
    if (!peer->LoadEnv()) {
      *why = "rgw.sh start wrote no usable " + dir + "/env";
      return nullptr;
    }
    return peer;
  }

  ~RgwPeer() { Stop(); }

  bool Stop() {
    if (!started_) return true;
    started_ = false;
    bool ok = Run("stop");
    for (const char* name : {"RGW_PID", "OSD_PID", "MON_PID", "WATCHDOG_PID"}) {
      ReapIfChild(Pid(name));
    }
    for (pid_t pid : old_gateways_) ReapIfChild(pid);
    return ok;
  }
  bool StopGateway() {
    pid_t old = Pid("RGW_PID");
    bool ok = Run("stop-gateway");
    old_gateways_.push_back(old);
    ReapIfChild(old);
    return ok;
  }
  bool StartGateway() { return Run("start-gateway") && LoadEnv(); }
  bool Freeze() { return Run("freeze"); }
  bool Thaw() { return Run("thaw"); }

  const std::string& endpoint() const { return env_.at("RGW_ENDPOINT"); }
  const std::string& access_key() const { return env_.at("RGW_ACCESS_KEY"); }
  const std::string& secret_key() const { return env_.at("RGW_SECRET_KEY"); }
  int port() const { return std::atoi(env_.at("RGW_PORT").c_str()); }
  int64_t start_ms() const { return start_ms_; }

 private:
  explicit RgwPeer(std::string dir) : dir_(std::move(dir)) {}

  bool Run(const std::string& verb) {
    return RunShell(ShellQuote(MACHUB_PEERS_RGW_SH) + " " + verb + " " + ShellQuote(dir_),
                    nullptr) == 0;
  }

  bool LoadEnv() {
    std::ifstream in(dir_ + "/env");
    std::string line;
    while (std::getline(in, line)) {
      size_t eq = line.find('=');
      if (eq != std::string::npos) env_[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return env_.count("RGW_ENDPOINT") && env_.count("RGW_ACCESS_KEY") &&
           env_.count("RGW_SECRET_KEY") && env_.count("RGW_PORT");
  }

  pid_t Pid(const char* name) const {
    auto it = env_.find(name);
    return it == env_.end() ? 0 : static_cast<pid_t>(std::atoi(it->second.c_str()));
  }

  std::string dir_;
  std::map<std::string, std::string> env_;
  std::vector<pid_t> old_gateways_;
  bool started_ = true;
  int64_t start_ms_ = 0;
};

// dynalite (dynalite.sh): DynamoDB on loopback, data under `dir`/db, stopped by the
// destructor. Outage() stops the server keeping data and port; Resume() brings it back.
class DynalitePeer {
 public:
  // Null with *why set when dynalite.sh fails (node or the npm package missing).
  static std::unique_ptr<DynalitePeer> Start(const std::string& dir, std::string* why) {
    std::unique_ptr<DynalitePeer> peer(new DynalitePeer(dir));
    std::string out;
    int rc = RunShell("DYNALITE_WATCH_PID=" + std::to_string(getpid()) + " " +
                          ShellQuote(MACHUB_PEERS_DYNALITE_SH) + " start " + ShellQuote(dir),
                      &out);
    if (rc != 0 || !peer->LoadEnv()) {
      *why = "dynalite.sh start failed (exit " + std::to_string(rc) + "): " + out +
             " (install: scripts/install-deps.sh --test)";
      peer->started_ = false;
      return nullptr;
    }
    return peer;
  }
  ~DynalitePeer() { Stop(); }

  bool Stop() {
    if (!started_) return true;
    started_ = false;
    pid_t pid = pid_;
    bool ok = Run("stop");
    ReapIfChild(pid);
    return ok;
  }
  bool Outage() {
    pid_t pid = pid_;
    bool ok = Run("outage");
    ReapIfChild(pid);
    return ok;
  }
  bool Resume() { return Run("start") && LoadEnv(); }

  const std::string& endpoint() const { return endpoint_; }
  int port() const { return port_; }

 private:
  explicit DynalitePeer(std::string dir) : dir_(std::move(dir)) {}
  bool Run(const std::string& verb) {
    return RunShell("DYNALITE_WATCH_PID=" + std::to_string(getpid()) + " " +
                        ShellQuote(MACHUB_PEERS_DYNALITE_SH) + " " + verb + " " + ShellQuote(dir_),
                    nullptr) == 0;
  }
  bool LoadEnv() {
    std::ifstream in(dir_ + "/env");
    std::string line;
    while (std::getline(in, line)) {
      size_t eq = line.find('=');
      if (eq == std::string::npos) continue;
      std::string key = line.substr(0, eq), value = line.substr(eq + 1);
      if (key == "DYNALITE_ENDPOINT") endpoint_ = value;
      if (key == "DYNALITE_PORT") port_ = std::atoi(value.c_str());
      if (key == "DYNALITE_PID") pid_ = static_cast<pid_t>(std::atoi(value.c_str()));
    }
    return !endpoint_.empty() && port_ > 0;
  }

  std::string dir_;
  std::string endpoint_;
  int port_ = 0;
  pid_t pid_ = 0;
  bool started_ = true;
};

class FaultProxy {
 public:
  // Starts fault_proxy forwarding to 127.0.0.1:target_port. Null with *why on failure.
  // The proxy dies with the calling thread (PR_SET_PDEATHSIG): call this from the main
  // thread or one that outlives the proxy.
  static std::unique_ptr<FaultProxy> Start(int target_port, std::string* why) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
      *why = "pipe failed";
      return nullptr;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    std::string target = "127.0.0.1:" + std::to_string(target_port);
    std::vector<std::string> args = {MACHUB_PEERS_FAULT_PROXY, "--target", target,
                                     "--exit-with-parent"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    if (rc != 0) {
      close(out[0]);
      *why = std::string("cannot start fault_proxy: ") + std::strerror(rc);
      return nullptr;
    }
    std::unique_ptr<FaultProxy> proxy(new FaultProxy(pid));
    // First line: "port=P control=C". Wait at most 10 s for it.
    std::string line;
    char c;
    pollfd pfd{out[0], POLLIN, 0};
    while (line.find('\n') == std::string::npos && poll(&pfd, 1, 10000) == 1 &&
           read(out[0], &c, 1) == 1) {
      line += c;
    }
    close(out[0]);
    if (std::sscanf(line.c_str(), "port=%d control=%d", &proxy->port_, &proxy->control_port_) !=
        2) {
      *why = "fault_proxy printed no ports: " + line;
      return nullptr;
    }
    return proxy;
  }

  ~FaultProxy() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }

  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Sends one control command ("pass", "blackhole", "reset-after 100", "stats", ...) and
  // returns the answer line ("ok ..." / "error ..."), or "" when the proxy is unreachable.
  std::string Command(const std::string& command) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return "";
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(control_port_));
    std::string reply;
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      std::string line = command + "\n";
      if (send(fd, line.data(), line.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(line.size())) {
        char c;
        while (read(fd, &c, 1) == 1 && c != '\n') reply += c;
      }
    }
    close(fd);
    return reply;
  }

  // Switches the mode and resets the connections opened under the previous one, so the
  // next request meets the new mode. True when the proxy said "ok".
  bool SetMode(const std::string& mode) {
    return Command(mode).starts_with("ok") && Command("drop").starts_with("ok");
  }

 private:
  explicit FaultProxy(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  int port_ = 0;
  int control_port_ = 0;
};

}  // namespace machub::testing
