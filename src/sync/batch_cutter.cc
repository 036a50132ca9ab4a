#include "sync/batch_cutter.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/sha256.h"

namespace machub::sync {
namespace {

// Ranges of at least this many sales are compressed on a helper thread (BlockFeeder);
// smaller ones (the steady state: a few sales a minute) stay on the calling thread.
constexpr int64_t kThreadedEncodeSales = 1000;

// Feeds a BatchEncoder in blocks of about 64 KiB of record text. For a large range the
// blocks are compressed on a helper thread while the calling thread reads and formats the
// next rows (two stages, two cores: gzip is about half of a drain's CPU). The encoder sees
// the same bytes in the same order either way, so the object is the same.
class BlockFeeder {
 public:
  static constexpr size_t kBlockBytes = 64 * 1024;
  static constexpr size_t kMaxQueuedBlocks = 4;  // bounds the memory between the stages

  BlockFeeder(BatchEncoder* encoder, bool threaded) : encoder_(encoder) {
    if (threaded) thread_ = std::thread([this] { CompressLoop(); });
  }
  ~BlockFeeder() { Stop(); }
  BlockFeeder(const BlockFeeder&) = delete;
  BlockFeeder& operator=(const BlockFeeder&) = delete;

  Status Add(std::string_view record) {
    block_.append(record);
    if (block_.size() < kBlockBytes) return Status::Ok();
    return Flush();
  }

  // Hands over the last block, waits for the helper, and finishes the gzip stream.
  Result<EncodedObject> Finish() {
    RETURN_IF_ERROR(Flush());
    Stop();
    {
      std::lock_guard<std::mutex> lock(mu_);
      RETURN_IF_ERROR(status_);
    }
    return encoder_->Finish();
  }

 private:
  Status Flush() {
    if (block_.empty()) return Status::Ok();
    if (!thread_.joinable()) {
      Status status = encoder_->AddRecord(block_);
      block_.clear();
      return status;
    }
    std::unique_lock<std::mutex> lock(mu_);
    space_.wait(lock, [&] { return queue_.size() < kMaxQueuedBlocks || !status_.ok(); });
    RETURN_IF_ERROR(status_);
    queue_.push_back(std::move(block_));
    block_ = std::string();
    block_.reserve(kBlockBytes + 4096);
    ready_.notify_one();
    return Status::Ok();
  }

  void Stop() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    ready_.notify_one();
    thread_.join();
  }

  void CompressLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      ready_.wait(lock, [&] { return !queue_.empty() || done_; });
      if (queue_.empty()) return;
      std::string block = std::move(queue_.front());
      queue_.pop_front();
      space_.notify_one();
      lock.unlock();
      Status status = encoder_->AddRecord(block);
      lock.lock();
      if (!status.ok() && status_.ok()) {
        status_ = status;
        space_.notify_all();
      }
    }
  }

  BatchEncoder* encoder_;
  std::string block_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable ready_;
  std::condition_variable space_;
  std::deque<std::string> queue_;
  bool done_ = false;
  Status status_;
};

}  // namespace

Status ValidateCutOptions(const CutOptions& o) {
  auto bad = [](const std::string& what) {
    return Status(ErrorCode::kInvalidArgument, "sync: " + what);
  };
  if (o.store_id.empty()) return bad("store_id is empty");
  for (char c : o.store_id) {
    if (c <= 0x20 || c >= 0x7f || c == '/') return bad("store_id has a character keys cannot hold");
  }
  if (o.max_sales < 1) return bad("batch max_sales must be at least 1");
  if (o.max_raw_bytes < (64 << 10) || o.max_raw_bytes > (15LL << 20)) {
    return bad("batch max_bytes must be 64 KiB..15 MiB (one PUT, never multipart)");
  }
  if (o.max_age_ms < 0) return bad("batch max_age must not be negative");
  if (o.gzip_level < 1 || o.gzip_level > 9) return bad("gzip level must be 1..9");
  if (o.page_sales < 1) return bad("page_sales must be at least 1");
  return Status::Ok();
}

BatchCutter::BatchCutter(journal::Ledger* journal, CutOptions options, const core::Clock* clock)
    : journal_(journal),
      options_(std::move(options)),
      clock_(clock != nullptr ? clock : &core::SystemClock()) {}

Result<std::optional<EncodedBatch>> BatchCutter::Next(const journal::SyncBounds& bounds, bool force,
                                                      int64_t upto_seq) {
  const int64_t after = bounds.batched_seq;
  const int64_t last = std::min(bounds.last_seq, upto_seq);
  if (last <= after) return std::optional<EncodedBatch>();
  bool due = force || last - after >= options_.max_sales;
  if (!due) {
    ASSIGN_OR_RETURN(std::vector<core::StoredSale> first, journal_->List(after, 1));
    if (first.empty()) return std::optional<EncodedBatch>();
    const int64_t received = first[0].received_at_ms;
    due = clock_->NowMs() - received >= options_.max_age_ms ||
          UtcDay(received) != UtcDay(bounds.last_received_at_ms);
  }
  if (!due) {
    // Canonical bytes are a cheap lower estimate of the body (a JSONL record holds them and
    // more); the exact limit is applied while encoding.
    ASSIGN_OR_RETURN(int64_t canonical, journal_->CanonicalBytes(after, last));
    due = canonical >= options_.max_raw_bytes;
  }
  if (!due) return std::optional<EncodedBatch>();
  ASSIGN_OR_RETURN(EncodedBatch batch,
                   Encode(after, std::min(last, after + options_.max_sales), options_.format,
                          options_.gzip_level, /*apply_limits=*/true));
  return std::optional<EncodedBatch>(std::move(batch));
}

