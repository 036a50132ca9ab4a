#pragma once
// What every API test file shares (test support, never in the hub): a sale body, the
// tokens, the ApiTest fixture (an ApiHandler over the in-memory journal of tests/support,
// a manual clock) and a real server around a handler.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <future>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/report.h"
#include "core/sale_codec.h"
#include "core/sha256.h"
#include "core/time_format.h"
#include "http/alerts.h"
#include "http/api_error.h"
#include "http/auth.h"
#include "http/rate_limiter.h"
#include "http/server.h"
#include "http/test_util.h"
#include "journal/sqlite_journal.h"
#include "manual_clock.h"
#include "memory_journal.h"
#include "temp_dir.h"

namespace machub::http {

using namespace std::chrono_literals;
using nlohmann::json;

// The in-memory journal of tests/support: the real one's idempotency, refund, drawer and
// Z report rules; answers synchronously on the calling thread. SetFailure makes every
// call fail with that status.
using FakeJournal = machub::testing::MemoryJournal;

inline std::string SaleBody(std::string_view id, std::string_view terminal = "T01",
                            std::string_view qty = "2") {
  json body = {{"id", id},
               {"terminal_id", terminal},
               {"type", "sale"},
               {"created_at", "2026-11-27T10:15:00Z"},
               {"currency", "USD"},
               {"lines",
                {{{"sku", "0001"},
                  {"name", "Coffee"},
                  {"qty", qty},
                  {"unit_price", "3.50"},
                  {"discount", "0.00"},
                  {"tax_rate", "0.0825"}}}},
               {"payments", {{{"method", "cash"}, {"amount", "8.00"}}}}};
  return body.dump();
}

inline constexpr char kTokenOne[] = "token-one-secret";
inline constexpr char kTokenOneRotated[] = "token-one-rotated";
inline constexpr char kTokenTwo[] = "token-two-secret";

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override { Build(DefaultOptions()); }

  static ApiOptions DefaultOptions() {
    ApiOptions options;
    options.store_id = "S042";
    // T01 holds manager tokens (status, metrics, lists); T02 a terminal token.
    options.tokens = {{"T01", HashToken(kTokenOne), 0, Role::kManager},
                      {"T01", HashToken(kTokenOneRotated), 0, Role::kManager},
                      {"T02", HashToken(kTokenTwo)}};
    options.rate_per_terminal = 0;  // unlimited unless a test says otherwise
    options.list_limit_max = 50;
    return options;
  }

  void Build(ApiOptions options, StatusProviders providers = {}) {
    api_ = std::make_unique<ApiHandler>(std::move(options), &journal_, &metrics_, &clock_,
                                        std::move(providers));
  }

  Response Call(std::string method, std::string target, std::string body = {},
                std::string_view token = kTokenOne,
                std::vector<std::pair<std::string, std::string>> extra = {}) {
    Request request;
    request.method = std::move(method);
    request.target = std::move(target);
    request.body = std::move(body);
    request.remote_address = "192.0.2.7";
    if (!token.empty())
      request.headers.emplace_back("authorization", "Bearer " + std::string(token));
    for (auto& h : extra) request.headers.push_back(std::move(h));
    auto promise = std::make_shared<std::promise<Response>>();
    auto future = promise->get_future();
    api_->Handle(std::move(request),
                 [promise](Response response) { promise->set_value(std::move(response)); });
    EXPECT_EQ(future.wait_for(5s), std::future_status::ready);
    return future.get();
  }

  static std::string HeaderOf(const Response& r, std::string_view name) {
    for (const auto& [n, v] : r.headers) {
      if (n == name) return v;
    }
    return "<none>";
  }
  static std::string CodeOf(const Response& r) {
    json body = json::parse(r.body, nullptr, false);
    if (body.is_discarded() || !body.contains("error")) return "<no error>";
    return body["error"]["code"];
  }
  static std::string FieldOf(const Response& r) {
    json body = json::parse(r.body, nullptr, false);
    if (body.is_discarded() || !body["error"].contains("field")) return "<no field>";
    return body["error"]["field"];
  }

  machub::testing::ManualClock clock_{1'795'774'500'000};  // 2026-11-27T...
  FakeJournal journal_{&clock_};
  core::MetricsRegistry metrics_;
  std::unique_ptr<ApiHandler> api_;
};

inline std::unique_ptr<Server> StartApiServer(ApiHandler* api, size_t body_limit = 256 * 1024) {
  ServerOptions options;
  options.port = 0;
  options.body_limit = body_limit;
  auto server = Server::Start(options, [api](Request&& request, Respond respond) {
    api->Handle(std::move(request), std::move(respond));
  });
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return server.ok() ? std::move(server).value() : nullptr;
}

// A store event body; `extra` members are added (or replace the defaults).
inline std::string EventBody(std::string_view id, std::string_view type, std::string_view terminal,
                             json extra = json::object()) {
  json body = {{"id", id},
               {"terminal_id", terminal},
               {"type", type},
               {"created_at", "2026-11-27T08:00:00Z"},
               {"currency", "USD"}};
  if (type == "drawer_open") body["amount"] = "100.00";
  if (type == "cash_in" || type == "cash_out") {
    body["amount"] = "5.00";
    body["reason"] = "change for the till";
  }
  if (type == "drawer_close") body["counted"] = "100.00";
  for (const auto& [key, value] : extra.items()) body[key] = value;
  return body.dump();
}

inline std::string ZBody(std::string_view id, json extra = json::object()) {
  json body = {{"id", id}, {"created_at", "2026-11-27T22:00:00Z"}};
  for (const auto& [key, value] : extra.items()) body[key] = value;
  return body.dump();
}

}  // namespace machub::http
