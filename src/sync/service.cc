#include "sync/service.h"

#include <cstdlib>
#include <utility>
#include <vector>

#include "cloud/local_sink.h"
#include "cloud/s3_client.h"

namespace machub::sync {
namespace {

Status Bad(const std::string& key, const std::string& why) {
  return Status(ErrorCode::kInvalidArgument, "sync." + key + ": " + why);
}

}  // namespace

Status ValidateSyncConfig(const SyncConfig& c) {
  if (!c.bucket.empty() && (c.bucket.size() < 3 || c.bucket.size() > 63)) {
    return Bad("bucket", "must be 3..63 characters");
  }
  if (c.addressing != "auto" && c.addressing != "path" && c.addressing != "virtual") {
    return Bad("addressing", "must be auto, path or virtual");
  }
  if (!ParseBatchFormat(c.format).ok()) return Bad("format", "must be jsonl or csv");
  if (!ParseConditionalPut(c.conditional_put).ok()) {
    return Bad("conditional_put", "must be auto, on or off");
  }
  if (c.gzip_level < 1 || c.gzip_level > 9) return Bad("gzip_level", "must be 1..9");
  if (c.batch_max_sales < 1) return Bad("batch_max_sales", "must be at least 1");
  if (c.batch_max_bytes < (64 << 10) || c.batch_max_bytes > (15LL << 20)) {
    return Bad("batch_max_bytes", "must be 65536..15728640 (one PUT, never multipart)");
  }
  if (c.batch_max_age_s < 0) return Bad("batch_max_age_s", "must not be negative");
  if (c.bandwidth_limit_bytes_per_s < 0) {
    return Bad("bandwidth_limit_bytes_per_s", "must not be negative");
  }
  if (c.probe_interval_ms < 100) return Bad("probe_interval_ms", "must be at least 100");
  if (c.backoff_cap_ms < 1000) return Bad("backoff_cap_ms", "must be at least 1000");
  if (c.degraded_retry_s < 1) return Bad("degraded_retry_s", "must be at least 1");
  if (c.request_timeout_ms < 1000) return Bad("request_timeout_ms", "must be at least 1000");
  if (c.retention_days < 0) return Bad("retention_days", "must not be negative");
  if (c.min_free_disk_mb < 0) return Bad("min_free_disk_mb", "must not be negative");
  if (c.min_free_disk_percent < 0 || c.min_free_disk_percent > 100) {
    return Bad("min_free_disk_percent", "must be 0..100");
  }
  if (c.access_key_id.empty() != c.secret_access_key.empty()) {
    return Bad("access_key_id", "and sync.secret_access_key go together");
  }
  for (char ch : c.prefix) {
    if (ch < 0x21 || ch > 0x7e) return Bad("prefix", "must be printable ASCII without spaces");
  }
  return Status::Ok();
}

Result<UploaderOptions> UploaderOptionsFrom(const SyncConfig& c, const std::string& store_id) {
  RETURN_IF_ERROR(ValidateSyncConfig(c));
  UploaderOptions o;
  o.thread_nice = c.thread_nice;
  o.after_batch = c.after_batch;
  o.cut.store_id = store_id;
  o.cut.prefix = c.prefix;
  o.cut.format = *ParseBatchFormat(c.format);
  o.cut.gzip_level = c.gzip_level;
  o.cut.max_sales = c.batch_max_sales;
  o.cut.max_raw_bytes = c.batch_max_bytes;
  o.cut.max_age_ms = c.batch_max_age_s * 1000;
  o.conditional_put = *ParseConditionalPut(c.conditional_put);
  o.probe_interval_ms = c.probe_interval_ms;
  o.backoff_cap_ms = c.backoff_cap_ms;
  o.degraded_retry_ms = c.degraded_retry_s * 1000;
  o.retention_ms = c.retention_days * 24 * 3600 * 1000;
  o.min_free_disk_bytes = c.min_free_disk_mb << 20;
  o.min_free_disk_percent = c.min_free_disk_percent;
  RETURN_IF_ERROR(ValidateUploaderOptions(o));
  return o;
}

namespace {

cloud::S3Options S3OptionsFrom(const SyncConfig& c, cloud::CredentialsProvider* credentials,
                               const std::atomic<bool>* cancel) {
  cloud::S3Options so;
  so.endpoint = c.endpoint;
  so.region = c.region;
  so.bucket = c.bucket;
  so.addressing = c.addressing == "path"      ? cloud::S3Addressing::kPathStyle
                  : c.addressing == "virtual" ? cloud::S3Addressing::kVirtualHosted
                                              : cloud::S3Addressing::kAuto;
  so.credentials = credentials;
  so.ca_file = c.ca_file;
  so.total_timeout_ms = c.request_timeout_ms;
  so.max_send_bytes_per_s = c.bandwidth_limit_bytes_per_s;
  so.cancel = cancel;
  return so;
}

}  // namespace

Result<std::unique_ptr<cloud::ObjectStore>> OpenTarget(
    const SyncConfig& c, std::unique_ptr<cloud::CredentialsProvider>* credentials,
    const std::atomic<bool>* cancel, cloud::RequestWatch* watch) {
  RETURN_IF_ERROR(ValidateSyncConfig(c));
  if (!c.bucket.empty()) {
    cloud::CredentialsOptions co;
    co.access_key_id = c.access_key_id;
    co.secret_access_key = c.secret_access_key;
    co.session_token = c.session_token;
    ASSIGN_OR_RETURN(*credentials, cloud::MakeDefaultCredentialsProvider(co));
    cloud::S3Options so = S3OptionsFrom(c, credentials->get(), cancel);
    so.watch = watch;
    ASSIGN_OR_RETURN(std::unique_ptr<cloud::S3Client> client, cloud::S3Client::Create(so));
    return std::unique_ptr<cloud::ObjectStore>(std::move(client));
  }
  if (!c.dir.empty()) {
    ASSIGN_OR_RETURN(std::unique_ptr<cloud::LocalSink> sink,
                     cloud::LocalSink::Open({.root = c.dir}));
    return std::unique_ptr<cloud::ObjectStore>(std::move(sink));
  }
  return Status(ErrorCode::kInvalidArgument, "sync: neither sync.bucket nor sync.dir is set");
}

Result<std::unique_ptr<cloud::ObjectStore>> OpenProbeClient(const SyncConfig& c,
                                                            cloud::CredentialsProvider* credentials,
                                                            const std::atomic<bool>* cancel) {
  RETURN_IF_ERROR(ValidateSyncConfig(c));
  if (c.bucket.empty()) return Status(ErrorCode::kInvalidArgument, "sync: no bucket to probe");
  cloud::S3Options so = S3OptionsFrom(c, credentials, cancel);
  so.connect_timeout_ms = kProbeTimeoutMs;
  so.total_timeout_ms = kProbeTimeoutMs;
  so.low_speed_time_s = kProbeTimeoutMs / 1000;
  so.max_send_bytes_per_s = 0;
  ASSIGN_OR_RETURN(std::unique_ptr<cloud::S3Client> client, cloud::S3Client::Create(so));
  return std::unique_ptr<cloud::ObjectStore>(std::move(client));
}

Result<std::unique_ptr<SyncService>> SyncService::Create(const SyncConfig& config,
                                                         const std::string& store_id,
                                                         journal::Ledger* journal,
                                                         core::MetricsRegistry* metrics,
                                                         const core::Clock* clock) {
  if (journal == nullptr) return Status(ErrorCode::kInvalidArgument, "sync: no journal");
  ASSIGN_OR_RETURN(UploaderOptions options, UploaderOptionsFrom(config, store_id));
  std::unique_ptr<SyncService> service(new SyncService());
  service->journal_ = journal;
  if (config.bucket.empty() && config.dir.empty()) {
    service->backlog_ = std::make_unique<BacklogTracker>(journal, metrics);
    return service;
  }
  ASSIGN_OR_RETURN(service->store_,
                   OpenTarget(config, &service->credentials_, &service->cancel_, &service->watch_));
  if (!config.bucket.empty()) {
    // The stall watchdog: progress of every S3 request, and a second client for probes
    // while the first one is busy (uploader.h).
    ASSIGN_OR_RETURN(service->probe_store_,
                     OpenProbeClient(config, service->credentials_.get(), &service->cancel_));
    options.watch = &service->watch_;
    options.probe_store = service->probe_store_.get();
  }
  options.clock = clock;
  options.metrics = metrics;
  ASSIGN_OR_RETURN(service->uploader_, Uploader::Create(options, journal, service->store_.get()));
  return service;
}

SyncService::~SyncService() { Stop(); }

void SyncService::Start() {
  if (uploader_ != nullptr) uploader_->Start();
}

void SyncService::Stop() {
  cancel_.store(true);  // aborts an S3 request in flight
  if (uploader_ != nullptr) uploader_->Stop();
}

Result<OnceProgress> SyncService::RunOnce(const OnceOptions& options) {
  if (uploader_ == nullptr) {
    return Status(ErrorCode::kInvalidArgument,
                  "sync is disabled: set sync.bucket (or sync.dir) to upload");
  }
  return uploader_->RunOnce(options);
}

Result<int64_t> SyncService::RequeueQuarantined() {
  ASSIGN_OR_RETURN(std::vector<journal::BatchRecord> unfinished, journal_->ListBatches(true));
  int64_t requeued = 0;
  for (const journal::BatchRecord& b : unfinished) {
    if (b.state != journal::BatchState::kQuarantined) continue;
    RETURN_IF_ERROR(journal_->RequeueBatch(b.id));
    ++requeued;
  }
  return requeued;
}

nlohmann::json SyncService::CloudStatusJson() const {
  return uploader_ != nullptr ? uploader_->CloudStatusJson() : DisabledCloudStatusJson();
}

std::optional<int64_t> SyncService::CloudClockOffsetMs() const {
  std::optional<int64_t> offset;
  for (const cloud::ObjectStore* store : {store_.get(), probe_store_.get()}) {
    const auto* s3 = dynamic_cast<const cloud::S3Client*>(store);
    if (s3 == nullptr) continue;
    const int64_t o = s3->clock_offset_ms();
    if (!offset || std::llabs(o) > std::llabs(*offset)) offset = o;
  }
  return offset;
}

nlohmann::json SyncService::BacklogJson() const {
  if (uploader_ != nullptr) return uploader_->BacklogJson();
  // Exact when read, as with uploads on (Uploader::GetBacklog).
  Result<Backlog> now = backlog_->Refresh();
  return BacklogTracker::ToJson(now.ok() ? *now : backlog_->Snapshot());
}

}  // namespace machub::sync
