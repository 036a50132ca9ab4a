#include "sync/dynamo_sink.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "core/log.h"
#include "sync/dynamo_items.h"

namespace machub::sync {
namespace {

using nlohmann::json;

// The test-only crash between a batch write and its cursor mark (dynamo_sink.h).
void FailpointAfterWrite() {
#ifdef MACHUB_FAILPOINTS
  const char* failpoint = std::getenv("MACHUB_FAILPOINT");
  if (failpoint != nullptr && std::string_view(failpoint) == "dynamo_after_write_before_mark") {
    ::kill(::getpid(), SIGKILL);
  }
#endif
}

Status FsyncPath(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return Status(ErrorCode::kIoError, "open for fsync: " + std::string(strerror(errno)));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status(ErrorCode::kIoError, "fsync: " + std::string(strerror(err)));
  return Status::Ok();
}

}  // namespace

Result<DynamoProgress> FileDynamoProgressStore::Load() {
  std::ifstream in(path_);
  if (!in) return DynamoProgress{};
  DynamoProgress p;
  if (!(in >> p.cursor >> p.inflight) || p.cursor < 0 || p.inflight < p.cursor) {
    return Status(ErrorCode::kInvalidArgument, "DynamoDB progress file is malformed");
  }
  return p;
}

Status FileDynamoProgressStore::Save(const DynamoProgress& progress) {
  std::string tmp = path_ + ".tmp";
  {
    FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) {
      return Status(ErrorCode::kIoError, "DynamoDB progress: " + std::string(strerror(errno)));
    }
    int n = std::fprintf(f, "%lld %lld\n", static_cast<long long>(progress.cursor),
                         static_cast<long long>(progress.inflight));
    bool ok = n > 0 && std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
    ok = std::fclose(f) == 0 && ok;
    if (!ok) return Status(ErrorCode::kIoError, "DynamoDB progress: write failed");
  }
  if (std::rename(tmp.c_str(), path_.c_str()) != 0) {
    return Status(ErrorCode::kIoError, "DynamoDB progress: " + std::string(strerror(errno)));
  }
  std::string dir = ".";
  if (size_t slash = path_.rfind('/'); slash != std::string::npos) {
    dir = slash == 0 ? "/" : path_.substr(0, slash);
  }
  return FsyncPath(dir, O_RDONLY | O_DIRECTORY);
}

DynamoSink::DynamoSink(DynamoSinkOptions options, journal::SaleJournal* journal,
                       cloud::DynamoDbClient* client, DynamoProgressStore* progress)
    : options_(std::move(options)),
      journal_(journal),
      client_(client),
      progress_store_(progress),
      clock_(options_.clock != nullptr ? options_.clock : &core::SystemClock()) {
  if (!options_.random) options_.random = DefaultRandomSource();
  if (options_.read_chunk <= 0) options_.read_chunk = 500;
}

DynamoSink::~DynamoSink() { Stop(); }

Status DynamoSink::Load() {
  if (loaded_) return Status::Ok();
  ASSIGN_OR_RETURN(progress_, progress_store_->Load());
  loaded_ = true;
  prune_limit_.store(progress_.cursor);
  std::lock_guard<std::mutex> lock(mutex_);
  status_.cursor = progress_.cursor;
  status_.inflight = progress_.inflight;
  return Status::Ok();
}

void DynamoSink::SleepMs(int64_t ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stop_; });
}

void DynamoSink::Fail(const Status& status, const cloud::DynamoError& error) {
  std::lock_guard<std::mutex> lock(mutex_);
  status_.last_error = status.message();
  if (error.kind == cloud::DynamoErrorKind::kConditionFailed) {
    status_.state = "integrity_alert";
  } else if (error.retryable()) {
    status_.state = "retrying";
  } else {
    status_.state = "error";
  }
}

Status DynamoSink::WriteBatch(const std::vector<json>& items, int max_attempts) {
  std::vector<json> pending = items;
  int attempt = 0;
  while (!pending.empty()) {
    cloud::DynamoError error;
    Result<std::vector<json>> left = client_->BatchPut(options_.sales_table, pending, &error);
    if (left.ok()) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        status_.written += static_cast<int64_t>(pending.size() - left->size());
        status_.unprocessed += static_cast<int64_t>(left->size());
      }
      if (left->empty()) return Status::Ok();
      pending = std::move(*left);  // UnprocessedItems: again, after a backoff
    } else {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (error.kind == cloud::DynamoErrorKind::kThrottled) ++status_.throttled;
        if (error.retryable()) ++status_.retryable_errors;
      }
      Fail(left.status(), error);
      if (!error.retryable()) return left.status();
      if (attempt + 1 >= max_attempts) return left.status();
    }
    ++attempt;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) return Status(ErrorCode::kUnavailable, "DynamoDB sink stopping");
    }
    SleepMs(FullJitterDelayMs(attempt, options_.backoff_base_ms, options_.backoff_cap_ms,
                              options_.random));
  }
  return Status::Ok();
}

