// CatalogFetcher (catalog.h): the loop that fetches catalog.json with its ETag, validates
// it, stores the last good copy (catalog_store.h) and serves snapshots. The format itself
// (parse, validate, render) is catalog.cc.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <utility>

#include "catalog/catalog.h"
#include "catalog/catalog_store.h"
#include "catalog/poll_loop.h"
#include "core/log.h"
#include "core/sha256.h"
#include "core/time_format.h"

namespace machub::catalog {

struct CatalogFetcher::Impl {
  using Outcome = FetchOutcome;

  cloud::ObjectStore* store = nullptr;
  CatalogFetcherOptions options;
  const core::Clock* clock = nullptr;
  std::unique_ptr<core::MetricsRegistry> own_metrics;
  std::unique_ptr<FetchReport> report;  // counts and logs attempts (under fetch_mu)
  core::Histogram* fetch_seconds = nullptr;
  core::Gauge* product_gauge = nullptr;
  core::Gauge* fetched_gauge = nullptr;

  // Serializes attempts; guards db and report.
  std::mutex fetch_mu;
  std::unique_ptr<CatalogStore> db;

  // Guards what readers see. Written only with fetch_mu held too, so an attempt may read
  // these without state_mu.
  mutable std::mutex state_mu;
  mutable std::condition_variable attempts_cv;
  std::shared_ptr<const CatalogView> snapshot;
  std::string object_etag;  // the store's ETag of the applied object, unquoted
  int64_t fetched_at_ms = 0;
  int64_t applied_at_ms = 0;
  int64_t last_attempt_ms = 0;
  int64_t last_error_at_ms = 0;
  std::string last_error;
  int64_t attempts = 0;

  PollLoop loop;  // the periodic thread