Result<EncodedBatch> BatchCutter::Reencode(const journal::BatchRecord& record) {
  ASSIGN_OR_RETURN(BatchFormat format, ParseBatchFormat(record.format));
  ASSIGN_OR_RETURN(EncodedBatch batch, Encode(record.first_seq - 1, record.last_seq, format,
                                              record.gzip_level, /*apply_limits=*/false));
  if (batch.record.last_seq != record.last_seq) {
    return Status(ErrorCode::kInternal, "sync: the journal no longer holds every sale of batch " +
                                            std::to_string(record.id));
  }
  return batch;
}

Result<EncodedBatch> BatchCutter::Encode(int64_t after_seq, int64_t max_last_seq,
                                         BatchFormat format, int level, bool apply_limits) {
  ASSIGN_OR_RETURN(std::unique_ptr<BatchEncoder> encoder,
                   BatchEncoder::Create(format, options_.store_id, level));
  EncodedBatch batch;
  journal::BatchRecord& r = batch.record;
  std::string prev_hash;
  std::string first_hash;
  std::string last_hash;
  int64_t first_received_at_ms = 0;
  int64_t first_day = 0;
  int64_t cursor = after_seq;
  int64_t count = 0;
  std::string record;
  bool stopped = false;
  // Raw body bytes so far (the encoder's own count lags while blocks are queued).
  int64_t raw_bytes = encoder->raw_bytes();
  if (apply_limits) encoder->ReserveFor(options_.max_raw_bytes);
  BlockFeeder feeder(encoder.get(), max_last_seq - after_seq >= kThreadedEncodeSales);
  while (!stopped && cursor < max_last_seq) {
    const int limit =
        static_cast<int>(std::min<int64_t>(options_.page_sales, max_last_seq - cursor));
    ASSIGN_OR_RETURN(std::vector<core::StoredSale> page, journal_->List(cursor, limit));
    if (page.empty()) break;
    for (const core::StoredSale& sale : page) {
      if (sale.seq != cursor + 1) {
        return Status(ErrorCode::kInternal, "sync: the journal has no sale " +
                                                std::to_string(cursor + 1) +
                                                " (a gap where a batch needs one)");
      }
      if (count == 0) {
        r.first_seq = sale.seq;
        first_received_at_ms = sale.received_at_ms;
        first_day = UtcDay(sale.received_at_ms);
        prev_hash = sale.prev_hash;
        first_hash = sale.hash;
      } else if (apply_limits && UtcDay(sale.received_at_ms) != first_day) {
        batch.stop = EncodedBatch::Stop::kDateChange;
        stopped = true;
        break;
      }
      encoder->EncodeRecord(sale, &record);
      if (apply_limits && count > 0 &&
          raw_bytes + static_cast<int64_t>(record.size()) > options_.max_raw_bytes) {
        batch.stop = EncodedBatch::Stop::kMaxBytes;
        stopped = true;
        break;
      }
      RETURN_IF_ERROR(feeder.Add(record));
      raw_bytes += static_cast<int64_t>(record.size());
      ++count;
      r.last_seq = sale.seq;
      r.canonical_bytes += static_cast<int64_t>(sale.canonical.size());
      last_hash = sale.hash;
      cursor = sale.seq;
    }
  }
  if (count == 0) {
    return Status(ErrorCode::kInternal,
                  "sync: the journal has no sale " + std::to_string(after_seq + 1) + " to batch");
  }
  if (!stopped && apply_limits && count >= options_.max_sales) {
    batch.stop = EncodedBatch::Stop::kMaxSales;
  }
  r.format = std::string(FormatExtension(format));
  r.gzip_level = level;
  r.created_at_ms = clock_->NowMs();
  r.key = BatchKey(options_.prefix, options_.store_id, r.first_seq, r.last_seq,
                   first_received_at_ms, format);
  ASSIGN_OR_RETURN(EncodedObject object, feeder.Finish());
  r.raw_bytes = object.raw_bytes;
  r.gz_bytes = static_cast<int64_t>(object.bytes.size());
  r.sha256_hex = object.sha256_hex;
  r.md5_hex = object.md5_hex;
  batch.metadata =
      ObjectMetadata(options_.store_id, format, r.first_seq, r.last_seq, core::ToHex(prev_hash),
                     core::ToHex(first_hash), core::ToHex(last_hash), r.sha256_hex);
  batch.bytes = std::move(object.bytes);
  return batch;
}

}  // namespace machub::sync
