// fault_proxy: a TCP proxy on loopback that injects the faults an S3 client sees when the
// network or the store misbehaves. Test-only tool; single-threaded (poll), no dependencies.
//
//   fault_proxy --target HOST:PORT [--port P] [--control-port C] [--mode MODE]
//               [--exit-with-parent]
//
// At start it prints one line on stdout, then keeps quiet (errors go to stderr):
//   port=<P> control=<C>
// P is the proxy's listening port, C the control port (both on 127.0.0.1; 0 = any free
// port). The control port takes one command per line and answers one line, "ok ..." or
// "error ...", after the change is in effect:
//   pass                 forward everything (the default)
//   latency MS           forward, but hold every chunk MS milliseconds in each direction
//   refuse               close the listener: connects are refused (RST from the kernel)
//   reset                accept, then reset the connection at once (RST, nothing read)
//   reset-after N        forward N bytes (both directions counted), then RST both sides
//   blackhole            accept and read, never connect upstream, never answer
//   close-after N        forward N bytes (both directions counted), then close cleanly
//   dynamo-error N STATUS TYPE
//                        HTTP aware: of the requests on connections accepted from now on,
//                        every Nth (counted across connections; N = 1: all) is not
//                        forwarded but answered by the proxy with HTTP STATUS and the body
//                        of a DynamoDB JSON 1.0 error of type TYPE (e.g. 400
//                        ThrottlingException); the others pass. Requests are framed by
//                        Content-Length (no chunked bodies); the connection stays open.
//   drop                 reset every open connection now (the mode is unchanged)
//   stats                "ok mode=<mode> accepted=<n> active=<n> injected=<n>"
//                        (injected: requests answered by dynamo-error since the start)
// A mode applies to connections accepted after the command; "drop" ends the older ones.
// SIGTERM/SIGINT end the proxy (exit 0). With --exit-with-parent it also ends when the
// process that started it dies (a test killed by a timeout leaves no proxy behind).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <list>
#include <memory>
#include <string>
#include <vector>

namespace {

enum class Mode {
  kPass,
  kLatency,
  kRefuse,
  kReset,
  kResetAfter,
  kBlackhole,
  kCloseAfter,
  kDynamoError
};

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kPass:
      return "pass";
    case Mode::kLatency:
      return "latency";
    case Mode::kRefuse:
      return "refuse";
    case Mode::kReset:
      return "reset";
    case Mode::kResetAfter:
      return "reset-after";
    case Mode::kBlackhole:
      return "blackhole";
    case Mode::kCloseAfter:
      return "close-after";
    case Mode::kDynamoError:
      return "dynamo-error";
  }
  return "?";
}

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// close() with SO_LINGER {1, 0}: the peer gets an RST instead of a FIN.
void CloseWithReset(int fd) {
  if (fd < 0) return;
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close(fd);
}

int Listen(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 128) != 0) {
    close(fd);
    return -1;
  }
  SetNonBlocking(fd);
  return fd;
}