  // One attempt with its bookkeeping (metrics, log, status), under fetch_mu.
  Status Run();
  Status Attempt(Outcome* outcome);
  void Finish(Outcome outcome, const Status& status, int64_t now_ms, int64_t started_us);
};

Result<std::unique_ptr<CatalogFetcher>> CatalogFetcher::Open(cloud::ObjectStore* store,
                                                             CatalogFetcherOptions options,
                                                             const core::Clock* clock,
                                                             core::MetricsRegistry* metrics) {
  if (options.key.empty()) {
    return Status(ErrorCode::kInvalidArgument, "catalog fetcher needs an object key");
  }
  if (options.db_path.empty()) {
    return Status(ErrorCode::kInvalidArgument, "catalog fetcher needs a database path");
  }
  auto impl = std::make_unique<Impl>();
  impl->store = store;
  impl->clock = clock != nullptr ? clock : &core::SystemClock();
  if (metrics == nullptr) {
    impl->own_metrics = std::make_unique<core::MetricsRegistry>();
    metrics = impl->own_metrics.get();
  }
  impl->report =
      std::make_unique<FetchReport>(metrics, "machub_catalog_fetches_total",
                                    "Catalog fetch attempts by result", "catalog", options.key);
  impl->fetch_seconds =
      &metrics->GetHistogram("machub_catalog_fetch_seconds",
                             "Catalog fetch attempt duration in seconds", core::LatencyBuckets());
  impl->product_gauge =
      &metrics->GetGauge("machub_catalog_products", "Products in the catalog the hub serves");
  impl->fetched_gauge =
      &metrics->GetGauge("machub_catalog_fetched_timestamp_seconds",
                         "Unix time the object store last confirmed or delivered the catalog");

  Result<std::unique_ptr<CatalogStore>> db = CatalogStore::Open(options.db_path);
  if (!db.ok() && db.status().code() == ErrorCode::kInternal) {
    // Not a catalog database (damaged, foreign, or from a newer hub): it is only a cache
    // of the cloud's object, so keep it for inspection and start a fresh one.
    const std::string aside = options.db_path + ".corrupt-" + std::to_string(impl->clock->NowMs());
    core::LogError("catalog_db_moved_aside",
                   {{"error", db.status().ToString()}, {"path", options.db_path}, {"to", aside}});
    std::error_code ec;
    std::filesystem::rename(options.db_path, aside, ec);
    if (ec) {
      return Status(ErrorCode::kIoError,
                    "catalog.db: cannot move the unreadable database aside: " + ec.message());
    }
    for (const char* suffix : {"-wal", "-shm"}) {
      std::filesystem::rename(options.db_path + suffix, aside + suffix, ec);
    }
    db = CatalogStore::Open(options.db_path);
  }
  if (!db.ok()) {
    return Status(ErrorCode::kIoError, db.status().message());
  }
  impl->db = std::move(*db);

  Result<std::optional<StoredCatalog>> loaded = impl->db->Load();
  if (!loaded.ok()) {
    // Serve nothing rather than something wrong; with no ETag the next fetch downloads
    // the whole catalog and replaces every row.
    core::LogError("catalog_load_failed", {{"error", loaded.status().ToString()}});
    impl->last_error = "stored catalog unreadable: " + loaded.status().ToString();
    impl->last_error_at_ms = impl->clock->NowMs();
  } else if (loaded->has_value()) {
    StoredCatalog& stored = **loaded;
    impl->object_etag = std::move(stored.etag);
    impl->fetched_at_ms = stored.fetched_at_ms;
    impl->applied_at_ms = stored.applied_at_ms;
    impl->snapshot = MakeCatalogView(std::move(stored.catalog));
    impl->product_gauge->Set(static_cast<int64_t>(impl->snapshot->catalog.products.size()));
    impl->fetched_gauge->Set(impl->fetched_at_ms / 1000);
    core::LogInfo("catalog_loaded", {{"version", impl->snapshot->catalog.version},
                                     {"products", impl->snapshot->catalog.products.size()},
                                     {"fetched_at", core::FormatRfc3339(impl->fetched_at_ms)}});
  }
  impl->options = std::move(options);
  return std::unique_ptr<CatalogFetcher>(new CatalogFetcher(std::move(impl)));
}

CatalogFetcher::CatalogFetcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CatalogFetcher::~CatalogFetcher() { Stop(); }

Status CatalogFetcher::Impl::Attempt(Outcome* outcome) {
  *outcome = Outcome::kError;
  if (store == nullptr) {
    return Status(ErrorCode::kUnavailable, "no object store is configured for the catalog");
  }
  // object_etag is written only under fetch_mu, which we hold.
  Result<cloud::GetResult> got = store->Get(options.key, object_etag);
  if (!got.ok()) {
    if (got.status().code() == ErrorCode::kNotFound) {
      return Status(ErrorCode::kNotFound, "no catalog object at " + options.key);
    }
    return got.status();
  }
  const int64_t now_ms = clock->NowMs();
  // A store that ignores If-None-Match answers 200 with the same ETag: same object.
  const bool same_object = !object_etag.empty() && got->etag == object_etag;
  if (got->not_modified || same_object) {
    if (snapshot == nullptr) {
      return Status(ErrorCode::kInternal, "store answered not-modified but no catalog is held");
    }
    RETURN_IF_ERROR(db->Touch(now_ms, object_etag));
    std::lock_guard lock(state_mu);
    fetched_at_ms = now_ms;
    *outcome = Outcome::kNotModified;
    return Status::Ok();
  }
  if (got->body.size() > options.max_bytes) {
    *outcome = Outcome::kInvalid;
    return Status(ErrorCode::kPayloadTooLarge,
                  "catalog object is " + std::to_string(got->body.size()) +
                      " bytes, more than the limit of " + std::to_string(options.max_bytes));
  }
  Result<Catalog> parsed = ParseCatalog(got->body);
  if (!parsed.ok()) {
    *outcome = Outcome::kInvalid;
    return parsed.status();
  }
  std::shared_ptr<const CatalogView> view = MakeCatalogView(std::move(*parsed));
  if (snapshot != nullptr && view->etag == snapshot->etag) {
    // A new object with the content we already serve (re-uploaded, or a store without
    // stable ETags): remember its ETag, re-apply nothing.
    RETURN_IF_ERROR(db->Touch(now_ms, got->etag));
    std::lock_guard lock(state_mu);
    object_etag = got->etag;
    fetched_at_ms = now_ms;
    *outcome = Outcome::kNotModified;
    return Status::Ok();
  }
  // Disk first, then the snapshot: what readers see is always what a restart would load.
  RETURN_IF_ERROR(db->Apply(view->catalog, got->etag, now_ms, now_ms));
  {
    std::lock_guard lock(state_mu);
    snapshot = view;
    object_etag = got->etag;
    fetched_at_ms = now_ms;
    applied_at_ms = now_ms;
  }
  product_gauge->Set(static_cast<int64_t>(view->catalog.products.size()));
  core::LogInfo("catalog_applied", {{"version", view->catalog.version},
                                    {"products", view->catalog.products.size()},
                                    {"etag", view->etag},
                                    {"key", options.key}});
  *outcome = Outcome::kApplied;
  return Status::Ok();
}

void CatalogFetcher::Impl::Finish(Outcome outcome, const Status& status, int64_t now_ms,
                                  int64_t started_us) {
  report->Record(outcome, status);
  fetch_seconds->Observe(static_cast<double>(clock->MonotonicUs() - started_us) / 1e6);
  if (status.ok()) fetched_gauge->Set(now_ms / 1000);
  {
    std::lock_guard lock(state_mu);
    last_attempt_ms = now_ms;
    if (status.ok()) {
      last_error.clear();
      last_error_at_ms = 0;
    } else {
      last_error = status.ToString();
      last_error_at_ms = now_ms;
    }
    ++attempts;
  }
  attempts_cv.notify_all();
}

Status CatalogFetcher::Impl::Run() {
  std::lock_guard fetch_lock(fetch_mu);
  const int64_t started_us = clock->MonotonicUs();
  Outcome outcome = Outcome::kError;
  Status status = Attempt(&outcome);
  Finish(outcome, status, clock->NowMs(), started_us);
  return status;
}

Status CatalogFetcher::FetchOnce() { return impl_->Run(); }

Status CatalogFetcher::Start(int64_t interval_ms) {
  Impl& d = *impl_;
  return d.loop.Start(interval_ms, d.options.retry_after_error_ms, [&d] { return d.Run().ok(); });
}

void CatalogFetcher::Stop() { impl_->loop.Stop(); }

void CatalogFetcher::FetchSoon() { impl_->loop.Wake(); }

std::shared_ptr<const CatalogView> CatalogFetcher::Snapshot() const {
  std::lock_guard lock(impl_->state_mu);
  return impl_->snapshot;
}

std::optional<std::string> CatalogFetcher::Product(std::string_view sku) const {
  std::shared_ptr<const CatalogView> view = Snapshot();
  if (view == nullptr) return std::nullopt;
  return view->ProductJson(sku);
}

nlohmann::ordered_json CatalogFetcher::StatusJson() const {
  const Impl& d = *impl_;
  std::shared_ptr<const CatalogView> view;
  int64_t fetched_at_ms, applied_at_ms, last_attempt_ms, last_error_at_ms;
  std::string last_error;
  {
    std::lock_guard lock(d.state_mu);
    view = d.snapshot;
    fetched_at_ms = d.fetched_at_ms;
    applied_at_ms = d.applied_at_ms;
    last_attempt_ms = d.last_attempt_ms;
    last_error_at_ms = d.last_error_at_ms;
    last_error = d.last_error;
  }
  auto time_or_null = [](int64_t ms) -> nlohmann::ordered_json {
    if (ms <= 0) return nullptr;
    return core::FormatRfc3339(ms);
  };
  nlohmann::ordered_json out;
  out["version"] = view != nullptr ? nlohmann::ordered_json(view->catalog.version) : nullptr;
  out["fetched_at"] = view != nullptr ? time_or_null(fetched_at_ms) : nullptr;
  out["applied_at"] = view != nullptr ? time_or_null(applied_at_ms) : nullptr;
  out["products"] = view != nullptr ? view->catalog.products.size() : 0;
  out["etag"] = view != nullptr ? nlohmann::ordered_json(view->etag) : nullptr;
  out["last_error"] = last_error.empty() ? nullptr : nlohmann::ordered_json(last_error);
  out["last_error_at"] = time_or_null(last_error_at_ms);
  out["last_attempt_at"] = time_or_null(last_attempt_ms);
  return out;
}

int64_t CatalogFetcher::attempts() const {
  std::lock_guard lock(impl_->state_mu);
  return impl_->attempts;
}

bool CatalogFetcher::WaitForAttempts(int64_t n, int64_t timeout_ms) const {
  std::unique_lock lock(impl_->state_mu);
  return impl_->attempts_cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                     [&] { return impl_->attempts >= n; });
}

}  // namespace machub::catalog
