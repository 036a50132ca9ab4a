#pragma once
// SyncService: the one object `machub serve` (and `machub sync --once`, `machub verify`)
// builds for uploads. It turns a SyncConfig (what the configuration keys say) into the
// target store (S3Client with a credentials provider, or a LocalSink folder), the
// Uploader (uploader.h) and the two status blocks.
//
//   auto sync = sync::SyncService::Create(config.sync, config.store_id, journal, &metrics,
//                                         &core::SystemClock());
//   api providers: .cloud = [&] { return sync->CloudStatusJson(); },
//                  .backlog = [&] { return sync->BacklogJson(); }
//   sync->Start();   ... serve ...   sync->Stop();   then journal->Close();
//
// Target: a bucket when SyncConfig::bucket is set, else a local folder when dir is set,
// else sync is DISABLED: Start does nothing, the cloud block says "disabled" and the
// backlog block still counts what is not uploaded (everything).
//
// Threads: Create, Start, Stop, RunOnce from one controlling thread; the status functions
// from any thread (they never do network I/O; BacklogJson reads the journal on every call,
// incrementally, so that it is exact when read). Stop cancels a request in flight and joins the
// thread; call it before closing the journal. The journal, metrics and clock must outlive the
// service.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cloud/credentials.h"
#include "cloud/object_store.h"
#include "cloud/request_watch.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/status.h"
#include "journal/ledger.h"
#include "sync/backlog.h"
#include "sync/uploader.h"

namespace machub::sync {

// One field per configuration key (suggested key names in the comments, table "sync").
struct SyncConfig {
  // Target.
  std::string bucket;                // sync.bucket: S3 bucket; empty: no S3
  std::string endpoint;              // sync.endpoint: "http(s)://host[:port]"; empty: AWS
  std::string region = "us-east-1";  // sync.region
  std::string addressing = "auto";   // sync.addressing: auto | path | virtual
  std::string dir;      // sync.dir: local folder target (LocalSink) when no bucket is set
  std::string prefix;   // sync.prefix: key prefix, PRODUCT.md <prefix> ("" allowed)
  std::string ca_file;  // sync.ca_file: PEM bundle for https; empty: the system's
  // Credentials (optional; otherwise environment, shared files, container/Greengrass TES).
  std::string access_key_id;      // sync.access_key_id
  std::string secret_access_key;  // sync.secret_access_key (secret)
  std::string session_token;      // sync.session_token (secret)
  // Objects.
  std::string format = "jsonl";         // sync.format: jsonl | csv
  int gzip_level = kDefaultGzipLevel;   // sync.gzip_level: 1..9
  int64_t batch_max_sales = 5000;       // sync.batch_max_sales
  int64_t batch_max_bytes = 8LL << 20;  // sync.batch_max_bytes (raw, <= 15 MiB)
  int64_t batch_max_age_s = 60;         // sync.batch_max_age_s
  // Upload behaviour.
  std::string conditional_put = "auto";     // sync.conditional_put: auto | on | off
  int64_t bandwidth_limit_bytes_per_s = 0;  // sync.bandwidth_limit_bytes_per_s: 0 = none
  int64_t probe_interval_ms = 2000;         // sync.probe_interval_ms: offline probe period
  int64_t backoff_cap_ms = 60000;           // sync.backoff_cap_ms
  int64_t degraded_retry_s = 60;            // sync.degraded_retry_s
  int64_t request_timeout_ms = 120000;      // sync.request_timeout_ms: one S3 request
  // Retention.
  int64_t retention_days = 30;     // sync.retention_days: 0 = keep uploaded sales forever
  int64_t min_free_disk_mb = 256;  // sync.min_free_disk_mb
  int min_free_disk_percent = 5;   // sync.min_free_disk_percent
  // Not a configuration key: nice value of the upload threads. `serve` keeps them below
  // the journal writer and the HTTP threads; `sync --once` runs alone (the data folder is
  // locked) and sets 0.
  int thread_nice = 10;
  // Not a configuration key: UploaderOptions::after_batch.
  std::function<void()> after_batch;
};

// kInvalidArgument naming the key ("sync.format: ...") for a bad value.
Status ValidateSyncConfig(const SyncConfig& config);

// The target store alone (for `machub verify --bucket ... | --dir ...`): S3 when bucket
// is set, else the folder; kInvalidArgument when neither. *credentials receives the
// provider an S3 store uses (it must outlive the store); `cancel` and `watch` (an S3
// client's RequestWatch, request_watch.h) may be null.
Result<std::unique_ptr<cloud::ObjectStore>> OpenTarget(
    const SyncConfig& config, std::unique_ptr<cloud::CredentialsProvider>* credentials,
    const std::atomic<bool>* cancel = nullptr, cloud::RequestWatch* watch = nullptr);

// Timeouts (connect, whole request, low speed) of the probe client.
inline constexpr int64_t kProbeTimeoutMs = 2000;
// A second S3 client on config's bucket for probes only (HeadBucket), with short timeouts
// (kProbeTimeoutMs): the uploader's stall watchdog probes with it while the upload client
// is busy. kInvalidArgument without a bucket. `credentials` must outlive it.
Result<std::unique_ptr<cloud::ObjectStore>> OpenProbeClient(const SyncConfig& config,
                                                            cloud::CredentialsProvider* credentials,
                                                            const std::atomic<bool>* cancel);

class SyncService {
 public:
  static Result<std::unique_ptr<SyncService>> Create(const SyncConfig& config,
                                                     const std::string& store_id,
                                                     journal::Ledger* journal,
                                                     core::MetricsRegistry* metrics,
                                                     const core::Clock* clock);
  ~SyncService();  // Stop()

  bool enabled() const { return uploader_ != nullptr; }
  void Start();  // no-op when disabled
  void Stop();
  // `machub sync --once`: kInvalidArgument when disabled.
  Result<OnceProgress> RunOnce(const OnceOptions& options);

  // Operator action (`machub sync --requeue-quarantined`, docs/OPERATIONS.md): every
  // quarantined batch becomes pending again, to be retried; returns how many. Do it after
  // removing (or moving away) the foreign objects at their keys, else they quarantine
  // again. Works when disabled too.
  Result<int64_t> RequeueQuarantined();

  // The blocks for http::StatusProviders.
  nlohmann::json CloudStatusJson() const;
  nlohmann::json BacklogJson() const;
  // The S3 endpoint's clock minus ours, in ms, as the S3 clients last learned it from a
  // RequestTimeTooSkewed answer or a HEAD's Date (0 until a skew was seen); nullopt when
  // the target is not S3 (a local folder, or sync disabled).
  std::optional<int64_t> CloudClockOffsetMs() const;

  Uploader* uploader() { return uploader_.get(); }  // null when disabled
  cloud::ObjectStore* store() { return store_.get(); }

 private:
  SyncService() = default;

  journal::Ledger* journal_ = nullptr;
  std::atomic<bool> cancel_{false};
  std::unique_ptr<cloud::CredentialsProvider> credentials_;
  cloud::RequestWatch watch_;  // the upload client's requests, for the stall watchdog
  std::unique_ptr<cloud::ObjectStore> store_;
  std::unique_ptr<cloud::ObjectStore> probe_store_;  // S3 only
  std::unique_ptr<Uploader> uploader_;
  // Disabled: the backlog is still reported.
  std::unique_ptr<BacklogTracker> backlog_;
};

// The UploaderOptions a SyncConfig means (exposed for tests and tools).
Result<UploaderOptions> UploaderOptionsFrom(const SyncConfig& config, const std::string& store_id);

}  // namespace machub::sync
