#include "app/loadgen.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "app/http_client.h"
#include "app/salegen.h"
#include "core/clock.h"
#include "core/currency.h"
#include "core/time_format.h"

namespace machub::app {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using Strand = asio::strand<asio::io_context::executor_type>;

// Acknowledged ids, buffered in memory and appended to the file in batches: one write()
// per batch keeps the loadgen cheap while the 100 ms flush keeps the file close to what
// the hub acknowledged when the hub is killed.
class AckWriter {
 public:
  ~AckWriter() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Open(const std::string& path) {
    if (path.empty()) return Status::Ok();
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      return Status(ErrorCode::kIoError,
                    "cannot open acked file " + path + ": " + std::strerror(errno));
    }
    return Status::Ok();
  }
  bool enabled() const { return fd_ >= 0; }
  void Add(std::string_view id) {
    if (fd_ < 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    pending_.append(id);
    pending_.push_back('\n');
  }
  // Writes everything added so far. Called by one flusher at a time.
  void Flush() {
    if (fd_ < 0) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_.swap(pending_);
    }
    std::string_view data = writing_;
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        if (!reported_) {
          std::fprintf(stderr, "loadgen: cannot write acked file: %s\n", std::strerror(errno));
          reported_ = true;
        }
        break;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    writing_.clear();
  }

 private:
  int fd_ = -1;
  std::mutex mu_;
  std::string pending_;
  std::string writing_;
  bool reported_ = false;
};

struct TerminalStats {
  int64_t sent = 0, answered = 0, acked = 0, created = 0, refunds = 0;
  int64_t retries = 0, retry_ok = 0, retry_mismatch = 0;
  int64_t conn_errors = 0, timeouts = 0, unexpected = 0;
  std::array<int64_t, 600> by_status{};
  std::vector<uint32_t> latency_us;
};

class Terminal;

// State shared by all terminals of one run; immutable after the start except the atomics.
struct Run {
  explicit Run(asio::io_context& io, const LoadgenOptions& o)
      : ioc(io), opt(o), control(io.get_executor()) {}
  asio::io_context& ioc;
  const LoadgenOptions& opt;
  tcp::resolver::results_type endpoints;
  std::string host_header;
  std::string target;
  int minor_units = 2;
  SteadyClock::time_point start;
  SteadyClock::time_point deadline;
  std::atomic<bool> stop{false};
  std::atomic<bool> stopped_on_error{false};
  std::atomic<bool> interrupted{false};
  std::atomic<int> active{0};
  std::atomic<int> error_logs{0};
  AckWriter acks;
  Strand control;  // the flush timer, the signal set and StopAll run here
  std::vector<std::unique_ptr<Terminal>> terminals;
  std::optional<asio::steady_timer> flush_timer;
  std::optional<asio::signal_set> signals;

  void StopAll();
  void OneFinished();
};

void AppendInt(std::string* out, int64_t v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, res.ptr);
}

class Terminal {
 public:
  Terminal(Run& run, int index, const TerminalCredential& cred)
      : run_(run),
        strand_(asio::make_strand(run.ioc)),
        stream_(strand_),
        timer_(strand_),
        gen_(cred.terminal_id, run.opt.currency, run.minor_units,
             run.opt.seed * 0x100000001b3ULL + static_cast<uint64_t>(index) * 2 + 1),
        prng_(run.opt.seed * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(index) * 2),
        terminal_id_(cred.terminal_id) {
    prefix_ = "POST " + run.target + " HTTP/1.1\r\nHost: " + run.host_header +
              "\r\nAuthorization: Bearer " + cred.token +
              "\r\nContent-Type: application/json\r\nUser-Agent: machub-loadgen\r\n"
              "Content-Length: ";
    if (run.opt.rate > 0) {
      mean_gap_s_ = static_cast<double>(run.opt.terminals) / run.opt.rate;
    }
    stats_.latency_us.reserve(4096);
  }

  void Start() {
    asio::post(strand_, [this] {
      if (mean_gap_s_ > 0) {
        // Spread the terminals' first sales over one gap so they do not start in lockstep.
        next_due_ = run_.start + ToDuration(mean_gap_s_ * prng_.Uniform());
      }
      Connect();
    });
  }

  // From any thread: ends this terminal's work as soon as possible.
  void Cancel() {
    asio::post(strand_, [this] {
      timer_.cancel();
      beast::error_code ec;
      stream_.socket().cancel(ec);
    });
  }

  const TerminalStats& stats() const { return stats_; }

 private:
  enum class Kind { kSale, kRefund, kRetry };

