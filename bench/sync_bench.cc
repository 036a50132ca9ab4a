// sync_bench: drains a large journal backlog to a store and prints throughput, wire bytes
// per sale against raw JSON bytes per sale, and the drain's peak RSS.
//
// A benchmark, not part of the hub: built from bench/ (target sync_bench), arguments
// parsed with CLI11 (`sync_bench --help`).
//
//   sync_bench [--sales N] [--format jsonl|csv] [--level 1..9] [--batch-sales N] [--page-sales N]
//              [--target rgw|dir|null] [--work DIR] [--endpoint URL --bucket B
//              --access-key K --secret-key S] [--appends-per-s R]
//              [--threaded]  (drain with the upload thread, as `machub serve` does)
//   sync_bench --drain-only --work DIR --target null --appends-per-s R --baseline-ms MS
//              (append latency with no drain, for comparison)
//   sync_bench --fill-only --work DIR --sales N   (only phase 1: a journal to copy and drain
//              several times; bench/sync_drain_bench.sh)
//
// Phases: (1) fill a fresh journal with N generated sales (1-4 lines, cash or card);
// (2) in a FRESH child process (so the fill's heap does not count), open the journal and
// run Uploader::RunOnce to the target, sampling VmRSS every 10 ms; the child prints one
// JSON line of figures. Targets: rgw (a throw-away Ceph RGW via tests/peers/rgw.sh; needs
// a build with tests), an existing S3 endpoint (--endpoint ...), dir (LocalSink without
// fsync), null (accepts every PUT: encoding + journal bookkeeping only).

#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cloud/credentials.h"
#include "cloud/local_sink.h"
#include "cloud/s3_client.h"
#include "core/log.h"
#include "core/sale_codec.h"
#include "journal/sqlite_journal.h"
#include "sync/uploader.h"
#ifdef MACHUB_PEERS_RGW_SH
#include "test_peers.h"
#endif

extern char** environ;

namespace {

using namespace machub;
using nlohmann::json;

struct Args {
  int64_t sales = 200000;
  std::string format = "jsonl";
  int level = sync::kDefaultGzipLevel;
  int64_t batch_sales = 5000;
  int page_sales = sync::CutOptions{}.page_sales;  // rows per journal read
  std::string target = "rgw";
  std::string work;
  std::string endpoint, bucket = "machub-bench", access_key, secret_key;
  bool drain_only = false;
  int64_t appends_per_s = 0;  // sales appended during the drain, for their latency
  int64_t baseline_ms = 0;    // instead of draining: only append for this long
  bool threaded = false;      // drain with the upload thread (as `machub serve`), not RunOnce
  bool fill_only = false;     // stop after filling the journal
};

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int64_t RssKb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return 0;
}

std::string SaleBody(int64_t i) {
  static const char* kNames[] = {"Coffee beans, medium roast", "Oat milk 1l", "Croissant",
                                 "Sparkling water 0.5l", "Dark chocolate 70%"};
  json sale;
  sale["id"] = "bench-" + std::to_string(i);
  sale["terminal_id"] = "T" + std::to_string(1 + i % 12);
  sale["created_at"] = "2026-11-27T10:15:00Z";
  sale["currency"] = "USD";
  sale["lines"] = json::array();
  const int lines = 1 + static_cast<int>((i * 7) % 4);
  int64_t cents = 0;
  for (int l = 0; l < lines; ++l) {
    const int64_t price = 100 + (i * 31 + l * 17) % 900;
    cents += price;
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%lld.%02lld", static_cast<long long>(price / 100),
                  static_cast<long long>(price % 100));
    sale["lines"].push_back({{"sku", "SKU-" + std::to_string(1000 + (i + l * 13) % 500)},
                             {"name", kNames[(i + l) % 5]},
                             {"qty", std::to_string(1 + l % 3)},
                             {"unit_price", buf},
                             {"tax_rate", "0.0825"}});
  }
  if (i % 3 == 0) {
    // Change is given only from cash: the card pays a part, cash the rest and more.
    sale["payments"] = {
        {{"method", "card"},
         {"amount", "1.00"},
         {"card_token", "tok_" + std::to_string(i % 100000)},
         {"last4", "4242"},
         {"brand", "visa"}},
        {{"method", "cash"}, {"amount", std::to_string(cents * 4 / 100 + 10) + ".00"}}};
  } else {
    sale["payments"] = {
        {{"method", "cash"}, {"amount", std::to_string(cents * 4 / 100 + 10) + ".00"}}};
  }
  return sale.dump();
}

