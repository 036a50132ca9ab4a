// store.json (store_config.h): its format, and the fetcher that keeps the hub's copy.
#include "catalog/store_config.h"

#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

#include "catalog/format_checks.h"
#include "catalog/poll_loop.h"
#include "core/file.h"
#include "core/log.h"
#include "core/money.h"
#include "core/text.h"
#include "core/time_format.h"

namespace machub::catalog {
namespace {

using internal::CheckText;
using internal::Invalid;
using internal::Missing;
using json = nlohmann::json;
using core::FieldPath;

constexpr int64_t kMaxVersionChars = 128;

Status ParseToken(const json& item, size_t index, StoreConfigToken* out) {
  const auto path = [index](std::string_view member = {}) {
    return FieldPath("terminal_tokens", index, member);
  };
  if (!item.is_object()) return Invalid(path(), "must be an object");
  auto id = item.find("terminal_id");
  if (id == item.end()) return Missing(path("terminal_id"));
  if (!id->is_string() || !core::ValidTerminalId(id->get_ref<const std::string&>())) {
    return Invalid(path("terminal_id"), "must match [A-Za-z0-9._-]{1,32}");
  }
  out->terminal_id = id->get<std::string>();
  auto hash = item.find("sha256");
  if (hash == item.end()) return Missing(path("sha256"));
  if (!hash->is_string() || !core::ValidSha256Hex(hash->get_ref<const std::string&>())) {
    return Invalid(path("sha256"),
                   "must be 64 lower-case hex digits (the SHA-256 of the token: `machub token "
                   "hash`)");
  }
  out->sha256_hex = hash->get<std::string>();
  if (auto role = item.find("role"); role != item.end()) {
    if (*role == "manager") {
      out->manager = true;
    } else if (*role != "terminal") {
      return Invalid(path("role"), "must be \"terminal\" or \"manager\"");
    }
  }
  if (auto expires = item.find("expires_at"); expires != item.end()) {
    Result<int64_t> ms = expires->is_string()
                             ? core::ParseRfc3339(expires->get_ref<const std::string&>())
                             : Result<int64_t>(Status(ErrorCode::kInvalidArgument, ""));
    if (!ms.ok()) return Invalid(path("expires_at"), "must be an RFC 3339 time");
    out->expires_at_ms = *ms;
  }
  return Status::Ok();
}

// A limit: a decimal string >= 0 with at most 3 decimals (the journal's own rule), or ""
// for no limit.
Status ParseLimit(const json& offline, const char* member, const FieldPath& path,
                  std::optional<std::string>* out) {
  auto it = offline.find(member);
  if (it == offline.end()) return Status::Ok();
  if (!it->is_string()) return Invalid(path, "must be a decimal string such as \"150.00\"");
  const std::string& text = it->get_ref<const std::string&>();
  if (!text.empty()) {
    int64_t milli = 0;
    if (core::ParseDecimalTo(text, 3, false, &milli) != core::DecimalError::kOk) {
      return Invalid(path,
                     "must be a decimal string >= 0 with at most 3 decimals, or \"\" for no limit");
    }
  }
  *out = text;
  return Status::Ok();
}

Status ParseOffline(const json& offline, StoreOfflineOverrides* out) {
  if (!offline.is_object()) return Invalid("offline", "must be an object");
  if (auto enabled = offline.find("enabled"); enabled != offline.end()) {
    if (!enabled->is_boolean()) return Invalid("offline.enabled", "must be true or false");
    out->enabled = enabled->get<bool>();
  }
  RETURN_IF_ERROR(
      ParseLimit(offline, "card_max_amount", "offline.card_max_amount", &out->card_max_amount));
  RETURN_IF_ERROR(ParseLimit(offline, "terminal_max_outstanding",
                             "offline.terminal_max_outstanding", &out->terminal_max_outstanding));
  return ParseLimit(offline, "store_max_outstanding", "offline.store_max_outstanding",
                    &out->store_max_outstanding);
}

json OfflineJson(const StoreOfflineOverrides& o) {
  json out = json::object();
  if (o.enabled) out["enabled"] = *o.enabled;
  if (o.card_max_amount) out["card_max_amount"] = *o.card_max_amount;
  if (o.terminal_max_outstanding) out["terminal_max_outstanding"] = *o.terminal_max_outstanding;
  if (o.store_max_outstanding) out["store_max_outstanding"] = *o.store_max_outstanding;
  return out;
}

}  // namespace

std::string StoreConfigKey(std::string_view prefix, std::string_view store_id) {
  return internal::StoreObjectKey(prefix, "config", store_id, "store.json");
}

Result<StoreConfig> ParseStoreConfig(std::string_view text) {
  if (text.size() > kMaxStoreConfigBytes) {
    return Status(ErrorCode::kPayloadTooLarge, "store configuration is larger than " +
                                                   std::to_string(kMaxStoreConfigBytes) + " bytes");
  }
  const json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status(ErrorCode::kInvalidJson, "store configuration is not a JSON object");
  }
  StoreConfig config;
  auto version = doc.find("version");
  if (version == doc.end()) return Missing("version");
  if (!version->is_string()) return Invalid("version", "must be a string");
  config.version = version->get<std::string>();
  RETURN_IF_ERROR(CheckText(config.version, "version", 1, kMaxVersionChars));
  if (auto tokens = doc.find("terminal_tokens"); tokens != doc.end()) {
    if (!tokens->is_array()) return Invalid("terminal_tokens", "must be an array");
    if (tokens->size() > kMaxStoreConfigTokens) {
      return Invalid("terminal_tokens",
                     "has more than " + std::to_string(kMaxStoreConfigTokens) + " entries");
    }
    config.tokens.resize(tokens->size());
    for (size_t i = 0; i < tokens->size(); ++i) {
      RETURN_IF_ERROR(ParseToken((*tokens)[i], i, &config.tokens[i]));
    }
  }
  if (auto offline = doc.find("offline"); offline != doc.end()) {
    RETURN_IF_ERROR(ParseOffline(*offline, &config.offline));
  }
  return config;
}