  struct Acked {
    std::string request;   // exact bytes as sent
    std::string response;  // body of the 2xx answer
    GeneratedSale info;
  };
  static constexpr int kRing = 16;

  static SteadyClock::duration ToDuration(double seconds) {
    return std::chrono::duration_cast<SteadyClock::duration>(
        std::chrono::duration<double>(seconds));
  }

  bool Done() const { return run_.stop.load() || SteadyClock::now() >= run_.deadline; }

  void Connect() {
    if (Done()) return Finish();
    stream_.expires_after(std::chrono::milliseconds(run_.opt.timeout_ms));
    stream_.async_connect(run_.endpoints,
                          [this](beast::error_code ec, const tcp::endpoint&) { OnConnect(ec); });
  }

  void OnConnect(beast::error_code ec) {
    if (ec) return ConnectionFailed(ec);
    beast::error_code ignored;
    stream_.socket().set_option(tcp::no_delay(true), ignored);
    connected_ = true;
    Next();
  }

  void Next() {
    if (Done()) return Finish();
    if (!connected_) return Connect();
    if (pending_ && attempts_ > 0) return Send();  // a resend goes out at once
    if (!pending_) Prepare();
    if (mean_gap_s_ > 0) {
      SteadyClock::time_point due = next_due_;
      double gap = run_.opt.poisson ? -std::log(1.0 - prng_.Uniform()) * mean_gap_s_ : mean_gap_s_;
      next_due_ += ToDuration(gap);
      SteadyClock::time_point now = SteadyClock::now();
      // A terminal that fell far behind (hub down) does not fire a burst to catch up.
      if (next_due_ < now - std::chrono::seconds(1)) next_due_ = now;
      if (due > run_.deadline) return Finish();
      if (due > now) {
        timer_.expires_at(due);
        timer_.async_wait([this](beast::error_code) {
          if (Done()) return Finish();
          Send();
        });
        return;
      }
    }
    Send();
  }

  void Prepare() {
    double r = prng_.Uniform() * 100.0;
    if (r < run_.opt.retry_percent && ring_size_ > 0) {
      kind_ = Kind::kRetry;
      retry_slot_ = static_cast<int>(prng_.Below(static_cast<uint64_t>(ring_size_)));
      request_ = ring_[retry_slot_].request;
      ++stats_.retries;
    } else if (r < run_.opt.retry_percent + run_.opt.refund_percent && SaleInRing(&retry_slot_)) {
      kind_ = Kind::kRefund;
      gen_.NextRefund(ring_[retry_slot_].info, CreatedAt(), &body_, &info_);
      ring_[retry_slot_].info.refunded = true;
      BuildRequest();
    } else {
      kind_ = Kind::kSale;
      gen_.NextSale(CreatedAt(), &body_, &info_);
      BuildRequest();
    }
    pending_ = true;
    attempts_ = 0;
  }

  bool SaleInRing(int* slot) {
    if (ring_size_ == 0) return false;
    int start = static_cast<int>(prng_.Below(static_cast<uint64_t>(ring_size_)));
    for (int i = 0; i < ring_size_; ++i) {
      int k = (start + i) % ring_size_;
      if (!ring_[k].info.refund && !ring_[k].info.refunded) {
        *slot = k;
        return true;
      }
    }
    return false;
  }

  std::string CreatedAt() { return core::FormatRfc3339(core::SystemClock().NowMs()); }

  void BuildRequest() {
    request_.clear();
    request_.append(prefix_);
    AppendInt(&request_, static_cast<int64_t>(body_.size()));
    request_.append("\r\n\r\n");
    request_.append(body_);
  }

  void Send() {
    ++attempts_;
    ++stats_.sent;
    send_time_ = SteadyClock::now();
    stream_.expires_after(std::chrono::milliseconds(run_.opt.timeout_ms));
    asio::async_write(stream_, asio::buffer(request_),
                      [this](beast::error_code ec, size_t) { OnWrite(ec); });
  }