uint16_t LocalPort(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

struct Chunk {
  int64_t release_ms;
  std::string data;
  size_t offset = 0;
};

// One direction of a connection: bytes read from `from`, waiting to be written to `to`.
struct Pipe {
  std::deque<Chunk> queue;
  size_t pending = 0;  // bytes queued
  bool eof = false;    // `from` sent FIN
  bool shut = false;   // FIN forwarded to `to`
};

constexpr size_t kMaxPending = 1 << 20;  // stop reading a side while this much is queued

struct Conn {
  int client = -1;
  int upstream = -1;
  bool connecting = false;
  Mode mode = Mode::kPass;
  int64_t latency_ms = 0;
  int64_t budget = -1;  // bytes still allowed (reset-after / close-after), -1: unlimited
  bool budget_spent = false;
  Pipe up;    // client -> upstream
  Pipe down;  // upstream -> client
  bool dead = false;
  std::string request;  // dynamo-error: client bytes not yet framed into a whole request
};

// The injected errors of dynamo-error: every `every`th request gets `response`.
struct Injection {
  int64_t every = 1;
  std::string response;
};

// Byte length of the first whole HTTP/1.1 request in `buf` (head + Content-Length body),
// 0 while incomplete. Without Content-Length the request has no body.
size_t WholeRequestLength(const std::string& buf) {
  size_t head_end = buf.find("\r\n\r\n");
  if (head_end == std::string::npos) return 0;
  size_t head_len = head_end + 4;
  size_t body = 0;
  std::string head = buf.substr(0, head_end);
  for (char& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  size_t at = head.find("\r\ncontent-length:");
  if (at != std::string::npos) {
    body = std::strtoull(head.c_str() + at + 17, nullptr, 10);
  }
  return buf.size() >= head_len + body ? head_len + body : 0;
}

std::string DynamoErrorResponse(int status, const std::string& type) {
  std::string body = "{\"__type\":\"com.amazonaws.dynamodb.v20120810#" + type +
                     "\",\"message\":\"injected by fault_proxy\"}";
  return "HTTP/1.1 " + std::to_string(status) +
         " Injected\r\nContent-Type: application/x-amz-json-1.0\r\n"
         "x-amzn-RequestId: fault-proxy\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

struct ControlClient {
  int fd = -1;
  std::string in;
  std::string out;
  bool dead = false;
};

class Proxy {
 public:
  Proxy(sockaddr_storage target, socklen_t target_len, uint16_t port)
      : target_(target), target_len_(target_len), port_(port) {}

  bool Start(uint16_t control_port, Mode mode, int64_t arg) {
    listener_ = Listen(port_);
    if (listener_ < 0) return false;
    port_ = LocalPort(listener_);
    control_ = Listen(control_port);
    if (control_ < 0) return false;
    SetMode(mode, arg);
    std::printf("port=%u control=%u\n", port_, LocalPort(control_));
    std::fflush(stdout);
    return true;
  }

  void Run() {
    while (!g_stop) {
      std::vector<pollfd> fds;
      std::vector<void*> owners;  // parallel to fds: Conn*, ControlClient*, or null
      std::vector<int> roles;     // 0 listener, 1 control listener, 2 client, 3 upstream, 4 ctl
      auto add = [&](int fd, short events, void* owner, int role) {
        fds.push_back(pollfd{fd, events, 0});
        owners.push_back(owner);
        roles.push_back(role);
      };
      if (listener_ >= 0) add(listener_, POLLIN, nullptr, 0);
      add(control_, POLLIN, nullptr, 1);
      int64_t now = NowMs();
      int64_t next_release = std::numeric_limits<int64_t>::max();
      for (auto& c : conns_) {
        short ce = 0, ue = 0;
        if (c->up.pending < kMaxPending && !c->up.eof) ce |= POLLIN;
        if (Ready(c->down, now, &next_release)) ce |= POLLOUT;
        add(c->client, ce, c.get(), 2);
        if (c->upstream >= 0) {
          if (c->connecting) {
            ue = POLLOUT;
          } else {
            if (c->down.pending < kMaxPending && !c->down.eof) ue |= POLLIN;
            if (Ready(c->up, now, &next_release)) ue |= POLLOUT;
          }
          add(c->upstream, ue, c.get(), 3);
        }
      }
      for (auto& cc : controls_) {
        add(cc->fd, static_cast<short>(POLLIN | (cc->out.empty() ? 0 : POLLOUT)), cc.get(), 4);
      }
      int timeout = -1;
      if (next_release != std::numeric_limits<int64_t>::max()) {
        timeout = static_cast<int>(std::max<int64_t>(0, next_release - now));
      }
      int n = poll(fds.data(), fds.size(), timeout);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::perror("fault_proxy: poll");
        return;
      }
      for (size_t i = 0; i < fds.size(); ++i) {
        short re = fds[i].revents;
        if (re == 0) continue;
        switch (roles[i]) {
          case 0:
            AcceptClients();
            break;
          case 1:
            AcceptControl();
            break;
          case 2:
            OnClient(static_cast<Conn*>(owners[i]), re);
            break;
          case 3:
            OnUpstream(static_cast<Conn*>(owners[i]), re);
            break;
          case 4:
            OnControl(static_cast<ControlClient*>(owners[i]), re);
            break;
        }
      }
      // Write what became due even when no socket event woke us (latency mode).
      now = NowMs();
      for (auto& c : conns_) {
        if (c->dead) continue;
        Flush(c.get(), now);
      }
      conns_.remove_if([](const std::unique_ptr<Conn>& c) { return c->dead; });
      controls_.remove_if([](const std::unique_ptr<ControlClient>& c) { return c->dead; });
    }
  }

 private:
  static bool Ready(const Pipe& p, int64_t now, int64_t* next_release) {
    if (p.queue.empty()) return false;
    if (p.queue.front().release_ms <= now) return true;
    if (p.queue.front().release_ms < *next_release) *next_release = p.queue.front().release_ms;
    return false;
  }

  void SetMode(Mode mode, int64_t arg) {
    mode_ = mode;
    arg_ = arg;
    if (mode == Mode::kRefuse) {
      if (listener_ >= 0) {
        // Connections still in the backlog get an RST when the listener goes away.
        close(listener_);
        listener_ = -1;
      }
    } else if (listener_ < 0) {
      listener_ = Listen(port_);
      if (listener_ < 0) std::perror("fault_proxy: listen again");
    }
  }

  void AcceptClients() {
    for (;;) {
      int fd = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      ++accepted_;
      if (mode_ == Mode::kReset) {
        CloseWithReset(fd);
        continue;
      }
      auto c = std::make_unique<Conn>();
      c->client = fd;
      c->mode = mode_;
      if (mode_ == Mode::kLatency) c->latency_ms = arg_;
      if (mode_ == Mode::kResetAfter || mode_ == Mode::kCloseAfter) c->budget = arg_;
      if (mode_ != Mode::kBlackhole) {
        c->upstream = socket(target_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(c->upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        int rc = connect(c->upstream, reinterpret_cast<const sockaddr*>(&target_), target_len_);
        if (rc != 0 && errno != EINPROGRESS) {
          Kill(c.get());
          continue;
        }
        c->connecting = rc != 0;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      conns_.push_back(std::move(c));
    }
  }

  // Both sides get an RST: what a broken network path looks like to the client.
  void Kill(Conn* c) {
    CloseWithReset(c->client);
    CloseWithReset(c->upstream);
    c->client = c->upstream = -1;
    c->dead = true;
  }

  void CloseBoth(Conn* c) {
    if (c->client >= 0) close(c->client);
    if (c->upstream >= 0) close(c->upstream);
    c->client = c->upstream = -1;
    c->dead = true;
  }

  // Reads from `fd` into `pipe`, honouring the byte budget. False when `c` was closed.
  bool ReadInto(Conn* c, int fd, Pipe* pipe, bool discard) {
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return true;
      Kill(c);
      return false;
    }
    if (n == 0) {
      pipe->eof = true;
      return true;
    }
    if (discard) return true;
    size_t take = static_cast<size_t>(n);
    if (c->budget >= 0) {
      if (static_cast<int64_t>(take) >= c->budget) {
        take = static_cast<size_t>(c->budget);
        c->budget_spent = true;
      }
      c->budget -= static_cast<int64_t>(take);
    }
    if (c->mode == Mode::kDynamoError && pipe == &c->up) {
      c->request.append(buf, take);
      FrameRequests(c);
      return true;
    }
    if (take > 0) {
      pipe->queue.push_back(Chunk{NowMs() + c->latency_ms, std::string(buf, take)});
      pipe->pending += take;
    }
    return true;
  }

  // dynamo-error: each whole request is either forwarded or answered here.
  void FrameRequests(Conn* c) {
    while (size_t len = WholeRequestLength(c->request)) {
      ++requests_;
      if (requests_ % injection_.every == 0) {
        ++injected_;
        c->down.queue.push_back(Chunk{NowMs(), injection_.response});
        c->down.pending += injection_.response.size();
      } else {
        c->up.queue.push_back(Chunk{NowMs(), c->request.substr(0, len)});
        c->up.pending += len;
      }
      c->request.erase(0, len);
    }
  }

  void OnClient(Conn* c, short re) {
    if (c->dead) return;
    if (re & (POLLIN | POLLHUP | POLLERR)) {
      if (!ReadInto(c, c->client, &c->up, c->mode == Mode::kBlackhole)) return;
      if (c->mode == Mode::kBlackhole && c->up.eof) {
        CloseBoth(c);
        return;
      }
    }
    if (re & POLLOUT) Flush(c, NowMs());
  }

  void OnUpstream(Conn* c, short re) {
    if (c->dead) return;
    if (c->connecting) {
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(c->upstream, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        Kill(c);
        return;
      }
      if (!(re & POLLOUT)) return;
      c->connecting = false;
      return;
    }
    if (re & (POLLIN | POLLHUP | POLLERR)) {
      if (!ReadInto(c, c->upstream, &c->down, false)) return;
    }
    if (re & POLLOUT) Flush(c, NowMs());
  }

  // Writes due chunks of `pipe` to `fd`. False when `c` was closed.
  bool FlushPipe(Conn* c, Pipe* pipe, int fd, int64_t now) {
    while (!pipe->queue.empty() && pipe->queue.front().release_ms <= now) {
      Chunk& ch = pipe->queue.front();
      ssize_t n = send(fd, ch.data.data() + ch.offset, ch.data.size() - ch.offset, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return true;
        Kill(c);
        return false;
      }
      ch.offset += static_cast<size_t>(n);
      pipe->pending -= static_cast<size_t>(n);
      if (ch.offset < ch.data.size()) return true;
      pipe->queue.pop_front();
    }
    if (pipe->queue.empty() && pipe->eof && !pipe->shut) {
      shutdown(fd, SHUT_WR);
      pipe->shut = true;
    }
    return true;
  }

  void Flush(Conn* c, int64_t now) {
    if (c->dead || c->connecting || c->upstream < 0) return;
    if (!FlushPipe(c, &c->up, c->upstream, now)) return;
    if (!FlushPipe(c, &c->down, c->client, now)) return;
    if (c->budget_spent && c->up.queue.empty() && c->down.queue.empty()) {
      if (c->mode == Mode::kResetAfter) {
        Kill(c);
      } else {
        CloseBoth(c);
      }
      return;
    }
    if (c->up.shut && c->down.shut) CloseBoth(c);
  }

  void AcceptControl() {
    for (;;) {
      int fd = accept4(control_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      auto cc = std::make_unique<ControlClient>();
      cc->fd = fd;
      controls_.push_back(std::move(cc));
    }
  }

  void OnControl(ControlClient* cc, short re) {
    if (re & (POLLIN | POLLHUP | POLLERR)) {
      char buf[4096];
      ssize_t n = read(cc->fd, buf, sizeof(buf));
      if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) {
        close(cc->fd);
        cc->dead = true;
        return;
      }
      if (n > 0) cc->in.append(buf, static_cast<size_t>(n));
      size_t nl;
      while ((nl = cc->in.find('\n')) != std::string::npos) {
        std::string line = cc->in.substr(0, nl);
        cc->in.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        cc->out += Command(line) + "\n";
      }
    }
    if (!cc->out.empty()) {
      ssize_t n = send(cc->fd, cc->out.data(), cc->out.size(), MSG_NOSIGNAL);
      if (n > 0) cc->out.erase(0, static_cast<size_t>(n));
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        close(cc->fd);
        cc->dead = true;
      }
    }
  }

  std::string Command(const std::string& line) {
    char name[32] = {0};
    long long arg = 0;
    int fields = std::sscanf(line.c_str(), "%31s %lld", name, &arg);
    if (fields < 1) return "error empty command";
    std::string cmd = name;
    bool has_arg = fields == 2 && arg >= 0;
    if (cmd == "pass") {
      SetMode(Mode::kPass, 0);
    } else if (cmd == "latency" && has_arg) {
      SetMode(Mode::kLatency, arg);
    } else if (cmd == "refuse") {
      SetMode(Mode::kRefuse, 0);
    } else if (cmd == "reset") {
      SetMode(Mode::kReset, 0);
    } else if (cmd == "reset-after" && has_arg) {
      SetMode(Mode::kResetAfter, arg);
    } else if (cmd == "blackhole") {
      SetMode(Mode::kBlackhole, 0);
    } else if (cmd == "close-after" && has_arg) {
      SetMode(Mode::kCloseAfter, arg);
    } else if (cmd == "dynamo-error") {
      long long every = 0;
      int status = 0;
      char type[64] = {0};
      if (std::sscanf(line.c_str(), "%*31s %lld %d %63s", &every, &status, type) != 3 ||
          every < 1 || status < 100 || status > 599) {
        return "error usage: dynamo-error N STATUS TYPE";
      }
      injection_ = Injection{every, DynamoErrorResponse(status, type)};
      requests_ = 0;
      SetMode(Mode::kDynamoError, 0);
    } else if (cmd == "drop") {
      for (auto& c : conns_) {
        if (!c->dead) Kill(c.get());
      }
    } else if (cmd == "stats") {
      size_t active = 0;
      for (auto& c : conns_) active += c->dead ? 0 : 1;
      return "ok mode=" + std::string(ModeName(mode_)) + " accepted=" + std::to_string(accepted_) +
             " active=" + std::to_string(active) + " injected=" + std::to_string(injected_);
    } else {
      return "error unknown command or missing argument: " + line;
    }
    return std::string("ok ") + ModeName(mode_);
  }

  sockaddr_storage target_;
  socklen_t target_len_;
  uint16_t port_;
  int listener_ = -1;
  int control_ = -1;
  Mode mode_ = Mode::kPass;
  int64_t arg_ = 0;
  uint64_t accepted_ = 0;
  Injection injection_;
  int64_t requests_ = 0;  // requests framed since the last dynamo-error command
  uint64_t injected_ = 0;
  std::list<std::unique_ptr<Conn>> conns_;
  std::list<std::unique_ptr<ControlClient>> controls_;
};

[[noreturn]] void Usage() {
  std::fprintf(stderr,
               "usage: fault_proxy --target HOST:PORT [--port P] [--control-port C] "
               "[--mode pass|refuse|reset|blackhole] [--exit-with-parent]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string target, mode_name = "pass";
  long port = 0, control_port = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--exit-with-parent") {
      pid_t parent = getppid();
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent || parent == 1) return 0;  // the parent is gone already
      continue;
    }
    if (i + 1 >= argc) Usage();
    if (a == "--target") {
      target = argv[++i];
    } else if (a == "--port") {
      port = std::strtol(argv[++i], nullptr, 10);
    } else if (a == "--control-port") {
      control_port = std::strtol(argv[++i], nullptr, 10);
    } else if (a == "--mode") {
      mode_name = argv[++i];
    } else {
      Usage();
    }
  }
  size_t colon = target.rfind(':');
  if (target.empty() || colon == std::string::npos || port < 0 || port > 65535 ||
      control_port < 0 || control_port > 65535) {
    Usage();
  }
  std::string host = target.substr(0, colon), service = target.substr(colon + 1);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), service.c_str(), &hints, &res) != 0 || res == nullptr) {
    std::fprintf(stderr, "fault_proxy: cannot resolve %s\n", target.c_str());
    return 1;
  }
  sockaddr_storage addr{};
  std::memcpy(&addr, res->ai_addr, res->ai_addrlen);
  socklen_t addr_len = res->ai_addrlen;
  freeaddrinfo(res);

  Mode mode = Mode::kPass;
  if (mode_name == "refuse") {
    mode = Mode::kRefuse;
  } else if (mode_name == "reset") {
    mode = Mode::kReset;
  } else if (mode_name == "blackhole") {
    mode = Mode::kBlackhole;
  } else if (mode_name != "pass") {
    Usage();
  }

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Proxy proxy(addr, addr_len, static_cast<uint16_t>(port));
  if (!proxy.Start(static_cast<uint16_t>(control_port), mode, 0)) {
    std::perror("fault_proxy: listen");
    return 1;
  }
  proxy.Run();
  return 0;
}