// ---- The fetcher -----------------------------------------------------------------------

struct StoreConfigFetcher::Impl {
  using Outcome = FetchOutcome;

  cloud::ObjectStore* store = nullptr;
  StoreConfigFetcherOptions options;
  const core::Clock* clock = nullptr;
  std::unique_ptr<core::MetricsRegistry> own_metrics;
  std::unique_ptr<FetchReport> report;  // counts and logs attempts (under fetch_mu)

  std::mutex fetch_mu;  // serializes attempts; guards report

  // What readers see; written with fetch_mu held too.
  mutable std::mutex state_mu;
  std::shared_ptr<const StoreConfig> snapshot;
  std::string body;  // the applied document as downloaded (for a same-content check)
  std::string etag;  // the store's ETag of the applied object
  int64_t generation = 0;
  int64_t fetched_at_ms = 0;
  int64_t applied_at_ms = 0;
  int64_t last_attempt_ms = 0;
  int64_t last_error_at_ms = 0;
  std::string last_error;

  PollLoop loop;

  void LoadLocalCopy();
  Status Attempt(Outcome* outcome);
  Status Run();
};

void StoreConfigFetcher::Impl::LoadLocalCopy() {
  Result<std::string> text = core::ReadFileToString(options.local_path);
  if (!text.ok()) {
    if (text.status().code() != ErrorCode::kNotFound) {
      core::LogError("store_config_load_failed", {{"error", text.status().ToString()}});
    }
    return;
  }
  const json copy = json::parse(*text, nullptr, false);
  Result<StoreConfig> parsed =
      copy.is_object() && copy.contains("body") && copy["body"].is_string()
          ? ParseStoreConfig(copy["body"].get_ref<const std::string&>())
          : Result<StoreConfig>(Status(ErrorCode::kInvalidJson, "not a store-config copy"));
  if (!parsed.ok()) {
    // Use nothing rather than something half-read; the next fetch downloads it again.
    core::LogError("store_config_load_failed",
                   {{"path", options.local_path}, {"error", parsed.status().ToString()}});
    last_error = "local copy unreadable: " + parsed.status().ToString();
    last_error_at_ms = clock->NowMs();
    return;
  }
  snapshot = std::make_shared<const StoreConfig>(std::move(*parsed));
  body = copy["body"].get<std::string>();
  etag = copy.value("etag", "");
  fetched_at_ms = copy.value("fetched_at_ms", int64_t{0});
  applied_at_ms = copy.value("applied_at_ms", int64_t{0});
  generation = 1;
  core::LogInfo("store_config_loaded",
                {{"version", snapshot->version}, {"terminal_tokens", snapshot->tokens.size()}});
}

Result<std::unique_ptr<StoreConfigFetcher>> StoreConfigFetcher::Open(
    cloud::ObjectStore* store, StoreConfigFetcherOptions options, const core::Clock* clock,
    core::MetricsRegistry* metrics) {
  if (options.key.empty() || options.local_path.empty()) {
    return Status(ErrorCode::kInvalidArgument,
                  "store configuration fetcher needs an object key and a local path");
  }
  auto impl = std::make_unique<Impl>();
  impl->store = store;
  impl->options = std::move(options);
  impl->clock = clock != nullptr ? clock : &core::SystemClock();
  if (metrics == nullptr) {
    impl->own_metrics = std::make_unique<core::MetricsRegistry>();
    metrics = impl->own_metrics.get();
  }
  impl->report =
      std::make_unique<FetchReport>(metrics, "machub_store_config_fetches_total",
                                    "Store configuration (store.json) fetch attempts by result",
                                    "store_config", impl->options.key);
  impl->LoadLocalCopy();
  return std::unique_ptr<StoreConfigFetcher>(new StoreConfigFetcher(std::move(impl)));
}