  void OnWrite(beast::error_code ec) {
    if (ec) return ConnectionFailed(ec);
    parser_.emplace();
    parser_->body_limit(1 << 20);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [this](beast::error_code e, size_t) { OnRead(e); });
  }

  void OnRead(beast::error_code ec) {
    if (ec) return ConnectionFailed(ec);
    auto latency = SteadyClock::now() - send_time_;
    int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(latency).count();
    stats_.latency_us.push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
    ++stats_.answered;
    auto& res = parser_->get();
    int status = static_cast<int>(res.result_int());
    if (status >= 0 && status < static_cast<int>(stats_.by_status.size())) {
      ++stats_.by_status[static_cast<size_t>(status)];
    }
    bool keep_alive = res.keep_alive();
    bool backoff = false;
    if (status == 200 || status == 201) {
      if (kind_ == Kind::kRetry) {
        if (status == 200 && res.body() == ring_[retry_slot_].response) {
          ++stats_.retry_ok;
        } else {
          ++stats_.retry_mismatch;
          LogUnexpected("retry answer differs from the original", status, res.body());
        }
      } else {
        Acknowledge(status, std::move(res.body()));
      }
      pending_ = false;
    } else if (status == 429 || status >= 500) {
      backoff = true;  // not stored (or not known to be): resend the same bytes later
    } else {
      ++stats_.unexpected;
      LogUnexpected("unexpected answer", status, res.body());
      pending_ = false;
      if (run_.opt.stop_on_error) {
        run_.stopped_on_error = true;
        run_.StopAll();
      }
    }
    if (!keep_alive) {
      // The hub closed the connection after answering: reconnect for the next request.
      ++stats_.conn_errors;
      CloseStream();
    }
    if (backoff) return Backoff();
    Next();
  }

  void Acknowledge(int status, std::string&& response) {
    ++stats_.acked;
    if (status == 201) ++stats_.created;
    if (info_.refund) ++stats_.refunds;
    run_.acks.Add(info_.id);
    // Keep the exact bytes for later deliberate retries; swapping hands the slot's old
    // buffer back to request_, so the steady state does not allocate.
    Acked& slot = ring_[ring_next_];
    slot.request.swap(request_);
    slot.response = std::move(response);
    slot.info = info_;
    ring_next_ = (ring_next_ + 1) % kRing;
    ring_size_ = std::min(ring_size_ + 1, kRing);
  }

  void LogUnexpected(const char* what, int status, const std::string& body) {
    if (run_.error_logs.fetch_add(1) >= run_.opt.max_error_logs) return;
    std::string shown = body.substr(0, 300);
    std::fprintf(stderr, "loadgen: terminal %s: %s: HTTP %d %s\n", terminal_id_.c_str(), what,
                 status, shown.c_str());
  }

  void ConnectionFailed(beast::error_code ec) {
    CloseStream();
    if (run_.stop.load()) return Finish();  // cancelled: not the hub's fault
    ++stats_.conn_errors;
    if (ec == beast::error::timeout) ++stats_.timeouts;
    if (run_.opt.stop_on_error) {
      if (run_.error_logs.fetch_add(1) < run_.opt.max_error_logs) {
        std::fprintf(stderr, "loadgen: terminal %s: connection error: %s\n", terminal_id_.c_str(),
                     ec.message().c_str());
      }
      run_.stopped_on_error = true;
      run_.StopAll();
      return Finish();
    }
    Backoff();
  }

  void Backoff() {
    if (Done()) return Finish();
    timer_.expires_after(std::chrono::milliseconds(50 + prng_.Below(151)));
    timer_.async_wait([this](beast::error_code) { Next(); });
  }

  void CloseStream() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    buffer_.clear();
    connected_ = false;
  }

  void Finish() {
    if (finished_) return;
    finished_ = true;
    CloseStream();
    run_.OneFinished();
  }

  Run& run_;
  Strand strand_;
  beast::tcp_stream stream_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
  SaleGenerator gen_;
  Prng prng_;
  std::string terminal_id_;
  std::string prefix_;
  std::string body_;
  std::string request_;
  GeneratedSale info_;
  Kind kind_ = Kind::kSale;
  bool pending_ = false;  // request_ holds a request not yet answered 2xx (or dropped)
  int attempts_ = 0;
  int retry_slot_ = 0;
  bool connected_ = false;
  bool finished_ = false;
  double mean_gap_s_ = 0;
  SteadyClock::time_point next_due_;
  SteadyClock::time_point send_time_;
  std::array<Acked, kRing> ring_;
  int ring_size_ = 0;
  int ring_next_ = 0;
  TerminalStats stats_;
};

void Run::StopAll() {
  stop = true;
  asio::post(control, [this] {
    for (auto& t : terminals) t->Cancel();
  });
}

void Run::OneFinished() {
  if (active.fetch_sub(1) != 1) return;
  asio::post(control, [this] {
    if (flush_timer) flush_timer->cancel();
    if (signals) {
      beast::error_code ignored;
      signals->cancel(ignored);
    }
  });
}

void ScheduleFlush(Run* run) {
  run->flush_timer->expires_after(std::chrono::milliseconds(100));
  run->flush_timer->async_wait([run](beast::error_code ec) {
    run->acks.Flush();
    if (!ec && run->active.load() > 0) ScheduleFlush(run);
  });
}

double Percentile(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1] / 1000.0;
}

