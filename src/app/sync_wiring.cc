#include "app/sync_wiring.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "app/tokens.h"
#include "core/clock.h"
#include "core/log.h"
#include "journal/sqlite_journal.h"
#include "sync/verify.h"

namespace machub::app {

sync::SyncConfig MakeSyncConfig(const Config& config) {
  sync::SyncConfig s;
  if (!config.sync_enabled) return s;  // no bucket, no folder: disabled
  s.bucket = config.sync_bucket;
  s.endpoint = config.sync_endpoint;
  s.region = config.sync_region;
  s.addressing = config.sync_addressing;
  s.dir = config.sync_dir;
  if (s.bucket.empty() && s.dir.empty()) s.dir = config.data_dir + "/s3";
  s.prefix = config.sync_prefix;
  s.ca_file = config.sync_ca_file;
  s.access_key_id = config.sync_access_key_id;
  s.secret_access_key = config.sync_secret_access_key;
  s.session_token = config.sync_session_token;
  s.format = config.sync_format;
  s.gzip_level = static_cast<int>(config.sync_gzip_level);
  s.batch_max_sales = config.sync_batch_max_sales;
  s.batch_max_bytes = config.sync_batch_max_bytes;
  s.batch_max_age_s = config.sync_batch_max_age_s;
  s.conditional_put = config.sync_conditional_put;
  s.bandwidth_limit_bytes_per_s = config.sync_bandwidth_limit_bytes_per_s;
  s.probe_interval_ms = config.sync_probe_interval_ms;
  s.backoff_cap_ms = config.sync_backoff_cap_ms;
  s.degraded_retry_s = config.sync_degraded_retry_s;
  s.request_timeout_ms = config.sync_request_timeout_ms;
  s.retention_days = config.sync_retention_days;
  s.min_free_disk_mb = config.sync_min_free_disk_mb;
  s.min_free_disk_percent = static_cast<int>(config.sync_min_free_disk_percent);
  return s;
}

namespace {

void DrawProgress(const sync::OnceProgress& p) {
  if (!isatty(STDERR_FILENO)) return;
  const int64_t total = p.total_sales > 0 ? p.total_sales : 1;
  const int width = 40;
  const int filled = static_cast<int>(std::min<int64_t>(width, p.sales * width / total));
  std::fprintf(stderr, "\r[%.*s%*s] %lld/%lld sales, %lld batches", filled,
               "########################################", width - filled, "",
               static_cast<long long>(p.sales), static_cast<long long>(p.total_sales),
               static_cast<long long>(p.batches));
  std::fflush(stderr);
}

}  // namespace

int RunSyncOnce(const Config& config, bool requeue_quarantined, int64_t give_up_after_ms) {
  // Never beside a running hub on the same folder: two uploaders would race for batches.
  auto data_lock = DataDirLock::Acquire(config.data_dir);
  if (!data_lock.ok()) {
    std::cerr << "machub sync: " << data_lock.status().message() << "\n";
    return 1;
  }
  journal::JournalOptions jopts;
  jopts.path = config.data_dir + "/journal.db";
  jopts.store_id = config.store_id;
  auto journal = journal::SqliteJournal::Open(jopts);
  if (!journal.ok()) {
    std::cerr << "machub sync: " << journal.status().ToString() << "\n";
    return journal.status().code() == ErrorCode::kInvalidArgument ? 2 : 1;
  }
  core::MetricsRegistry metrics;
  sync::SyncConfig sync_config = MakeSyncConfig(config);
  sync_config.thread_nice = 0;  // nothing to yield to: no hub runs on this folder
  auto service = sync::SyncService::Create(sync_config, config.store_id, journal->get(), &metrics,
                                           &core::SystemClock());
  if (!service.ok()) {
    std::cerr << "machub sync: " << service.status().ToString() << "\n";
    (*journal)->Close();
    return 2;
  }
  if (requeue_quarantined) {
    auto n = (*service)->RequeueQuarantined();
    if (!n.ok()) {
      std::cerr << "machub sync: " << n.status().ToString() << "\n";
      (*journal)->Close();
      return 1;
    }
    std::cerr << "requeued " << *n << " quarantined batch(es)\n";
  }
  sync::OnceOptions options;
  options.give_up_after_ms = give_up_after_ms;
  options.progress = DrawProgress;
  auto result = (*service)->RunOnce(options);
  if (isatty(STDERR_FILENO)) std::fputc('\n', stderr);
  service->reset();
  (*journal)->Close();
  if (!result.ok()) {
    std::cerr << "machub sync: " << result.status().ToString() << "\n";
    return cloud::IsRetryable(result.status()) ? 1 : 2;
  }
  std::cout << "{\"batches\":" << result->batches << ",\"sales\":" << result->sales
            << ",\"bytes\":" << result->bytes << ",\"quarantined\":" << result->quarantined
            << "}\n";
  return result->quarantined > 0 ? 1 : 0;
}

int RunVerify(const Config& config) {
  sync::SyncConfig sc = MakeSyncConfig(config);
  std::unique_ptr<cloud::CredentialsProvider> credentials;
  auto store = sync::OpenTarget(sc, &credentials);
  if (!store.ok()) {
    std::cerr << "machub verify: " << store.status().ToString() << "\n";
    return 2;
  }
  sync::VerifyOptions options;
  options.store_id = config.store_id;
  options.prefix = config.sync_prefix;
  auto summary = sync::VerifyStore(**store, options);
  if (!summary.ok()) {
    std::cerr << "machub verify: " << summary.status().ToString() << "\n";
    return 1;
  }
  std::cout << summary->ToJson() << "\n";
  return summary->ok() ? 0 : 1;
}

}  // namespace machub::app
