// One batch through the uploader (uploader.h "Exactly once"): cut or re-encode it, record
// it, PUT it with If-None-Match, compare what a 412 or an earlier attempt left, mark it;
// and the one-time probe that tells whether the store honours conditional PUTs.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <utility>

#include "core/log.h"
#include "core/strings.h"
#include "sync/uploader.h"

namespace machub::sync {
namespace {

std::string RandomHex(const RandomSource& random) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(random()));
  return buf;
}

// The test-only crash between a successful PUT and the journal mark (uploader.h).
void FailpointAfterPut() {
#ifdef MACHUB_FAILPOINTS
  const char* failpoint = std::getenv("MACHUB_FAILPOINT");
  if (failpoint != nullptr && std::string_view(failpoint) == "after_put_before_mark") {
    ::kill(::getpid(), SIGKILL);  // a real kill: no exit handlers, no sanitizer reports
  }
#endif
}

}  // namespace

// ---- One batch ----

Uploader::StepResult Uploader::Step(bool force, int64_t upto_seq) {
  auto local_error = [](Status s, int64_t batch_id = 0) {
    return StepResult{StepKind::kLocalError, std::move(s), batch_id};
  };
  auto cloud_error = [](Status s, int64_t batch_id) {
    return StepResult{StepKind::kCloudError, std::move(s), batch_id};
  };

  Result<std::vector<journal::BatchRecord>> unfinished = journal_->ListBatches(true);
  if (!unfinished.ok()) return local_error(unfinished.status());
  std::optional<journal::BatchRecord> batch;
  for (journal::BatchRecord& b : *unfinished) {
    if (b.state == journal::BatchState::kPending) {
      batch = std::move(b);
      break;
    }
  }

  // The bytes to upload, and what they hash to.
  std::string bytes;
  std::map<std::string, std::string> metadata;
  std::string fresh_sha256;
  journal::BatchRecord fresh_record;
  if (!batch) {
    Result<journal::SyncBounds> bounds = journal_->GetSyncBounds();
    if (!bounds.ok()) return local_error(bounds.status());
    std::optional<EncodedBatch> encoded;
    if (prefetch_.valid()) {
      Result<std::optional<EncodedBatch>> prefetched = prefetch_.get();
      if (prefetch_after_ == bounds->batched_seq && prefetched.ok() && prefetched->has_value()) {
        encoded = std::move(**prefetched);
      }
    }
    if (!encoded) {
      Result<std::optional<EncodedBatch>> cut = cutter_.Next(*bounds, force, upto_seq);
      if (!cut.ok()) return local_error(cut.status());
      if (!cut->has_value()) return StepResult{};  // idle
      encoded = std::move(**cut);
    }
    if (encoded->stop != EncodedBatch::Stop::kEnd) {
      // More sales are waiting: encode the next batch while this one is recorded and goes
      // up (started before RecordBatch, whose fsync would otherwise idle the encoder; if
      // the record fails, the next step discards the prefetch: prefetch_after_ no longer
      // matches batched_seq).
      journal::SyncBounds next = *bounds;
      next.batched_seq = encoded->record.last_seq;
      prefetch_after_ = next.batched_seq;
      prefetch_ = std::async(std::launch::async, [this, next, force, upto_seq] {
        NiceThisThread(options_.thread_nice);
        return cutter_.Next(next, force, upto_seq);
      });
    }
    Result<journal::BatchRecord> recorded = journal_->RecordBatch(encoded->record);
    if (!recorded.ok()) return local_error(recorded.status());
    batch = std::move(*recorded);
    fresh_record = std::move(encoded->record);
    bytes = std::move(encoded->bytes);
    metadata = std::move(encoded->metadata);
  } else if (cached_batch_id_ == batch->id && !cached_bytes_.empty()) {
    fresh_record = *batch;
    bytes = std::move(cached_bytes_);
    metadata = std::move(cached_metadata_);
  } else {
    Result<EncodedBatch> encoded = cutter_.Reencode(*batch);
    if (!encoded.ok()) return local_error(encoded.status(), batch->id);
    fresh_record = std::move(encoded->record);
    bytes = std::move(encoded->bytes);
    metadata = std::move(encoded->metadata);
  }
  cached_batch_id_ = 0;
  cached_bytes_.clear();
  const int64_t batch_id = batch->id;

  if (m_attempts_ != nullptr) m_attempts_->Inc();
  Status mode = ResolveConditionalPut();
  if (!mode.ok()) {
    // Keep the bytes for the next attempt.
    if (fresh_record.sha256_hex == batch->sha256_hex) {
      cached_batch_id_ = batch_id;
      cached_bytes_ = std::move(bytes);
      cached_metadata_ = std::move(metadata);
    }
    return cloud_error(mode, batch_id);
  }

  // A failed PUT keeps the bytes for the next attempt (no re-encoding in an outage).
  auto upload = [&]() -> Result<Outcome> {
    Result<Outcome> result = Upload(*batch, &bytes, metadata);
    if (!result.ok()) {
      cached_batch_id_ = batch_id;
      cached_bytes_ = std::move(bytes);
      cached_metadata_ = std::move(metadata);
    }
    return result;
  };
  Result<Outcome> outcome = Status(ErrorCode::kInternal, "unset");
  if (fresh_record.sha256_hex == batch->sha256_hex) {
    outcome = upload();
  } else {
    // The rows encode to other bytes than recorded (another zlib, or another encoder):
    // the recorded hashes decide what is ours (uploader.h, step 2).
    core::LogWarn("sync_reencode_differs", {{"key", batch->key},
                                            {"recorded_sha256", batch->sha256_hex},
                                            {"fresh_sha256", fresh_record.sha256_hex}});
    Result<cloud::ObjectInfo> head = store_->Head(batch->key);
    if (head.ok()) {
      outcome = CompareExisting(*batch, *head);
    } else if (head.status().code() == ErrorCode::kNotFound) {
      Status updated =
          journal_->UpdateBatchObject(batch_id, fresh_record.raw_bytes, fresh_record.gz_bytes,
                                      fresh_record.sha256_hex, fresh_record.md5_hex);
      if (!updated.ok()) return local_error(updated, batch_id);
      batch->raw_bytes = fresh_record.raw_bytes;
      batch->gz_bytes = fresh_record.gz_bytes;
      batch->sha256_hex = fresh_record.sha256_hex;
      batch->md5_hex = fresh_record.md5_hex;
      outcome = upload();
    } else {
      outcome = head.status();
    }
  }
  if (!outcome.ok()) return cloud_error(outcome.status(), batch_id);

  StepResult done;
  done.kind = StepKind::kDone;
  done.batch_id = batch_id;
  done.sales = batch->sales();
  done.bytes = batch->gz_bytes;
  if (*outcome == Outcome::kQuarantined) {
    const std::string why =
        "the store holds another object at this key (etag differs from the "
        "recorded md5 " +
        batch->md5_hex + "); not overwritten";
    Status marked = journal_->MarkBatchQuarantined(batch_id, why);
    if (!marked.ok()) return local_error(marked, batch_id);
    done.quarantined = true;
    if (m_quarantined_ != nullptr) m_quarantined_->Inc();
    core::LogError("sync_batch_quarantined", {{"key", batch->key},
                                              {"first_seq", batch->first_seq},
                                              {"last_seq", batch->last_seq},
                                              {"recorded_md5", batch->md5_hex}});
    return done;
  }
  Status marked = journal_->MarkBatchUploaded(batch_id, NowMs());
  if (!marked.ok()) {
    // The object is in the store; the next attempt meets it (412 / HEAD, same MD5) and
    // marks the batch then.
    return local_error(marked, batch_id);
  }
  if (m_successes_ != nullptr) m_successes_->Inc();
  return done;
}