double Round3(double x) { return std::round(x * 1000.0) / 1000.0; }

}  // namespace

Result<std::vector<TerminalCredential>> LoadCredentialsFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Status(ErrorCode::kInvalidArgument,
                  "cannot read tokens file " + path + ": " + std::strerror(errno));
  }
  std::vector<TerminalCredential> out;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream fields(line);
    TerminalCredential cred;
    std::string extra;
    if (!(fields >> cred.terminal_id)) continue;
    if (!(fields >> cred.token) || (fields >> extra)) {
      return Status(ErrorCode::kInvalidArgument,
                    path + " line " + std::to_string(line_no) + ": expected `TERMINAL_ID TOKEN`");
    }
    out.push_back(std::move(cred));
  }
  return out;
}

Result<LoadgenReport> RunLoadgen(const LoadgenOptions& opt) {
  auto invalid = [](std::string m) { return Status(ErrorCode::kInvalidArgument, std::move(m)); };
  if (opt.terminals < 1 || opt.terminals > 100'000) return invalid("--terminals must be 1..100000");
  if (!(opt.duration_s > 0)) return invalid("--duration must be > 0 seconds");
  if (!(opt.rate >= 0)) return invalid("--rate must be >= 0");
  if (!(opt.retry_percent >= 0 && opt.refund_percent >= 0 &&
        opt.retry_percent + opt.refund_percent <= 100)) {
    return invalid("--retry-percent and --refund-percent must be >= 0 and add up to <= 100");
  }
  if (opt.threads < 1 || opt.threads > 16) return invalid("--threads must be 1..16");
  if (opt.timeout_ms < 1) return invalid("--timeout-ms must be > 0");
  const core::Currency* currency = core::FindCurrency(opt.currency);
  if (currency == nullptr) return invalid("--currency: unknown currency " + opt.currency);
  ASSIGN_OR_RETURN(Url url, ParseUrl(opt.url));
  if (url.https) return invalid("loadgen supports http:// URLs only");
  ASSIGN_OR_RETURN(std::vector<TerminalCredential> creds, LoadCredentialsFile(opt.tokens_file));
  if (static_cast<int>(creds.size()) < opt.terminals) {
    return invalid("tokens file " + opt.tokens_file + " has " + std::to_string(creds.size()) +
                   " terminals, --terminals asks for " + std::to_string(opt.terminals) +
                   " (create more with `machub token create --count N`)");
  }

  LoadgenOptions effective = opt;
  if (effective.seed == 0) {
    // The same seed gives the same sale ids: a second run against the same hub would get
    // 409 id_conflict for every sale. Random unless asked for.
    std::random_device rd;
    effective.seed = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
                     static_cast<uint64_t>(SteadyClock::now().time_since_epoch().count());
    if (effective.seed == 0) effective.seed = 1;
  }
  asio::io_context ioc(opt.threads);
  Run run(ioc, effective);
  RETURN_IF_ERROR(run.acks.Open(opt.acked_file));
  {
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    run.endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) {
      return Status(ErrorCode::kUnavailable, "cannot resolve " + url.host + ": " + ec.message());
    }
  }
  run.host_header = url.HostHeader();
  run.target = url.path + "/v1/sales";
  run.minor_units = currency->minor_units;
  for (int i = 0; i < opt.terminals; ++i) {
    run.terminals.push_back(std::make_unique<Terminal>(run, i, creds[static_cast<size_t>(i)]));
  }
  run.active = opt.terminals;
  run.flush_timer.emplace(run.control);
  if (opt.handle_signals) {
    run.signals.emplace(run.control, SIGINT, SIGTERM);
    run.signals->async_wait([&run](beast::error_code ec, int) {
      if (ec) return;
      run.interrupted = true;
      run.StopAll();
    });
  }

  run.start = SteadyClock::now();
  run.deadline = run.start + std::chrono::duration_cast<SteadyClock::duration>(
                                 std::chrono::duration<double>(opt.duration_s));
  asio::post(run.control, [&run] { ScheduleFlush(&run); });
  for (auto& t : run.terminals) t->Start();

  std::vector<std::thread> extra;
  for (int i = 1; i < opt.threads; ++i) extra.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& th : extra) th.join();
  auto end = std::min(SteadyClock::now(), run.deadline);
  run.acks.Flush();

  LoadgenReport report;
  report.terminals = opt.terminals;
  report.seed = effective.seed;
  report.elapsed_s = std::chrono::duration<double>(end - run.start).count();
  std::vector<uint32_t> latencies;
  for (const auto& t : run.terminals) {
    const TerminalStats& s = t->stats();
    report.sent += s.sent;
    report.answered += s.answered;
    report.acked += s.acked;
    report.created += s.created;
    report.refunds += s.refunds;
    report.retries += s.retries;
    report.retry_ok += s.retry_ok;
    report.retry_mismatch += s.retry_mismatch;
    report.conn_errors += s.conn_errors;
    report.timeouts += s.timeouts;
    report.unexpected += s.unexpected;
    for (size_t code = 0; code < s.by_status.size(); ++code) {
      if (s.by_status[code] > 0) report.by_status[static_cast<int>(code)] += s.by_status[code];
    }
    latencies.insert(latencies.end(), s.latency_us.begin(), s.latency_us.end());
  }
  std::sort(latencies.begin(), latencies.end());
  report.p50_ms = Percentile(latencies, 0.50);
  report.p95_ms = Percentile(latencies, 0.95);
  report.p99_ms = Percentile(latencies, 0.99);
  report.max_ms = latencies.empty() ? 0 : latencies.back() / 1000.0;
  report.throughput_per_s =
      report.elapsed_s > 0 ? static_cast<double>(report.acked) / report.elapsed_s : 0;
  report.stopped_on_error = run.stopped_on_error.load();
  report.interrupted = run.interrupted.load();
  return report;
}