journal::JournalOptions JournalOpts(const std::string& work) {
  journal::JournalOptions o;
  o.path = work + "/journal.db";
  o.store_id = "S001";
  return o;
}

int Fill(const Args& args) {
  auto journal = journal::SqliteJournal::Open(JournalOpts(args.work));
  if (!journal.ok()) {
    std::fprintf(stderr, "open: %s\n", journal.status().ToString().c_str());
    return 1;
  }
  auto t0 = std::chrono::steady_clock::now();
  std::atomic<int64_t> failed{0};
  std::atomic<int64_t> done{0};
  std::mutex mu;
  std::condition_variable cv;
  constexpr int64_t kInFlight = 4096;
  for (int64_t i = 0; i < args.sales; ++i) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return i - done.load() < kInFlight; });
    }
    Result<core::Sale> sale = core::DecodeSale(SaleBody(i));
    if (!sale.ok()) {
      std::fprintf(stderr, "decode: %s\n", sale.status().ToString().c_str());
      return 1;
    }
    (*journal)->Append(std::move(*sale), [&](Result<journal::Receipt> r) {
      if (!r.ok()) failed.fetch_add(1);
      {
        std::lock_guard<std::mutex> lock(mu);
        done.fetch_add(1);
      }
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done.load() == args.sales; });
  }
  (*journal)->Close();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "filled %lld sales in %.1f s (%lld failed)\n",
               static_cast<long long>(args.sales), s, static_cast<long long>(failed.load()));
  return failed.load() == 0 ? 0 : 1;
}

// Accepts everything: measures the uploader without a network.
class NullStore final : public cloud::ObjectStore {
 public:
  Result<cloud::PutOutcome> Put(const cloud::PutRequest&) override {
    return cloud::PutOutcome::kCreated;
  }
  Result<cloud::ObjectInfo> Head(const std::string&) override {
    return Status(ErrorCode::kNotFound, "null");
  }
  Result<cloud::GetResult> Get(const std::string&, const std::string&) override {
    return Status(ErrorCode::kNotFound, "null");
  }
  Result<cloud::ListResult> List(const std::string&, const std::string&) override {
    return cloud::ListResult{};
  }
  Status Probe() override { return Status::Ok(); }
  std::string Describe() const override { return "null://"; }
};

