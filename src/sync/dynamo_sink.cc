#include "sync/dynamo_sink.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
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

}  // namespace

DynamoSink::DynamoSink(DynamoSinkOptions options, journal::Ledger* ledger,
                       cloud::DynamoDbClient* client)
    : options_(std::move(options)),
      ledger_(ledger),
      client_(client),
      clock_(options_.clock != nullptr ? options_.clock : &core::SystemClock()) {
  if (!options_.random) options_.random = DefaultRandomSource();
  if (options_.read_chunk <= 0) options_.read_chunk = 500;
}

DynamoSink::~DynamoSink() { Stop(); }

Status DynamoSink::Register() {
  if (loaded_) return Status::Ok();
  ASSIGN_OR_RETURN(journal::SinkProgress progress, ledger_->RegisterSink(kDynamoSinkName));
  cursor_ = progress.delivered_seq;
  loaded_ = true;
  std::lock_guard<std::mutex> lock(mutex_);
  status_.cursor = cursor_;
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
  RETURN_IF_ERROR(Register());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (status_.state == "integrity_alert") {
      return Status(ErrorCode::kIdConflict, status_.last_error);
    }
  }
  ASSIGN_OR_RETURN(journal::SyncBounds bounds, ledger_->GetSyncBounds());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    status_.last_seq = bounds.last_seq;
  }
  const int64_t start = cursor_;
  if (bounds.last_seq <= cursor_) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (status_.state != "error") status_.state = "idle";
    return int64_t{0};
  }
  int limit = static_cast<int>(std::min<int64_t>(options_.read_chunk, bounds.last_seq - cursor_));
  ASSIGN_OR_RETURN(std::vector<core::StoredSale> entries, ledger_->List(cursor_, limit));
  if (entries.empty()) return int64_t{0};
  if (entries.front().seq != cursor_ + 1) {
    return Status(ErrorCode::kInternal, "DynamoDB sink: entry " + std::to_string(cursor_ + 1) +
                                            " is no longer in the journal (pruned too early)");
  }
  std::vector<json> items;
  items.reserve(entries.size());
  int64_t oversized = 0;
  for (const auto& e : entries) {
    ASSIGN_OR_RETURN(DynamoSalesItem item,
                     MakeSalesItem(options_.store_id, e, options_.max_item_bytes));
    if (item.lines_omitted || item.payments_omitted || item.figures_omitted) ++oversized;
    items.push_back(std::move(item.item));
  }
  const int64_t last = entries.back().seq;
  if (replay_) {
    for (const auto& item : items) RETURN_IF_ERROR(WriteConditional(item, max_attempts));
  } else {
    // From the first request on, a failure leaves this chunk possibly half written.
    replay_ = true;
    for (size_t i = 0; i < items.size(); i += 25) {
      std::vector<json> chunk(
          items.begin() + static_cast<std::ptrdiff_t>(i),
          items.begin() + static_cast<std::ptrdiff_t>(std::min(items.size(), i + 25)));
      RETURN_IF_ERROR(WriteBatch(chunk, max_attempts));
    }
    FailpointAfterWrite();
  }
  RETURN_IF_ERROR(ledger_->AdvanceSinkProgress(kDynamoSinkName, last));
  cursor_ = last;
  replay_ = false;
  std::lock_guard<std::mutex> lock(mutex_);
  status_.cursor = cursor_;
  status_.oversized += oversized;
  status_.state = "ok";
  status_.last_error.clear();
  status_.last_success_ms = clock_->NowMs();
  return last - start;
}

Status DynamoSink::UpdateStoreItem() {
  if (options_.stores_table.empty()) return Status::Ok();
  DynamoSinkStatus st = status();
  const int64_t now = clock_->NowMs();
  json values = {{":u", {{"N", std::to_string(now)}}},
                 {":v", {{"S", MACHUB_VERSION}}},
                 {":ls", {{"N", std::to_string(st.last_seq)}}},
                 {":c", {{"N", std::to_string(st.cursor)}}},
                 {":b", {{"N", std::to_string(st.backlog())}}},
                 {":st", {{"S", st.state}}},
                 {":ds", {{"N", std::to_string(st.last_success_ms)}}}};
  json names = {{"#u", "updated_at_ms"},
                {"#v", "version"},
                {"#ls", "last_seq"},
                {"#c", "dynamodb_cursor"},
                {"#b", "dynamodb_backlog"},
                {"#st", "dynamodb_state"},
                {"#ds", "dynamodb_last_success_ms"}};
  std::string update = "SET #u = :u, #v = :v, #ls = :ls, #c = :c, #b = :b, #st = :st, #ds = :ds";
  if (options_.store_attributes) {
    json extra = options_.store_attributes();
    int i = 0;
    for (const auto& [name, value] : extra.items()) {
      std::string n = "#x" + std::to_string(i), v = ":x" + std::to_string(i);
      names[n] = name;
      values[v] = value;
      update += ", " + n + " = " + v;
      ++i;
    }
  }
  cloud::DynamoError error;
  // An older update that arrives late never replaces a newer one.
  Status result =
      client_->UpdateItem(options_.stores_table, {{"store_id", {{"S", options_.store_id}}}}, update,
                          "attribute_not_exists(#u) OR #u <= :u", names, values, &error);
  if (result.ok() || error.kind == cloud::DynamoErrorKind::kConditionFailed) {
    std::lock_guard<std::mutex> lock(mutex_);
    status_.stores_updated_ms = now;
    return Status::Ok();
  }
  return result;
}

void DynamoSink::Run() {
  int failures = 0;
  int64_t last_stores_try = 0;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) return;
    }
    if (!options_.stores_table.empty() &&
        clock_->NowMs() - last_stores_try >= options_.stores_interval_ms) {
      last_stores_try = clock_->NowMs();
      if (Status st = UpdateStoreItem(); !st.ok()) {
        core::LogWarn("dynamodb_stores_update_failed", {{"error", st.message()}});
      }
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

DynamoSinkStatus DynamoSink::CurrentStatus() const {
  DynamoSinkStatus st = status();
  Result<journal::SyncBounds> bounds = ledger_->GetSyncBounds();
  if (bounds.ok()) st.last_seq = std::max(st.last_seq, bounds->last_seq);
  return st;
}

}  // namespace machub::sync
