#include "app/sync_wiring.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "app/tokens.h"
#include "core/clock.h"
#include "core/log.h"
#include "journal/sqlite_journal.h"
#include "sync/dynamo_items.h"
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

namespace {

Result<std::unique_ptr<cloud::CredentialsProvider>> DynamoCredentials(const Config& config) {
  cloud::CredentialsOptions co;
  co.access_key_id = config.sync_access_key_id;
  co.secret_access_key = config.sync_secret_access_key;
  co.session_token = config.sync_session_token;
  return cloud::MakeDefaultCredentialsProvider(co);
}

Result<std::unique_ptr<cloud::DynamoDbClient>> DynamoClient(const Config& config,
                                                            cloud::CredentialsProvider* creds,
                                                            const std::atomic<bool>* cancel) {
  cloud::DynamoOptions options;
  options.endpoint = config.dynamodb_endpoint;
  options.region = config.dynamodb_region;
  options.credentials = creds;
  options.ca_file = config.sync_ca_file;
  options.total_timeout_ms = config.dynamodb_request_timeout_ms;
  options.cancel = cancel;
  return cloud::DynamoDbClient::Create(options);
}

}  // namespace

DynamoWiring::~DynamoWiring() {
  cancel.store(true);
  if (sink) sink->Stop();
}

Result<std::unique_ptr<DynamoWiring>> MakeDynamoWiring(const Config& config,
                                                       journal::Ledger* ledger) {
  if (!config.dynamodb_enabled) return std::unique_ptr<DynamoWiring>();
  auto w = std::make_unique<DynamoWiring>();
  ASSIGN_OR_RETURN(w->credentials, DynamoCredentials(config));
  ASSIGN_OR_RETURN(w->client, DynamoClient(config, w->credentials.get(), &w->cancel));
  sync::DynamoSinkOptions o;
  o.store_id = config.store_id;
  o.sales_table = config.dynamodb_sales_table;
  o.stores_table = config.dynamodb_stores_table;
  o.stores_interval_ms = config.dynamodb_stores_interval_s * 1000;
  o.backoff_cap_ms = config.sync_backoff_cap_ms;
  o.error_retry_ms = config.sync_degraded_retry_s * 1000;
  w->sink = std::make_unique<sync::DynamoSink>(o, ledger, w->client.get());
  RETURN_IF_ERROR(w->sink->Register());
  return w;
}

namespace {

// The scalars of a status object as DynamoDB attributes, named prefix + key.
void AddScalars(const std::string& prefix, const nlohmann::json& j, nlohmann::json* out) {
  if (!j.is_object()) return;
  for (const auto& [name, v] : j.items()) {
    if (v.is_string() && !v.get_ref<const std::string&>().empty()) {
      (*out)[prefix + name] = {{"S", v}};
    } else if (v.is_number_integer()) {
      (*out)[prefix + name] = {{"N", std::to_string(v.get<int64_t>())}};
    } else if (v.is_boolean()) {
      (*out)[prefix + name] = {{"BOOL", v}};
    }
  }
}

}  // namespace

void AttachStoreAttributes(DynamoWiring* wiring, sync::SyncService* s3, journal::Ledger* ledger,
                           std::function<std::vector<std::string>()> alerts) {
  wiring->day_totals = std::make_unique<sync::DayTotals>(ledger, &core::SystemClock());
  sync::DayTotals* day = wiring->day_totals.get();
  sync::DynamoSink* sink = wiring->sink.get();
  sink->SetStoreAttributes([s3, day, sink, alerts = std::move(alerts)] {
    nlohmann::json out = nlohmann::json::object();
    AddScalars("s3_", s3->CloudStatusJson(), &out);
    AddScalars("backlog_", s3->BacklogJson(), &out);
    if (Result<sync::DayFigures> figures = day->Update(); figures.ok()) {
      out.update(sync::DayTotals::Attributes(*figures));
    } else {
      core::LogWarn("dynamodb_day_totals_failed", {{"error", figures.status().message()}});
    }
    out.update(sync::StoreAlertAttributes(alerts ? alerts() : std::vector<std::string>(),
                                          sink->status().state == "integrity_alert"));
    return out;
  });
}

int RunDynamoCreateTables(const Config& config) {
  auto creds = DynamoCredentials(config);
  if (!creds.ok()) {
    std::cerr << "machub dynamodb: " << creds.status().ToString() << "\n";
    return 2;
  }
  auto client = DynamoClient(config, creds->get(), nullptr);
  if (!client.ok()) {
    std::cerr << "machub dynamodb: " << client.status().ToString() << "\n";
    return 2;
  }
  cloud::DynamoTableSpec sales;
  sales.name = config.dynamodb_sales_table;
  sales.hash_key = "store_id";
  sales.range_key = "seq";
  sales.gsis.push_back({std::string(sync::kDynamoEntryIdIndex), "entry_id", "S"});
  cloud::DynamoTableSpec stores;
  stores.name = config.dynamodb_stores_table;
  stores.hash_key = "store_id";
  for (const auto* spec : {&sales, &stores}) {
    cloud::DynamoError error;
    Status st = (*client)->CreateTable(*spec, &error);
    if (!st.ok() && error.kind != cloud::DynamoErrorKind::kInUse) {
      std::cerr << "machub dynamodb: " << st.ToString() << "\n";
      return error.retryable() ? 1 : 2;
    }
    st = (*client)->WaitActive(spec->name, 120000);
    if (!st.ok()) {
      std::cerr << "machub dynamodb: " << st.ToString() << "\n";
      return 1;
    }
    std::cout << "{\"table\":\"" << spec->name << "\",\"status\":\"ACTIVE\"}\n";
  }
  return 0;
}

}  // namespace machub::app