Result<Uploader::Outcome> Uploader::CompareExisting(const journal::BatchRecord& batch,
                                                    const cloud::ObjectInfo& info) {
  // A single-part PUT's ETag is the hex MD5 of the body; a multipart one ("...-N") never
  // equals an MD5, so it counts as other content.
  return core::AsciiLower(info.etag) == batch.md5_hex ? Outcome::kAlreadyThere
                                                      : Outcome::kQuarantined;
}

Result<Uploader::Outcome> Uploader::Upload(const journal::BatchRecord& batch, std::string* bytes,
                                           const std::map<std::string, std::string>& metadata) {
  const ConditionalPut mode = resolved_mode_.value_or(ConditionalPut::kOn);
  cloud::PutRequest put;
  put.key = batch.key;
  put.content_type = "application/gzip";
  put.metadata = metadata;
  put.body = std::move(*bytes);
  struct GiveBack {  // the body goes back to the caller for a retry, whatever happens
    std::string* bytes;
    cloud::PutRequest* put;
    ~GiveBack() { *bytes = std::move(put->body); }
  } give_back{bytes, &put};

  if (mode == ConditionalPut::kOff) {
    Result<cloud::ObjectInfo> head = store_->Head(batch.key);
    if (head.ok()) return CompareExisting(batch, *head);
    if (head.status().code() != ErrorCode::kNotFound) return head.status();
    put.if_none_match = false;
  } else {
    put.if_none_match = true;
  }
  ASSIGN_OR_RETURN(cloud::PutOutcome put_outcome, store_->Put(put));
  if (put_outcome == cloud::PutOutcome::kCreated) {
    FailpointAfterPut();
    if (m_bytes_ != nullptr) m_bytes_->Inc(static_cast<int64_t>(put.body.size()));
    return Outcome::kUploaded;
  }
  // 412: an object is there already. Ours (an earlier attempt's PUT landed, its answer
  // lost) exactly when its MD5 is the recorded one.
  Result<cloud::ObjectInfo> head = store_->Head(batch.key);
  if (!head.ok()) {
    if (head.status().code() == ErrorCode::kNotFound) {
      return Status(ErrorCode::kUnavailable,
                    "S3 HEAD " + batch.key + ": the object answered 412 and then vanished");
    }
    return head.status();
  }
  return CompareExisting(batch, *head);
}