std::string LoadgenReport::ToJson() const {
  nlohmann::ordered_json by = nlohmann::ordered_json::object();
  // 201, 200 and 503 always appear so that scripts need no existence checks.
  std::map<int, int64_t> statuses = {{200, 0}, {201, 0}, {503, 0}};
  for (const auto& [code, n] : by_status) statuses[code] += n;
  for (const auto& [code, n] : statuses) by[std::to_string(code)] = n;
  nlohmann::ordered_json j = {
      {"sent", sent},
      {"answered", answered},
      {"acked", acked},
      {"created", created},
      {"refunds", refunds},
      {"throughput_per_s", Round3(throughput_per_s)},
      {"p50_ms", Round3(p50_ms)},
      {"p95_ms", Round3(p95_ms)},
      {"p99_ms", Round3(p99_ms)},
      {"max_ms", Round3(max_ms)},
      {"by_status", by},
      {"conn_errors", conn_errors},
      {"timeouts", timeouts},
      {"retries", retries},
      {"retry_ok", retry_ok},
      {"retry_mismatch", retry_mismatch},
      {"unexpected", unexpected},
      {"terminals", terminals},
      {"seed", seed},
      {"duration_s", Round3(elapsed_s)},
      {"stopped_on_error", stopped_on_error},
      {"interrupted", interrupted},
  };
  return j.dump();
}

std::string LoadgenReport::ToTable() const {
  char buf[256];
  std::string out;
  auto row = [&](const char* name, const std::string& value) {
    std::snprintf(buf, sizeof buf, "  %-18s %s\n", name, value.c_str());
    out += buf;
  };
  auto num = [](double x, int decimals) {
    char b[64];
    std::snprintf(b, sizeof b, "%.*f", decimals, x);
    return std::string(b);
  };
  out += "machub loadgen\n";
  row("terminals", std::to_string(terminals) + " (seed " + std::to_string(seed) + ")");
  row("duration", num(elapsed_s, 2) + " s");
  row("sent", std::to_string(sent));
  row("answered", std::to_string(answered));
  row("acked", std::to_string(acked) + " (" + std::to_string(created) + " created, " +
                   std::to_string(refunds) + " refunds)");
  row("throughput", num(throughput_per_s, 1) + " acked/s");
  row("latency p50", num(p50_ms, 3) + " ms");
  row("latency p95", num(p95_ms, 3) + " ms");
  row("latency p99", num(p99_ms, 3) + " ms");
  row("latency max", num(max_ms, 3) + " ms");
  std::string statuses;
  for (const auto& [code, n] : by_status) {
    if (!statuses.empty()) statuses += "  ";
    statuses += std::to_string(code) + ":" + std::to_string(n);
  }
  row("by status", statuses.empty() ? "-" : statuses);
  row("retries", std::to_string(retries) + " (" + std::to_string(retry_ok) + " ok, " +
                     std::to_string(retry_mismatch) + " mismatched)");
  row("conn errors", std::to_string(conn_errors) + " (" + std::to_string(timeouts) + " timeouts)");
  row("unexpected", std::to_string(unexpected));
  if (stopped_on_error) row("stopped", "on error (--stop-on-error)");
  if (interrupted) row("stopped", "by signal");
  return out;
}

bool LoadgenReport::Failed() const {
  return retry_mismatch > 0 || unexpected > 0 || stopped_on_error;
}

}  // namespace machub::app