int Drain(const Args& args) {
  core::SetLogLevel(core::LogLevel::kWarn);
  const int64_t rss_start = RssKb();
  auto journal = journal::SqliteJournal::Open(JournalOpts(args.work));
  if (!journal.ok()) return 1;
  std::unique_ptr<cloud::CredentialsProvider> creds;
  std::unique_ptr<cloud::ObjectStore> store;
  std::atomic<bool> cancel{false};
  if (args.target == "null") {
    store = std::make_unique<NullStore>();
  } else if (args.target == "dir") {
    auto sink = cloud::LocalSink::Open({.root = args.work + "/sink", .fsync = false});
    if (!sink.ok()) return 1;
    store = std::move(*sink);
  } else {
    cloud::CredentialsOptions co;
    co.access_key_id = args.access_key;
    co.secret_access_key = args.secret_key;
    auto provider = cloud::MakeDefaultCredentialsProvider(co);
    if (!provider.ok()) return 1;
    creds = std::move(*provider);
    cloud::S3Options so;
    so.endpoint = args.endpoint;
    so.bucket = args.bucket;
    so.addressing = cloud::S3Addressing::kPathStyle;
    so.credentials = creds.get();
    so.cancel = &cancel;
    auto client = cloud::S3Client::Create(so);
    if (!client.ok()) return 1;
    store = std::move(*client);
  }
  sync::UploaderOptions uo;
  // As the hub runs them: `sync --once` alone on its folder at normal priority, the upload
  // thread of `serve` (--threaded) below the journal writer.
  uo.thread_nice = args.threaded ? 10 : 0;
  uo.cut.store_id = "S001";
  uo.cut.prefix = "bench";
  uo.cut.format = *sync::ParseBatchFormat(args.format);
  uo.cut.gzip_level = args.level;
  uo.cut.max_sales = args.batch_sales;
  uo.cut.page_sales = args.page_sales;
  uo.prune_interval_ms = 0;
  uo.cut.max_age_ms = 0;
  auto uploader = sync::Uploader::Create(uo, journal->get(), store.get());
  if (!uploader.ok()) {
    std::fprintf(stderr, "uploader: %s\n", uploader.status().ToString().c_str());
    return 1;
  }
  std::atomic<bool> sampling{true};
  std::atomic<int64_t> max_rss{RssKb()};
  std::thread sampler([&] {
    while (sampling.load()) {
      int64_t rss = RssKb();
      if (rss > max_rss.load()) max_rss.store(rss);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  // Optional: sales appended while the drain runs, and how long each took to commit.
  std::vector<int64_t> latencies_us;
  std::thread appender([&] {
    if (args.appends_per_s <= 0) return;
    const auto period = std::chrono::microseconds(1'000'000 / args.appends_per_s);
    auto next = std::chrono::steady_clock::now();
    for (int64_t i = 0; sampling.load(); ++i) {
      Result<core::Sale> sale = core::DecodeSale(SaleBody(10'000'000'000LL + i));
      if (!sale.ok()) {
        std::fprintf(stderr, "decode: %s\n", sale.status().ToString().c_str());
        return;
      }
      auto a = std::chrono::steady_clock::now();
      Result<journal::Receipt> r = (*journal)->Append(std::move(*sale)).get();
      if (r.ok()) {
        latencies_us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now() - a)
                                   .count());
      }
      next += period;
      std::this_thread::sleep_until(next);
    }
  });
  const double cpu0 = CpuSeconds();
  auto t0 = std::chrono::steady_clock::now();
  Result<sync::OnceProgress> done = sync::OnceProgress{};
  if (args.baseline_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(args.baseline_ms));
  } else if (args.threaded) {
    const int64_t target = (*journal)->GetSyncBounds()->last_seq;
    (*uploader)->Start();
    while ((*journal)->GetSyncBounds()->batched_seq < target ||
           !(*journal)->ListBatches(true)->empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    (*uploader)->Stop();
    int64_t sales = 0;
    Result<std::vector<journal::BatchRecord>> all = (*journal)->ListBatches(false, 0, 1000000);
    if (all.ok()) {
      for (const auto& b : *all) sales += b.sales();
    }
    done->sales = sales;
    done->batches = 1;
  } else {
    done = (*uploader)->RunOnce(sync::OnceOptions{});
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = CpuSeconds() - cpu0;
  sampling.store(false);
  sampler.join();
  appender.join();
  if (!done.ok()) {
    std::fprintf(stderr, "drain: %s\n", done.status().ToString().c_str());
    return 1;
  }
  int64_t raw = 0;
  int64_t wire = 0;
  Result<std::vector<journal::BatchRecord>> batches = (*journal)->ListBatches(false, 0, 1000000);
  if (batches.ok()) {
    for (const auto& b : *batches) {
      raw += b.raw_bytes;
      wire += b.gz_bytes;
    }
  }
  json out;
  out["target"] = args.target;
  out["format"] = args.format;
  out["level"] = args.level;
  out["batch_sales"] = args.batch_sales;
  out["page_sales"] = args.page_sales;
  out["sales"] = done->sales;
  out["batches"] = done->batches;
  out["seconds"] = s;
  out["sales_per_s"] = static_cast<int64_t>(static_cast<double>(done->sales) / s);
  out["raw_bytes_per_sale"] = done->sales > 0 ? raw / done->sales : 0;
  out["wire_bytes_per_sale"] = done->sales > 0 ? wire / done->sales : 0;
  out["wire_to_raw_percent"] =
      raw > 0 ? 100.0 * static_cast<double>(wire) / static_cast<double>(raw) : 0;
  out["cpu_seconds"] = cpu;
  out["sales_per_cpu_s"] = static_cast<int64_t>(static_cast<double>(done->sales) / cpu);
  if (!latencies_us.empty()) {
    std::sort(latencies_us.begin(), latencies_us.end());
    out["append_during_drain"] = {{"count", latencies_us.size()},
                                  {"p50_us", latencies_us[latencies_us.size() / 2]},
                                  {"p99_us", latencies_us[latencies_us.size() * 99 / 100]},
                                  {"max_us", latencies_us.back()}};
  }
  const journal::SqliteJournal::WriterStats ws = (*journal)->GetWriterStats();
  out["journal"] = {{"max_commit_us", ws.max_commit_us},
                    {"max_group_us", ws.max_group_us},
                    {"writer_checkpoints", ws.writer_checkpoints},
                    {"max_writer_checkpoint_us", ws.max_writer_checkpoint_us}};
  out["rss_start_kb"] = rss_start;
  out["rss_max_kb"] = max_rss.load();
  std::printf("%s\n", out.dump().c_str());
  (*journal)->Close();
  return 0;
}

int RunChild(const Args& args, const std::vector<std::string>& extra) {
  std::vector<std::string> argv_s = {"/proc/self/exe",  "--drain-only",
                                     "--work",          args.work,
                                     "--format",        args.format,
                                     "--level",         std::to_string(args.level),
                                     "--batch-sales",   std::to_string(args.batch_sales),
                                     "--page-sales",    std::to_string(args.page_sales),
                                     "--target",        args.target,
                                     "--appends-per-s", std::to_string(args.appends_per_s)};
  if (args.threaded) argv_s.push_back("--threaded");
  argv_s.insert(argv_s.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) != 0) return 1;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  CLI::App app{"sync_bench: drains a journal backlog to a store and prints its figures"};
  app.add_option("--sales", args.sales, "Sales in the generated journal")
      ->check(CLI::PositiveNumber);
  app.add_option("--format", args.format, "Object format")->check(CLI::IsMember({"jsonl", "csv"}));
  app.add_option("--level", args.level, "gzip level")->check(CLI::Range(1, 9));
  app.add_option("--batch-sales", args.batch_sales, "Sales per object")->check(CLI::PositiveNumber);
  app.add_option("--page-sales", args.page_sales, "Rows per journal read while encoding")
      ->check(CLI::PositiveNumber);
  app.add_option("--target", args.target, "Where the drain goes")
      ->check(CLI::IsMember({"rgw", "dir", "null", "s3"}));
  app.add_option("--work", args.work, "Working folder (kept; default: a temporary one)");
  app.add_option("--endpoint", args.endpoint, "An existing S3 endpoint instead of a new RGW");
  app.add_option("--bucket", args.bucket, "Bucket (created)");
  app.add_option("--access-key", args.access_key, "Access key for --endpoint");
  app.add_option("--secret-key", args.secret_key, "Secret key for --endpoint");
  app.add_flag("--drain-only", args.drain_only, "Phase 2 only (the child process)");
  app.add_option("--appends-per-s", args.appends_per_s, "Sales appended during the drain")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--baseline-ms", args.baseline_ms, "Only append for this long (no drain)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--threaded", args.threaded, "Drain with the upload thread, as `machub serve`");
  app.add_flag("--fill-only", args.fill_only, "Stop after filling the journal");
  CLI11_PARSE(app, argc, argv);
  if (args.drain_only) return Drain(args);

  bool own_work = args.work.empty();
  if (args.fill_only && own_work) {
    std::fprintf(stderr, "--fill-only needs --work DIR\n");
    return 2;
  }
  if (!own_work) std::filesystem::create_directories(args.work);
  if (own_work) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sync_bench.XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) return 1;
    args.work = tmpl;
  }
  core::SetLogLevel(core::LogLevel::kWarn);
  if (!std::filesystem::exists(args.work + "/journal.db")) {
    if (Fill(args) != 0) return 1;
  }
  if (args.fill_only) return 0;
  std::vector<std::string> extra;
#ifdef MACHUB_PEERS_RGW_SH
  std::unique_ptr<testing::RgwPeer> rgw;
#endif
  if (args.target == "rgw" && args.endpoint.empty()) {
#ifdef MACHUB_PEERS_RGW_SH
    std::string why;
    rgw = testing::RgwPeer::Start(args.work + "/rgw", &why);
    if (rgw == nullptr) {
      std::fprintf(stderr, "rgw: %s\n", why.c_str());
      return 1;
    }
    args.endpoint = rgw->endpoint();
    args.access_key = rgw->access_key();
    args.secret_key = rgw->secret_key();
#else
    std::fprintf(stderr, "this build cannot start RGW; pass --endpoint ...\n");
    return 1;
#endif
  }
  if (!args.endpoint.empty()) {
    cloud::CredentialsOptions co;
    co.access_key_id = args.access_key;
    co.secret_access_key = args.secret_key;
    auto creds = cloud::MakeDefaultCredentialsProvider(co);
    cloud::S3Options so;
    so.endpoint = args.endpoint;
    so.bucket = args.bucket;
    so.addressing = cloud::S3Addressing::kPathStyle;
    so.credentials = creds->get();
    auto client = cloud::S3Client::Create(so);
    Status created = client.ok() ? (*client)->CreateBucket() : client.status();
    if (!created.ok()) {
      std::fprintf(stderr, "bucket: %s\n", created.ToString().c_str());
      return 1;
    }
    extra = {"--endpoint",   args.endpoint,   "--bucket",     args.bucket,
             "--access-key", args.access_key, "--secret-key", args.secret_key};
    if (args.target == "rgw") args.target = "s3";
  }
  int rc = RunChild(args, extra);
#ifdef MACHUB_PEERS_RGW_SH
  if (rgw) rgw->Stop();
#endif
  if (own_work) std::filesystem::remove_all(args.work);
  return rc;
}