Status Uploader::ResolveConditionalPut() {
  if (resolved_mode_) return Status::Ok();
  if (options_.conditional_put != ConditionalPut::kAuto) {
    resolved_mode_ = options_.conditional_put;
    return Status::Ok();
  }
  const std::string prefix(core::TrimChars(options_.cut.prefix, "/"));
  cloud::PutRequest probe;
  probe.key = (prefix.empty() ? "" : prefix + "/") + "_machub/probe-" + options_.cut.store_id +
              "-" + RandomHex(random_);
  probe.body = "machub conditional-put probe\n";
  probe.content_type = "text/plain";
  probe.if_none_match = true;
  ASSIGN_OR_RETURN(cloud::PutOutcome first, store_->Put(probe));
  ConditionalPut mode = ConditionalPut::kOn;
  if (first == cloud::PutOutcome::kCreated) {
    ASSIGN_OR_RETURN(cloud::PutOutcome second, store_->Put(probe));
    mode = second == cloud::PutOutcome::kAlreadyExists ? ConditionalPut::kOn : ConditionalPut::kOff;
  }
  resolved_mode_ = mode;
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.conditional_put = std::string(ConditionalPutName(mode));
  }
  if (mode == ConditionalPut::kOff) {
    core::LogWarn("sync_conditional_put_ignored",
                  {{"target", target_},
                   {"detail",
                    "the store overwrote an object despite If-None-Match: *; "
                    "checking with HEAD before every PUT"}});
  } else {
    core::LogInfo("sync_conditional_put", {{"target", target_}, {"mode", "on"}});
  }
  return Status::Ok();
}

}  // namespace machub::sync