Status DynamoSink::WriteConditional(const json& item, int max_attempts) {
  const json names = {{"#s", "seq"}, {"#h", "entry_hash"}};
  const json values = {{":h", item.at("entry_hash")}};
  for (int attempt = 0;; ++attempt) {
    cloud::DynamoError error;
    Status st = client_->PutItem(options_.sales_table, item, "attribute_not_exists(#s) OR #h = :h",
                                 names, values, &error);
    if (st.ok()) {
      std::lock_guard<std::mutex> lock(mutex_);
      ++status_.written;
      ++status_.replayed;
      return st;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (error.kind == cloud::DynamoErrorKind::kThrottled) ++status_.throttled;
      if (error.retryable()) ++status_.retryable_errors;
    }
    if (error.kind == cloud::DynamoErrorKind::kConditionFailed) {
      Status alert(ErrorCode::kIdConflict,
                   "integrity alert: the DynamoDB item of seq " +
                       item.at("seq").at("N").get<std::string>() +
                       " holds another entry than the journal; not overwritten");
      Fail(alert, error);
      core::LogError("dynamodb_integrity_alert",
                     {{"seq", item.at("seq").at("N").get<std::string>()}});
      return alert;
    }
    Fail(st, error);
    if (!error.retryable() || attempt + 1 >= max_attempts) return st;
    SleepMs(FullJitterDelayMs(attempt + 1, options_.backoff_base_ms, options_.backoff_cap_ms,
                              options_.random));
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_) return Status(ErrorCode::kUnavailable, "DynamoDB sink stopping");
  }
}

Result<int64_t> DynamoSink::Step(int max_attempts) {
  RETURN_IF_ERROR(Load());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (status_.state == "integrity_alert") {
      return Status(ErrorCode::kIdConflict, status_.last_error);
    }
  }
  ASSIGN_OR_RETURN(journal::JournalStats stats, journal_->Stats());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    status_.last_seq = stats.last_seq;
  }
  const int64_t start = progress_.cursor;
  // Entries that may have been written before a crash: conditional puts only.
  const bool replay = progress_.inflight > progress_.cursor;
  int64_t upto = replay ? progress_.inflight : stats.last_seq;
  if (upto <= progress_.cursor) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (status_.state != "error") status_.state = "idle";
    return int64_t{0};
  }
  int limit = static_cast<int>(std::min<int64_t>(options_.read_chunk, upto - progress_.cursor));
  ASSIGN_OR_RETURN(std::vector<core::StoredSale> entries, journal_->List(progress_.cursor, limit));
  if (entries.empty()) return int64_t{0};
  if (entries.front().seq != progress_.cursor + 1) {
    return Status(ErrorCode::kInternal, "DynamoDB sink: entry " +
                                            std::to_string(progress_.cursor + 1) +
                                            " is no longer in the journal (pruned too early)");
  }
  std::vector<json> items;
  items.reserve(entries.size());
  int64_t oversized = 0;
  for (const auto& e : entries) {
    ASSIGN_OR_RETURN(DynamoSalesItem item,
                     MakeSalesItem(options_.store_id, e, options_.max_item_bytes));
    if (item.lines_omitted || item.payments_omitted) ++oversized;
    items.push_back(std::move(item.item));
  }
  const int64_t last = entries.back().seq;
  if (replay) {
    for (const auto& item : items) RETURN_IF_ERROR(WriteConditional(item, max_attempts));
  } else {
    progress_.inflight = last;
    RETURN_IF_ERROR(progress_store_->Save(progress_));
    for (size_t i = 0; i < items.size(); i += 25) {
      std::vector<json> chunk(
          items.begin() + static_cast<std::ptrdiff_t>(i),
          items.begin() + static_cast<std::ptrdiff_t>(std::min(items.size(), i + 25)));
      RETURN_IF_ERROR(WriteBatch(chunk, max_attempts));
    }
    FailpointAfterWrite();
  }
  progress_.cursor = last;
  if (progress_.inflight < last) progress_.inflight = last;
  RETURN_IF_ERROR(progress_store_->Save(progress_));
  prune_limit_.store(progress_.cursor);
  std::lock_guard<std::mutex> lock(mutex_);
  status_.cursor = progress_.cursor;
  status_.inflight = progress_.inflight;
  status_.oversized += oversized;
  status_.state = "ok";
  status_.last_error.clear();
  status_.last_success_ms = clock_->NowMs();
  return last - start;
}

void DynamoSink::Run() {
  int failures = 0;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) return;
    }
    // Retryable errors are retried inside the step (backoff) until Stop.
    Result<int64_t> moved = Step(1 << 30);
    if (moved.ok()) {
      failures = 0;
      if (*moved == 0) SleepMs(options_.idle_poll_ms);
      continue;
    }
    ++failures;
    std::string state = status().state;
    if (state == "integrity_alert" || state == "error") {
      SleepMs(options_.error_retry_ms);
    } else {
      SleepMs(FullJitterDelayMs(failures, options_.backoff_base_ms, options_.backoff_cap_ms,
                                options_.random));
    }
  }
}

void DynamoSink::Start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void DynamoSink::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

DynamoSinkStatus DynamoSink::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_;
}

int64_t DynamoSink::PruneLimit() const { return prune_limit_.load(); }

}  // namespace machub::sync