StoreConfigFetcher::StoreConfigFetcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StoreConfigFetcher::~StoreConfigFetcher() { Stop(); }

Status StoreConfigFetcher::Impl::Attempt(Outcome* outcome) {
  *outcome = Outcome::kError;
  if (store == nullptr) {
    return Status(ErrorCode::kUnavailable, "no object store is configured");
  }
  Result<cloud::GetResult> got = store->Get(options.key, etag);
  if (!got.ok()) {
    if (got.status().code() == ErrorCode::kNotFound) {
      return Status(ErrorCode::kNotFound, "no store configuration object at " + options.key);
    }
    return got.status();
  }
  const int64_t now_ms = clock->NowMs();
  // A store that ignores If-None-Match answers 200 with the same ETag; a re-uploaded
  // object with the same bytes is the same document too.
  if (snapshot != nullptr &&
      (got->not_modified || (!etag.empty() && got->etag == etag) || got->body == body)) {
    std::lock_guard lock(state_mu);
    etag = got->not_modified ? etag : got->etag;
    fetched_at_ms = now_ms;
    *outcome = Outcome::kNotModified;
    return Status::Ok();
  }
  if (got->not_modified) {
    return Status(ErrorCode::kInternal, "store answered not-modified but no document is held");
  }
  Result<StoreConfig> parsed = ParseStoreConfig(got->body);
  if (!parsed.ok()) {
    *outcome = Outcome::kInvalid;
    return parsed.status();
  }
  // Disk first, then the snapshot: what readers see is what a restart would load.
  const json copy = {{"format", 1},
                     {"key", options.key},
                     {"etag", got->etag},
                     {"fetched_at_ms", now_ms},
                     {"applied_at_ms", now_ms},
                     {"body", got->body}};
  RETURN_IF_ERROR(core::ReplaceFileDurably(options.local_path, copy.dump() + "\n"));
  auto applied = std::make_shared<const StoreConfig>(std::move(*parsed));
  {
    std::lock_guard lock(state_mu);
    snapshot = applied;
    body = std::move(got->body);
    etag = got->etag;
    fetched_at_ms = now_ms;
    applied_at_ms = now_ms;
    ++generation;
  }
  core::LogInfo("store_config_applied", {{"version", applied->version},
                                         {"terminal_tokens", applied->tokens.size()},
                                         {"key", options.key}});
  *outcome = Outcome::kApplied;
  return Status::Ok();
}

Status StoreConfigFetcher::Impl::Run() {
  std::lock_guard fetch_lock(fetch_mu);
  Outcome outcome = Outcome::kError;
  Status status = Attempt(&outcome);
  const int64_t now_ms = clock->NowMs();
  report->Record(outcome, status);
  std::string text = status.ok() ? "" : status.ToString();
  std::lock_guard lock(state_mu);
  last_attempt_ms = now_ms;
  last_error = std::move(text);
  last_error_at_ms = status.ok() ? 0 : now_ms;
  return status;
}

Status StoreConfigFetcher::FetchOnce() { return impl_->Run(); }

Status StoreConfigFetcher::Start(int64_t interval_ms) {
  Impl& d = *impl_;
  return d.loop.Start(interval_ms, d.options.retry_after_error_ms, [&d] { return d.Run().ok(); });
}

void StoreConfigFetcher::Stop() { impl_->loop.Stop(); }

void StoreConfigFetcher::FetchSoon() { impl_->loop.Wake(); }

std::shared_ptr<const StoreConfig> StoreConfigFetcher::Snapshot() const {
  std::lock_guard lock(impl_->state_mu);
  return impl_->snapshot;
}

int64_t StoreConfigFetcher::generation() const {
  std::lock_guard lock(impl_->state_mu);
  return impl_->generation;
}

nlohmann::ordered_json StoreConfigFetcher::StatusJson() const {
  const Impl& d = *impl_;
  std::lock_guard lock(d.state_mu);
  auto time_or_null = [](int64_t ms) -> json {
    if (ms <= 0) return nullptr;
    return core::FormatRfc3339(ms);
  };
  nlohmann::ordered_json out;
  out["key"] = d.options.key;
  out["version"] = d.snapshot ? json(d.snapshot->version) : json(nullptr);
  out["etag"] = d.snapshot && !d.etag.empty() ? json(d.etag) : json(nullptr);
  out["terminal_tokens"] = d.snapshot ? d.snapshot->tokens.size() : 0;
  out["offline"] = d.snapshot ? OfflineJson(d.snapshot->offline) : json::object();
  out["fetched_at"] = d.snapshot ? time_or_null(d.fetched_at_ms) : json(nullptr);
  out["applied_at"] = d.snapshot ? time_or_null(d.applied_at_ms) : json(nullptr);
  out["last_attempt_at"] = time_or_null(d.last_attempt_ms);
  out["last_error_at"] = time_or_null(d.last_error_at_ms);
  out["last_error"] = d.last_error.empty() ? json(nullptr) : json(d.last_error);
  return out;
}

}  // namespace machub::catalog
